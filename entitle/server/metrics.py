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
import time
from collections.abc import Callable, Iterator

import grpc
from prometheus_client import REGISTRY as DEFAULT_REGISTRY
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, multiprocess
from prometheus_client.exposition import start_http_server

from entitle.engine.decide import REASONS
from entitle.server.logs import REQUEST_ID, get_logger

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


def _code_of(context: grpc.ServicerContext, failed: bool) -> str:
    code = context.code()
    if code is None:
        return "UNKNOWN" if failed else "OK"
    if isinstance(code, grpc.StatusCode):
        return code.name
    return str(code)


def _stream_code_of(context: grpc.ServicerContext, failed: bool, closed: bool) -> str:
    """A stream the client ended (cancel, deadline, closed channel) is not a server error.

    Clients end streams that way routinely (`entitle call` after its reflection lookups,
    `entitle alerts --follow` on Ctrl-C); the handler then returns, raises, or is closed at
    its `yield` (GeneratorExit), without a status of its own.
    """
    if context.code() is None and (closed or not context.is_active()):
        left = context.time_remaining()
        return "DEADLINE_EXCEEDED" if left is not None and left <= DEADLINE_SLACK else "CANCELLED"
    return _code_of(context, failed)


_durations: dict[tuple[str, str], object] = {}  # (method, code) -> histogram child


def _observe(method: str, code: str, seconds: float) -> None:
    child = _durations.get((method, code))
    if child is None:
        child = _durations[method, code] = RPC_DURATION.labels(method=method, code=code)
    child.observe(seconds)


class ServerInterceptor(grpc.ServerInterceptor):
    """Per RPC: a request id (metadata and logs) and a latency sample by method and code.

    Unary calls return the id in trailing metadata, merged with the handler's: sending
    initial metadata early costs the server an extra completion-queue round (a third of an
    empty call's throughput, measured). Streams send it in initial metadata, when they open.
    """

    def __init__(self) -> None:
        # method -> (the inner handler, its wrapping): rebuilt only when the inner handler
        # changes (a refused call gets a one-off handler from the security interceptor).
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    def intercept_service(self, continuation, handler_call_details):
        # The interceptors after this one choose the handler, and log refusals (`rpc refused`)
        # while they do: on gRPC's polling thread, before any handler runs.
        rid = request_id_from(handler_call_details.invocation_metadata)
        token = REQUEST_ID.set(rid)
        try:
            handler = continuation(handler_call_details)
        finally:
            REQUEST_ID.reset(token)
        if handler is None:
            return None
        method = handler_call_details.method
        hit = self._wrapped.get(method)
        if hit is not None and hit[0] is handler:
            return hit[1]
        self._wrapped[method] = (handler, self._wrap(method, handler))
        # A handler not seen before may be a refusal's one-off: this call answers with the id
        # its refusal was logged with.
        return self._wrap(method, handler, rid)

    def _wrap(self, method: str, handler: grpc.RpcMethodHandler,
              rid: str | None = None) -> grpc.RpcMethodHandler:
        """`handler` timed and given a request id: `rid`, or else one per call."""
        if handler.unary_unary is not None:
            return handler._replace(unary_unary=self._unary(method, handler.unary_unary, rid))
        if handler.unary_stream is not None:
            return handler._replace(unary_stream=self._stream(method, handler.unary_stream, rid))
        if handler.stream_unary is not None:
            return handler._replace(stream_unary=self._unary(method, handler.stream_unary, rid))
        return handler._replace(stream_stream=self._stream(method, handler.stream_stream, rid))

    @staticmethod
    def _end(method: str, code: str, token, started: float) -> None:
        elapsed = time.perf_counter() - started
        _observe(method, code, elapsed)
        log = get_logger()
        if log.isEnabledFor(logging.DEBUG):
            log.debug("rpc", extra={"method": method, "code": code,
                                    "duration_ms": round(elapsed * 1e3, 3)})
        REQUEST_ID.reset(token)

    def _unary(self, method: str, behavior: Callable, fixed_rid: str | None) -> Callable:
        def wrapped(request, context):
            rid = fixed_rid or request_id_from(context.invocation_metadata())
            token, started = REQUEST_ID.set(rid), time.perf_counter()
            failed = True
            try:
                response = behavior(request, context)
                failed = False
                return response
            finally:
                with contextlib.suppress(Exception):
                    trailers = context.trailing_metadata() or ()
                    context.set_trailing_metadata((*trailers, (REQUEST_ID_METADATA, rid)))
                self._end(method, _code_of(context, failed), token, started)

        return wrapped

    def _stream(self, method: str, behavior: Callable, fixed_rid: str | None) -> Callable:
        def wrapped(request, context):
            rid = fixed_rid or request_id_from(context.invocation_metadata())
            with contextlib.suppress(Exception):  # a handler may already have sent it
                context.send_initial_metadata(((REQUEST_ID_METADATA, rid),))
            token, started = REQUEST_ID.set(rid), time.perf_counter()
            failed, closed = True, False
            try:
                yield from behavior(request, context)
                failed = False
            except GeneratorExit:  # gRPC dropped the stream: the client is gone
                closed = True
                raise
            finally:
                self._end(method, _stream_code_of(context, failed, closed), token, started)

        return wrapped


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
