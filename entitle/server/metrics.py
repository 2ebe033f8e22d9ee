"""Prometheus metrics of `entitle serve`, and the request id every RPC carries.

Several worker processes serve one port, so metrics use prometheus_client's multiprocess
mode: the supervisor sets PROMETHEUS_MULTIPROC_DIR (a fresh directory) in every worker's
environment before it starts, workers write their samples to files there, and the
supervisor serves the sum on `--metrics-listen` (see docs/operations.md#metrics). Without
the variable (tests, one in-process worker) the same metrics live in this process's
default registry.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator

from prometheus_client import REGISTRY as DEFAULT_REGISTRY
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, multiprocess
from prometheus_client.exposition import start_http_server

from entitle.engine.decide import REASONS
from entitle.server.logs import get_logger

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
REQUEST_ID_METADATA = "x-request-id"
MAX_REQUEST_ID = 128
_REQUEST_ID_OK = re.compile(r"^[\x21-\x7e]+$")  # printable ASCII, no spaces
ADMISSION_RESULTS = ("admitted", "duplicate", "exhausted")
RELOAD_RESULTS = ("success", "failure")
# Decisions take well under a millisecond; a store round trip a few; a page of 1000 more.
# A client's stream ending at its deadline can reach us a little before our own deadline timer.
DEADLINE_SLACK = 0.25
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)

DECISIONS = Counter(
    "entitle_decisions", "CheckCoverage decisions by reason", ["reason"]
)
RPC_DURATION = Histogram(
    "entitle_rpc_duration_seconds",
    "Time to answer an RPC (streams: until the stream ends), by method and status code",
    ["method", "code"],
    buckets=LATENCY_BUCKETS,
)
ADMISSIONS = Counter(
    "entitle_admissions",
    "CheckCoverage calls with consume=true: admitted, duplicate (a retry answered with "
    "the original decision) or exhausted (refused: quota used up)",
    ["result"],
)
RELOADS = Counter(
    "entitle_reloads", "Policy reload attempts per worker: success or failure", ["result"]
)
POLICY_INFO = Gauge(
    "entitle_policy_info",
    "1 for the policy revision a worker serves (one series per worker pid), 0 for one it "
    "served before",
    ["revision"],
    multiprocess_mode="liveall",
)
ALERTS_EMITTED = Counter(
    "entitle_alerts_emitted", "Alerts appended to the alert log, by kind", ["kind"]
)
ALERT_SUBSCRIBERS = Gauge(
    "entitle_alert_subscribers",
    "Open WatchAlerts streams (summed over live workers)",
    multiprocess_mode="livesum",
)
STORE_ERRORS = Counter(
    "entitle_store_errors",
    "Store calls that failed as unavailable or busy after retries, by backend",
    ["backend"],
)
WEBHOOK_DELIVERIES = Counter(
    "entitle_webhook_deliveries",
    "Alerts delivered to a webhook endpoint (answered 2xx), by endpoint id",
    ["endpoint"],
)
WEBHOOK_FAILURES = Counter(
    "entitle_webhook_failures",
    "Failed webhook delivery attempts, by endpoint id and reason: status (a non-2xx answer), "
    "timeout, network (no connection, TLS, protocol) or secret (the secret could not be read)",
    ["endpoint", "reason"],
)
WEBHOOK_DEAD_LETTERS = Gauge(
    "entitle_webhook_dead_letters",
    "Alerts an endpoint never accepted within its attempts, kept in the store as dead letters",
    ["endpoint"],
    multiprocess_mode="livemostrecent",
)
WEBHOOK_LAG = Gauge(
    "entitle_webhook_lag",
    "Alerts in the alert log after the endpoint's cursor (not yet delivered or skipped)",
    ["endpoint"],
    multiprocess_mode="livemostrecent",
)
WEBHOOK_FAILURE_REASONS = ("status", "timeout", "network", "secret")

for _reason in REASONS:
    DECISIONS.labels(reason=_reason)
for _result in ADMISSION_RESULTS:
    ADMISSIONS.labels(result=_result)
for _result in RELOAD_RESULTS:
    RELOADS.labels(result=_result)

_served_revision: str | None = None


# -- recording ------------------------------------------------------------------------------
def count_decision(reason: str) -> None:
    DECISIONS.labels(reason=reason).inc()


def count_admission(result: str) -> None:
    ADMISSIONS.labels(result=result).inc()


def count_alert(kind: str) -> None:
    """One alert of `kind` emitted (call after it committed; duplicates are not emissions)."""
    ALERTS_EMITTED.labels(kind=kind).inc()


def count_webhook_delivery(endpoint: str) -> None:
    WEBHOOK_DELIVERIES.labels(endpoint=endpoint).inc()


def count_webhook_failure(endpoint: str, reason: str) -> None:
    WEBHOOK_FAILURES.labels(endpoint=endpoint, reason=reason).inc()


def show_webhook(endpoint: str, lag: int, dead_letters: int) -> None:
    """The endpoint's state as the store has it (any worker may set it: most recent wins)."""
    WEBHOOK_LAG.labels(endpoint=endpoint).set(max(lag, 0))
    WEBHOOK_DEAD_LETTERS.labels(endpoint=endpoint).set(dead_letters)


def watch_webhook(endpoint: str) -> None:
    """Show the endpoint's counters at 0 from the start, for alerting rules."""
    WEBHOOK_DELIVERIES.labels(endpoint=endpoint)
    for reason in WEBHOOK_FAILURE_REASONS:
        WEBHOOK_FAILURES.labels(endpoint=endpoint, reason=reason)


def count_store_error(backend: str) -> None:
    STORE_ERRORS.labels(backend=backend).inc()


def watch_store(backend: str) -> None:
    """Show the store error counter at 0 from the start, for alerting rules."""
    STORE_ERRORS.labels(backend=backend)


@contextlib.contextmanager
def alert_subscriber() -> Iterator[None]:
    """Around a WatchAlerts stream: counts it as an open subscriber while it runs."""
    ALERT_SUBSCRIBERS.inc()
    try:
        yield
    finally:
        ALERT_SUBSCRIBERS.dec()


def on_reload(outcome) -> None:
    """A Reloader listener: counts the attempt and tracks the revision served."""
    global _served_revision
    RELOADS.labels(result="failure" if outcome.status == "refused" else "success").inc()
    revision = outcome.revision
    if revision and revision != _served_revision:
        if _served_revision is not None:
            POLICY_INFO.labels(revision=_served_revision).set(0)
        POLICY_INFO.labels(revision=revision).set(1)
        _served_revision = revision


# -- request ids and the interceptor ---------------------------------------------------------
# Made ids: a random per-process prefix and a counter (uuid4 per call costs more than the
# rest of the interceptor); 32 hex digits, unique across workers and restarts.
_ID_PREFIX = os.urandom(8).hex()
_id_counter = itertools.count(1)


def _reseed_after_fork() -> None:
    global _ID_PREFIX
    _ID_PREFIX = os.urandom(8).hex()


os.register_at_fork(after_in_child=_reseed_after_fork)


def request_id_from(metadata) -> str:
    """The caller's `x-request-id` when it is sane, else a new one."""
    for key, value in metadata or ():
        if key == REQUEST_ID_METADATA and isinstance(value, str):
            if 0 < len(value) <= MAX_REQUEST_ID and _REQUEST_ID_OK.match(value):
                return value
            break
    return f"{_ID_PREFIX}{next(_id_counter):016x}"


def observe_call(method: str, code: str, seconds: float) -> None:
    """One finished call's latency sample, by method and status code (every face)."""
    child = _durations.get((method, code))
    if child is None:
        child = _durations[method, code] = RPC_DURATION.labels(method=method, code=code)
    child.observe(seconds)
    log = get_logger()
    if log.isEnabledFor(logging.DEBUG):
        log.debug("rpc", extra={"method": method, "code": code,
                                "duration_ms": round(seconds * 1e3, 3)})


_durations: dict[tuple[str, str], object] = {}  # (method, code) -> histogram child


# -- the supervisor's side -------------------------------------------------------------------
def prepare_multiproc_dir() -> str:
    """A fresh, empty directory for the workers' sample files."""
    return tempfile.mkdtemp(prefix="entitle-metrics-")


def clean_multiproc_dir(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)


def worker_gone(path: str, pid: int) -> None:
    """Drop a dead worker's live gauges (its counters and histograms stay in the sum)."""
    with contextlib.suppress(OSError):
        multiprocess.mark_process_dead(pid, path)


def serve_http(listen: str, multiproc_dir: str | None = None):
    """Serve /metrics on `listen` (HOST:PORT): the workers' samples summed, or this
    process's registry. Returns (server, thread); the bound port is server.server_port."""
    from entitle.server.config import split_listen

    host, port = split_listen(listen)
    if multiproc_dir:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=multiproc_dir)
    else:
        registry = DEFAULT_REGISTRY
    return start_http_server(port, addr=host, registry=registry)


def multiproc_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None
