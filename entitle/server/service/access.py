"""Who may call what: bearer tokens with roles, the same for every face.

The tokens file (`entitle serve --tokens FILE`) has one token per line, `TOKEN ROLE`, with
`#` comments and blank lines ignored. A token may be given as `sha256:<64 hex digits>`
(the SHA-256 of the token) so the file need not hold the secret itself. Only SHA-256
digests are kept in memory; a presented token is hashed and compared with
hmac.compare_digest against every entry. The file is re-read when its modification time
changes (checked at most once a second); an invalid new file is logged and the previous
tokens stay in force.

Roles: `viewer` may see the dashboard and nothing else, `checker` may also call the methods in
CHECKER_METHODS, `admin` everything. The health and reflection
services are open to everyone (load balancers and `entitle call --list`).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import threading
import time
from dataclasses import dataclass

from entitle.server.logs import get_logger
from entitle.server.service.failures import Code, Failure

ROLES = ("viewer", "checker", "admin")  # each may do what the ones before it may
SERVICE_PREFIX = "/entitle.v1.EntitlementService/"
CHECKER_METHODS = frozenset(
    SERVICE_PREFIX + name
    for name in (
        "CheckCoverage", "RecordUsage", "ReleaseUsage", "GetContractStatus", "ListContracts",
        "ServerInfo", "Ping", "WatchAlerts", "ListAlerts", "RecordTicketEvents", "GetTicketSla",
    )
)
OPEN_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
AUTH_METADATA = "authorization"
RECHECK_SECONDS = 1.0
_HASHED = re.compile(r"^sha256:([0-9a-fA-F]{64})$")


class TokensError(ValueError):
    """The tokens file cannot be used; the message names the file and line, never a token."""


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


@dataclass(frozen=True)
class TokenTable:
    entries: tuple[tuple[bytes, str], ...]  # (SHA-256 of the token, role)

    def role_of(self, token: str) -> str | None:
        """The role of `token`, or None; looks at every entry (no early exit on a match)."""
        presented = digest(token)
        found = None
        for stored, role in self.entries:
            if hmac.compare_digest(presented, stored) and found is None:
                found = role
        return found


def _line_error(source: str, number: int, parts: list[str]) -> TokensError:
    """What is wrong with a line, naming the place but no value: any word may be a token."""
    expected = f"expected `TOKEN ROLE` with ROLE one of {'|'.join(ROLES)}"
    if len(parts) != 2:
        words = "1 word" if len(parts) == 1 else f"{len(parts)} words"
        return TokensError(f"{source}:{number}: {expected} (found {words})")
    hint = "; the columns look swapped" if parts[0] in ROLES else ""
    return TokensError(f"{source}:{number}: the second word is not a role; {expected}{hint}")


def parse_tokens(text: str, source: str = "tokens file") -> TokenTable:
    """The table of a tokens file; errors give `source` and the line number, never a value."""
    entries = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 2 or parts[1] not in ROLES:
            raise _line_error(source, number, parts)
        token, role = parts
        hashed = _HASHED.match(token)
        entries.append((bytes.fromhex(hashed.group(1)) if hashed else digest(token), role))
    if not entries:
        raise TokensError(f"{source}: no tokens")
    return TokenTable(tuple(entries))


def load_tokens(path: str) -> TokenTable:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise TokensError(f"cannot read tokens file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise TokensError(f"tokens file {path} is not UTF-8 text") from None
    return parse_tokens(text, path)


class TokenFile:
    """A TokenTable that follows its file: re-read when the modification time changes."""

    def __init__(self, path: str):
        self.path = path
        self.table = load_tokens(path)
        self._mtime = self._stat()
        self._checked = time.monotonic()
        self._lock = threading.Lock()

    def _stat(self) -> float | None:
        try:
            return os.stat(self.path).st_mtime_ns
        except OSError:
            return None

    def current(self) -> TokenTable:
        now = time.monotonic()
        if now - self._checked < RECHECK_SECONDS or not self._lock.acquire(blocking=False):
            return self.table
        try:
            self._checked = now
            mtime = self._stat()
            if mtime is not None and mtime != self._mtime:
                self._mtime = mtime
                try:
                    self.table = load_tokens(self.path)
                    get_logger().info("tokens file reloaded", extra={"tokens": self.path})
                except TokensError as exc:
                    get_logger().error(
                        "tokens file refused; keeping the previous tokens",
                        extra={"error": str(exc)},
                    )
        finally:
            self._lock.release()
        return self.table


def bearer(metadata) -> str | None:
    """The token of an `authorization: Bearer TOKEN` header, or None."""
    for key, value in metadata or ():
        if key == AUTH_METADATA and isinstance(value, str):
            scheme, _, token = value.strip().partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            return None
    return None


def role_needed(method: str) -> str | None:
    """None for the open services, else the least role that may call `method`."""
    if method.startswith(OPEN_PREFIXES):
        return None
    return "checker" if method in CHECKER_METHODS else "admin"


def allows(role: str, needed: str) -> bool:
    """True when `role` ranks at least as high as `needed`."""
    return ROLES.index(role) >= ROLES.index(needed)


def denial(tokens: TokenFile | None, method: str, token: str | None) -> Failure | None:
    """Why a call of `method` (`/package.Service/Name`) with `token` is refused, or None."""
    if tokens is None:
        return None
    needed = role_needed(method)
    if needed is None:
        return None
    if token is None:
        return Failure(
            Code.UNAUTHENTICATED,
            "missing bearer token: send `authorization: Bearer <token>`",
        )
    role = tokens.current().role_of(token)
    if role is None:
        return Failure(Code.UNAUTHENTICATED, "unknown bearer token")
    if not allows(role, needed):
        name = method.rsplit("/", 1)[-1]
        return Failure(
            Code.PERMISSION_DENIED,
            f"{name} needs the {needed} role; this token has the {role} role",
        )
    return None
