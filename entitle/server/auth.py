"""Bearer tokens with roles, and the per-call deadline cap: one grpc.ServerInterceptor.

The tokens file (`entitle serve --tokens FILE`) has one token per line, `TOKEN ROLE`, with
`#` comments and blank lines ignored. A token may be given as `sha256:<64 hex digits>`
(the SHA-256 of the token) so the file need not hold the secret itself. Only SHA-256
digests are kept in memory; a presented token is hashed and compared with
hmac.compare_digest against every entry. The file is re-read when its modification time
changes (checked at most once a second); an invalid new file is logged and the previous
tokens stay in force.

Roles: `checker` may call the methods in CHECKER_METHODS, `admin` everything. The health
and reflection services are open to everyone (load balancers and `entitle call --list`).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import grpc

from entitle.server.logs import get_logger

ROLES = ("checker", "admin")
SERVICE_PREFIX = "/entitle.v1.EntitlementService/"
CHECKER_METHODS = frozenset(
    SERVICE_PREFIX + name
    for name in (
        "CheckCoverage", "RecordUsage", "ReleaseUsage", "GetContractStatus", "ListContracts",
        "ServerInfo", "Ping", "WatchAlerts", "ListAlerts",
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


def _allows(role: str, needed: str) -> bool:
    return role == "admin" or role == needed


class CappedContext:
    """A ServicerContext whose time_remaining() never exceeds the server's per-call cap."""

    def __init__(self, context: grpc.ServicerContext, deadline: float):
        self._context = context
        self._deadline = deadline  # time.monotonic() by which the call should be done

    def time_remaining(self) -> float:
        cap = self._deadline - time.monotonic()
        remaining = self._context.time_remaining()
        return cap if remaining is None else min(remaining, cap)

    def __getattr__(self, name: str):
        return getattr(self._context, name)


class SecurityInterceptor(grpc.ServerInterceptor):
    """Bearer-token roles (when `tokens` is given) and the per-call deadline cap.

    The cap applies to unary-response methods: their handlers see a time_remaining() of at
    most `max_call_seconds`, so the `rpc` wrapper and the store give up by then, and a reply
    that is ready only after the cap is replaced by DEADLINE_EXCEEDED. Server streams
    (WatchAlerts) are subscriptions and end with the client's own deadline or cancellation.
    """

    def __init__(self, tokens: TokenFile | None = None, max_call_seconds: float = 0):
        self.tokens = tokens
        self.max_call_seconds = max_call_seconds
        # Interceptors run on every call: the wrapped handler of an allowed call depends only
        # on the method, so it is built once per method.
        self._allowed: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        denial = self._denial(method, handler_call_details.invocation_metadata)
        if denial is not None:
            code, message = denial
            get_logger().info("rpc refused", extra={"method": method, "code": code.name})
            return self._wrap(handler, method, _deny(code, message))
        hit = self._allowed.get(method)
        if hit is not None and hit[0] is handler:
            return hit[1]
        behavior = next(getattr(handler, k) for k in _KINDS if getattr(handler, k) is not None)
        if self.max_call_seconds > 0 and not handler.response_streaming:
            behavior = self._capped(behavior)
        wrapped = self._wrap(handler, method, behavior)
        self._allowed[method] = (handler, wrapped)
        return wrapped

    @staticmethod
    def _wrap(handler: grpc.RpcMethodHandler, method: str,
              behavior: Callable) -> grpc.RpcMethodHandler:
        kind = next(k for k in _KINDS if getattr(handler, k) is not None)
        if handler.request_deserializer is None:
            return handler._replace(**{kind: behavior})
        return handler._replace(
            **{kind: _checked(behavior, method, handler.request_streaming)},
            request_deserializer=_lenient(handler.request_deserializer),
        )

    def _denial(self, method: str, metadata) -> tuple[grpc.StatusCode, str] | None:
        if self.tokens is None:
            return None
        needed = role_needed(method)
        if needed is None:
            return None
        token = bearer(metadata)
        if token is None:
            return (
                grpc.StatusCode.UNAUTHENTICATED,
                "missing bearer token: send metadata `authorization: Bearer <token>`",
            )
        role = self.tokens.current().role_of(token)
        if role is None:
            return grpc.StatusCode.UNAUTHENTICATED, "unknown bearer token"
        if not _allows(role, needed):
            name = method.rsplit("/", 1)[-1]
            return (
                grpc.StatusCode.PERMISSION_DENIED,
                f"{name} needs the {needed} role; this token has the {role} role",
            )
        return None

    def _capped(self, behavior: Callable) -> Callable:
        cap = self.max_call_seconds

        def wrapped(request, context):
            deadline = time.monotonic() + cap
            reply = behavior(request, CappedContext(context, deadline))
            if time.monotonic() > deadline:
                context.abort(
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                    f"the call took longer than the server's limit of {cap:g} s",
                )
            return reply

        return wrapped


def _deny(code: grpc.StatusCode, message: str) -> Callable:
    def deny(request, context):
        context.abort(code, message)

    return deny


_KINDS = ("unary_unary", "unary_stream", "stream_unary", "stream_stream")


class _Undecodable:
    """Stands for a request that did not parse (see _lenient)."""


_UNDECODABLE = _Undecodable()


def _lenient(deserialize: Callable) -> Callable:
    """A request deserializer that returns _UNDECODABLE instead of raising.

    When grpcio's own deserialization fails it answers INTERNAL but leaves the HTTP/2 stream
    counted as open (grpcio 1.85): with grpc.max_concurrent_streams set, a client sending
    that many malformed requests would wedge its connection. Handled here, the call ends
    through the handler like any other refusal, as INVALID_ARGUMENT.
    """

    def lenient(data: bytes):
        try:
            return deserialize(data)
        except Exception:
            return _UNDECODABLE

    return lenient


def _undecodable(context: grpc.ServicerContext, method: str) -> None:
    context.abort(
        grpc.StatusCode.INVALID_ARGUMENT,
        f"the request is not a valid protobuf message for {method.rsplit('/', 1)[-1]}",
    )


def _checked(behavior: Callable, method: str, request_streaming: bool) -> Callable:
    if request_streaming:
        def streamed(requests, context):
            def each():
                for request in requests:
                    if request is _UNDECODABLE:
                        _undecodable(context, method)
                    yield request

            return behavior(each(), context)

        return streamed

    def unary(request, context):
        if request is _UNDECODABLE:
            _undecodable(context, method)
        return behavior(request, context)

    return unary
