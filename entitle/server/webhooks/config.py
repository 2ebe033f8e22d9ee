"""`entitle serve --webhooks FILE`: the endpoints alerts are pushed to, checked at start.

The file is YAML (see docs/webhooks.md#configuration). Every problem is reported as
`file:line:col: where: what`, located at the value that causes it; a server refuses to
start on an invalid file. Secrets are never written in the file: each endpoint names an
environment variable or a file that holds them (several, one per line or separated by
spaces, while a secret is rotated).
"""

from __future__ import annotations

import base64
import binascii
import os
import ssl
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from entitle.engine.alerts import KINDS
from entitle.engine.diagnostics import Diagnostic
from entitle.engine.durations import parse_duration
from entitle.engine.hints import did_you_mean
from entitle.engine.load import Document, Pointer, clip, load_file

KIND_PREFIX = "ALERT_KIND_"
SECRET_PREFIX = "whsec_"  # Standard Webhooks: the rest is the key, base64
MIN_KEY_BYTES = 16
STARTS = ("latest", "oldest")
TOP_KEYS = frozenset(("endpoints", "retry", "poll"))
ENDPOINT_KEYS = frozenset(
    ("id", "url", "filter", "secret_env", "secret_file", "timeout", "retry", "start", "ca_file")
)
FILTER_KEYS = frozenset(("kinds", "customer", "contract"))
RETRY_KEYS = frozenset(("max_attempts", "backoff", "max_backoff"))
MAX_ENDPOINTS = 64
MAX_ID = 64
ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


class WebhookConfigError(ValueError):
    """The webhooks file cannot be used; `diagnostics` are located, the first is the message."""

    def __init__(self, diagnostics: list[Diagnostic]):
        self.diagnostics = sorted(diagnostics)
        first = str(self.diagnostics[0])
        more = len(self.diagnostics) - 1
        super().__init__(first + (f" (and {more} more)" if more else ""))


class SecretError(ValueError):
    """A secret source cannot be read or holds no usable key (the message names no secret)."""


@dataclass(frozen=True)
class Retry:
    """How often and how patiently one alert is retried before it becomes a dead letter."""

    max_attempts: int = 10
    backoff: float = 1.0  # seconds before the 2nd attempt; doubles with each failure
    max_backoff: float = 600.0  # the cap on one wait


@dataclass(frozen=True)
class SecretSource:
    """Where an endpoint's signing keys are read: an environment variable or a file."""

    env: str = ""
    file: str = ""

    def read(self) -> tuple[bytes, ...]:
        """The keys, newest first; raises SecretError."""
        if self.env:
            text = os.environ.get(self.env)
            if text is None or not text.strip():
                raise SecretError(f"environment variable {self.env} is not set or empty")
            where = f"environment variable {self.env}"
        else:
            try:
                text = Path(self.file).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
                raise SecretError(f"cannot read secret file {self.file}: {reason}") from None
            where = f"secret file {self.file}"
        words = [w for line in text.splitlines() if not line.lstrip().startswith("#")
                 for w in line.split()]
        if not words:
            raise SecretError(f"{where} holds no secret")
        return tuple(key_of(word, where) for word in words)

    def stamp(self) -> object:
        """Changes when the secret may have changed (a file's mtime; an env var never does)."""
        if not self.file:
            return None
        try:
            stat = os.stat(self.file)
        except OSError:
            return None
        return (stat.st_mtime_ns, stat.st_size)


def key_of(secret: str, where: str) -> bytes:
    """An HMAC key: `whsec_<base64>` as Standard Webhooks libraries read it, else the bytes."""
    if secret.startswith(SECRET_PREFIX):
        try:
            key = base64.b64decode(secret[len(SECRET_PREFIX):], validate=True)
        except binascii.Error:
            raise SecretError(
                f"{where}: a secret starting with {SECRET_PREFIX} must be base64 after it"
            ) from None
    else:
        key = secret.encode("utf-8")
    if len(key) < MIN_KEY_BYTES:
        raise SecretError(
            f"{where}: a secret must be at least {MIN_KEY_BYTES} bytes; make one with "
            "`python3 -c 'import base64, secrets; "
            "print(\"whsec_\" + base64.b64encode(secrets.token_bytes(32)).decode())'`"
        )
    return key


@dataclass(frozen=True)
class Endpoint:
    """One receiver: where alerts go, which ones, signed with what, how patiently."""

    id: str
    url: str
    secret: SecretSource
    kinds: tuple[str, ...] = ()  # engine alert kinds; empty: every kind
    customer_id: str = ""
    contract_id: str = ""
    timeout: float = 10.0  # seconds, per connect / read / write
    retry: Retry = field(default_factory=Retry)
    start: str = "latest"  # a new endpoint's first cursor: the log's latest, or its oldest
    ca_file: str = ""  # PEM CA bundle for an https:// URL signed by a private CA
    source: str = ""  # file:line of the endpoint, for logs

    def tls(self) -> ssl.SSLContext | bool:
        """The `verify` argument of the HTTP client."""
        return ssl.create_default_context(cafile=self.ca_file) if self.ca_file else True


@dataclass(frozen=True)
class WebhookConfig:
    path: str
    endpoints: tuple[Endpoint, ...]
    poll: float = 2.0  # seconds: the fallback check for alerts other processes committed


def load_webhooks(path: str | Path) -> WebhookConfig:
    """The configuration in `path`; raises WebhookConfigError with every problem found."""
    path = Path(path)
    docs, diags = load_file(path)
    if diags:
        raise WebhookConfigError(diags)
    if len(docs) != 1:
        where = docs[1].diagnostic((), "") if len(docs) > 1 else None
        raise WebhookConfigError([Diagnostic(
            where.path if where else str(path), where.line if where else 1,
            where.col if where else 1,
            "a webhooks file holds one YAML document (a mapping with `endpoints`)",
        )])
    reader = _Reader(docs[0], path.absolute().parent)
    config = reader.config(str(path))
    if reader.problems:
        raise WebhookConfigError(reader.problems)
    return config


class _Reader:
    """Reads one document into a WebhookConfig, collecting located problems as it goes."""

    def __init__(self, doc: Document, base: Path):
        self.doc = doc
        self.base = base
        self.problems: list[Diagnostic] = []

    def problem(self, pointer: Pointer, message: str, *, key: bool = False) -> None:
        self.problems.append(self.doc.diagnostic(pointer, f"{_name(pointer)}: {message}",
                                                 key=key))

    def keys(self, pointer: Pointer, data: dict, allowed: frozenset[str]) -> None:
        for key in data:
            if key not in allowed:
                hint = did_you_mean(key, allowed) or f" (known: {', '.join(sorted(allowed))})"
                if key == "secret" and allowed is ENDPOINT_KEYS:
                    hint = (": secrets are never written in this file; name where it is kept "
                            "with secret_env: VARIABLE or secret_file: PATH")
                self.problem((*pointer, key), f"unknown key {clip(str(key))!r}{hint}", key=True)

    def mapping(self, pointer: Pointer, value: object) -> dict | None:
        if isinstance(value, dict):
            return value
        self.problem(pointer, "must be a mapping")
        return None

    def text(self, pointer: Pointer, value: object) -> str | None:
        if isinstance(value, str) and value.strip() and "\x00" not in value:
            return value
        self.problem(pointer, "must be a non-empty string")
        return None

    def seconds(self, pointer: Pointer, value: object, default: float) -> float:
        if value is None:
            return default
        try:
            if not isinstance(value, str):
                raise ValueError(f"{value!r} is not a duration; write e.g. 10s, 1.5s or 2m")
            seconds = parse_duration(value) * 60
        except ValueError as exc:
            self.problem(pointer, str(exc))
            return default
        if seconds <= 0:
            self.problem(pointer, "must be longer than 0s")
            return default
        return seconds

    def config(self, path: str) -> WebhookConfig:
        data = self.doc.data
        self.keys((), data, TOP_KEYS)
        poll = self.seconds(("poll",), data.get("poll"), WebhookConfig.poll)
        defaults = self.retry(("retry",), data.get("retry"), Retry())
        endpoints: list[Endpoint] = []
        raw = data.get("endpoints")
        if not isinstance(raw, list) or not raw:
            self.problem(("endpoints",), "must be a list of at least one endpoint")
            raw = []
        elif len(raw) > MAX_ENDPOINTS:
            self.problem(("endpoints",), f"at most {MAX_ENDPOINTS} endpoints")
        seen: dict[str, int] = {}
        for index, item in enumerate(raw):
            endpoint = self.endpoint(("endpoints", index), item, defaults)
            if endpoint is None:
                continue
            if endpoint.id in seen:
                self.problem(("endpoints", index, "id"),
                             f"{endpoint.id!r} is already the id of endpoints[{seen[endpoint.id]}]")
                continue
            seen[endpoint.id] = index
            endpoints.append(endpoint)
        return WebhookConfig(path, tuple(endpoints), poll)

    def retry(self, pointer: Pointer, value: object, base: Retry) -> Retry:
        if value is None:
            return base
        data = self.mapping(pointer, value)
        if data is None:
            return base
        self.keys(pointer, data, RETRY_KEYS)
        attempts = data.get("max_attempts", base.max_attempts)
        if type(attempts) is not int or not 1 <= attempts <= 1000:
            self.problem((*pointer, "max_attempts"), "must be a whole number from 1 to 1000")
            attempts = base.max_attempts
        backoff = self.seconds((*pointer, "backoff"), data.get("backoff"), base.backoff)
        cap = self.seconds((*pointer, "max_backoff"), data.get("max_backoff"), base.max_backoff)
        if cap < backoff:
            self.problem((*pointer, "max_backoff"), "must not be shorter than backoff")
            cap = backoff
        return Retry(attempts, backoff, cap)

    def endpoint(self, pointer: Pointer, value: object, defaults: Retry) -> Endpoint | None:
        data = self.mapping(pointer, value)
        if data is None:
            return None
        before = len(self.problems)
        self.keys(pointer, data, ENDPOINT_KEYS)
        ident = self.ident((*pointer, "id"), data.get("id"))
        url = self.url((*pointer, "url"), data.get("url"))
        secret = self.secret(pointer, data)
        kinds, customer, contract = self.filter((*pointer, "filter"), data.get("filter"))
        timeout = self.seconds((*pointer, "timeout"), data.get("timeout"), Endpoint.timeout)
        retry = self.retry((*pointer, "retry"), data.get("retry"), defaults)
        start = data.get("start", "latest")
        if start not in STARTS:
            self.problem((*pointer, "start"), f"must be one of {', '.join(STARTS)}")
        ca_file = ""
        if "ca_file" in data and (name := self.text((*pointer, "ca_file"), data["ca_file"])):
            ca_file = os.path.normpath(self.base / name)
            try:
                ssl.create_default_context(cafile=ca_file)
            except (OSError, ssl.SSLError) as exc:
                reason = getattr(exc, "strerror", None) or str(exc)
                self.problem((*pointer, "ca_file"), f"cannot load {ca_file}: {reason}")
        if len(self.problems) > before or ident is None or url is None or secret is None:
            return None
        line = self.doc.locate(pointer)[0]
        return Endpoint(ident, url, secret, kinds, customer, contract, timeout, retry, start,
                        ca_file, f"{self.doc.path}:{line}")

    def ident(self, pointer: Pointer, value: object) -> str | None:
        if value is None:
            self.problem(pointer[:-1], "needs an `id` (it names the endpoint's progress in "
                         "the store, its metrics and health)")
            return None
        text = self.text(pointer, value)
        if text is None:
            return None
        if len(text) > MAX_ID or not set(text) <= ID_CHARS:
            self.problem(pointer, f"{clip(text)!r}: use at most {MAX_ID} letters, digits, "
                         "'-', '_' or '.'")
            return None
        return text

    def url(self, pointer: Pointer, value: object) -> str | None:
        if value is None:
            self.problem(pointer[:-1], "needs a `url`")
            return None
        text = self.text(pointer, value)
        if text is None:
            return None
        try:
            parsed = httpx.URL(text)
        except (httpx.InvalidURL, ValueError) as exc:
            self.problem(pointer, f"{clip(text)!r} is not a URL: {exc}")
            return None
        if parsed.scheme not in ("http", "https") or not parsed.host:
            self.problem(pointer, f"{clip(text)!r} must be an http:// or https:// URL with a host")
            return None
        return text

    def secret(self, pointer: Pointer, data: dict) -> SecretSource | None:
        given = [k for k in ("secret_env", "secret_file") if k in data]
        if not given and "secret" in data:
            return None  # reported once, as the unknown key `secret`
        if len(given) != 1:
            where = (*pointer, given[1]) if given else pointer
            self.problem(where, "needs exactly one of secret_env: VARIABLE or "
                         "secret_file: PATH (the signing secret is never written here)",
                         key=bool(given))
            return None
        key = given[0]
        name = self.text((*pointer, key), data[key])
        if name is None:
            return None
        source = (SecretSource(env=name) if key == "secret_env"
                  else SecretSource(file=os.path.normpath(self.base / name)))
        try:
            source.read()
        except SecretError as exc:
            self.problem((*pointer, key), str(exc))
            return None
        return source

    def filter(self, pointer: Pointer, value: object) -> tuple[tuple[str, ...], str, str]:
        if value is None:
            return (), "", ""
        data = self.mapping(pointer, value)
        if data is None:
            return (), "", ""
        self.keys(pointer, data, FILTER_KEYS)
        kinds: list[str] = []
        raw = data.get("kinds", [])
        if not isinstance(raw, list):
            self.problem((*pointer, "kinds"), "must be a list of alert kinds")
            raw = []
        for i, kind in enumerate(raw):
            name = str(kind).upper().removeprefix(KIND_PREFIX)
            if name not in KINDS:
                self.problem((*pointer, "kinds", i), f"unknown alert kind {clip(str(kind))!r}"
                             f"{did_you_mean(name, KINDS) or ' (one of ' + ', '.join(KINDS) + ')'}")
            elif name not in kinds:
                kinds.append(name)
        customer = contract = ""
        for key in ("customer", "contract"):
            if key in data:
                text = self.text((*pointer, key), data[key]) or ""
                customer, contract = (text, contract) if key == "customer" else (customer, text)
        return tuple(sorted(kinds)), customer, contract


def _name(pointer: Pointer) -> str:
    """`endpoints[1].filter.kinds[0]`: where in the file, in words a reader can follow."""
    out = ""
    for part in pointer:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "file"
