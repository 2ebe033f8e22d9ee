"""How `entitle serve` runs: one value the supervisor hands to every worker process."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, replace
from datetime import datetime

from entitle.engine.ticket import TicketError, parse_instant
from entitle.server.clock import Clock, FixedClock, SystemClock

DEFAULT_LISTEN = "127.0.0.1:50051"
DEFAULT_HTTP_LISTEN = "127.0.0.1:8080"
DEFAULT_STORE = "sqlite:///entitle.db"
MAX_MESSAGE_BYTES = 1024 * 1024
FAKE_NOW_ENV = "ENTITLE_FAKE_NOW"


@dataclass(frozen=True)
class ServeConfig:
    policies: str = "policies"
    store_url: str = DEFAULT_STORE
    listen: str = DEFAULT_LISTEN
    # HOST:PORT of the HTTP/JSON face (Connect protocol); "" is off. `entitle serve` defaults
    # to DEFAULT_HTTP_LISTEN; a config made in code (tests) has no HTTP listener unless asked.
    http_listen: str = ""
    workers: int = 1
    reload_interval: float = 1.0  # seconds between bundle polls; 0 disables watching
    accept_breaking: bool = False  # start on the disk bundle even if it breaks the accepted one
    grace: float = 10.0  # seconds in-flight calls get to finish on shutdown
    threads: int = 16  # handler threads per worker: overlap store I/O, not CPU
    max_message_bytes: int = MAX_MESSAGE_BYTES
    log_level: str = "info"
    sweep_interval: float = 60.0  # seconds between alert sweeps; 0 disables the sweeper
    sla_sweep_interval: float = 5.0  # seconds between SLA clock sweeps; 0 disables them
    alert_retention_days: float = 90.0  # alerts emitted longer ago are purged; 0 keeps all
    metrics_listen: str = ""  # HOST:PORT the supervisor serves /metrics on; "" is off
    decision_log: str = ""  # NDJSON file of CheckCoverage decisions; "" is off
    mask_attributes: tuple[str, ...] = ()  # ticket attributes shown as *** in that log
    mask_subject: bool = False
    # security (docs/operations.md#security): TLS files, bearer tokens, per-call limits
    tls_cert: str = ""  # PEM certificate chain; "" serves plaintext (loopback only)
    tls_key: str = ""
    client_ca: str = ""  # PEM CA bundle: client certificates required and verified
    tokens_file: str = ""  # `TOKEN ROLE` lines; "" turns authentication off
    max_call_seconds: float = 30.0  # cap on every unary call's deadline; 0 is no cap
    max_streams: int = 100  # grpc.max_concurrent_streams per connection
    max_concurrent_rpcs: int = 1000  # per worker; beyond it RESOURCE_EXHAUSTED
    webhooks_file: str = ""  # YAML of endpoints alerts are pushed to; "" is off

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServeConfig:
        fields = json.loads(text)
        if "mask_attributes" in fields:
            fields["mask_attributes"] = tuple(fields["mask_attributes"])
        return cls(**fields)

    def with_listen(self, listen: str) -> ServeConfig:
        return replace(self, listen=listen)


def split_listen(listen: str) -> tuple[str, int]:
    """`host:port` (IPv6 as `[::1]:50051`) as (host, port); raises ValueError with a hint."""
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"--listen {listen!r} is not HOST:PORT, e.g. 127.0.0.1:50051")
    return host.strip("[]"), int(port)


def runtime_clock() -> Clock:
    """The system clock, or a fixed one from ENTITLE_FAKE_NOW (a testing aid, never in prod)."""
    fake = os.environ.get(FAKE_NOW_ENV)
    if not fake:
        return SystemClock()
    try:
        at: datetime = parse_instant(FAKE_NOW_ENV, fake)
    except TicketError as exc:
        raise ValueError(str(exc)) from None
    return FixedClock(at)
