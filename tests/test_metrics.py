"""Prometheus metrics and request ids, scraped over HTTP after real traffic on a real port."""

from __future__ import annotations

import io
import json
import logging
import sqlite3
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families
from test_server_harness import (
    ServerProcess,
    free_port,
    in_process,
    make_bundle,
    stub_for,
    ticket,
    wait_for,
)

from entitle.cli import main as cli_main
from entitle.server import metrics
from entitle.server.faces.grpc.interceptors import ServerInterceptor
from entitle.server.logs import JsonLines, get_logger
from entitle.v1 import entitle_pb2 as pb
from entitle.v1.entitle_pb2_grpc import EntitlementServiceStub

NEW_CONTRACT = """
---
kind: Contract
id: initech-extra
customer: initech
plan: incident-pack-10
products: [mail]
start: 2026-01-01
timezone: Europe/Berlin
precedence: 5
"""


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    """Every sample of http://127.0.0.1:port/metrics as {(name, sorted labels): value}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples, name: str, **labels) -> float:
    """The sum of the samples of `name` whose labels include `labels` (0 when none)."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= set(ls))


def names(samples) -> set[str]:
    return {n for n, _ in samples}


def check(stub, msg, consume=False):
    return stub.CheckCoverage(pb.CheckCoverageRequest(ticket=msg, consume=consume), timeout=10)


def traffic(stub) -> None:
    """A covered and an uncovered call, admissions incl. a duplicate and an exhausted one."""
    assert check(stub, ticket("M-1")).decision.covered
    assert not check(stub, ticket("M-2", customer_id="nobody")).decision.covered
    for i in range(10):
        assert check(stub, ticket(f"M-c{i}"), consume=True).admitted
    assert check(stub, ticket("M-c0"), consume=True).duplicate
    refused = check(stub, ticket("M-c10"), consume=True)
    assert refused.decision.reason == pb.COVERAGE_REASON_QUOTA_EXHAUSTED


def reload_good_then_bad(bundle, stub, settle=lambda revision: None) -> None:
    path = bundle / "contracts" / "others.yaml"
    path.write_text(path.read_text() + NEW_CONTRACT)
    good = stub.Reload(pb.ReloadRequest(), timeout=30)
    assert good.changed
    settle(good.policy_revision)
    (bundle / "contracts" / "broken.yaml").write_text("kind: Contract\n")
    assert stub.Reload(pb.ReloadRequest(), timeout=30).error


EXPECTED_NAMES = {
    "entitle_decisions_total",
    "entitle_rpc_duration_seconds_bucket",
    "entitle_rpc_duration_seconds_count",
    "entitle_rpc_duration_seconds_sum",
    "entitle_admissions_total",
    "entitle_reloads_total",
    "entitle_policy_info",
    "entitle_alert_subscribers",
    "entitle_store_errors_total",
}


def test_metrics_in_process(tmp_path):
    bundle = make_bundle(tmp_path)
    http, _ = metrics.serve_http("127.0.0.1:0")
    port = http.server_port
    try:
        before = scrape(port)
        with in_process(bundle, f"sqlite:///{tmp_path / 'entitle.db'}") as srv:
            revision = srv.stub.ServerInfo(pb.ServerInfoRequest(), timeout=10).policy_revision
            traffic(srv.stub)
            reload_good_then_bad(bundle, srv.stub)
            new_revision = srv.stub.ServerInfo(pb.ServerInfoRequest(), timeout=10).policy_revision
            usage_alerts = srv.stub.ListAlerts(pb.ListAlertsRequest(filter=pb.AlertFilter(
                kinds=[pb.ALERT_KIND_USAGE_THRESHOLD, pb.ALERT_KIND_QUOTA_EXHAUSTED],
            )), timeout=10).alerts
            after = scrape(port)
    finally:
        http.shutdown()
        http.server_close()

    assert names(after) >= EXPECTED_NAMES

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("entitle_decisions_total", reason="COVERED") == 12  # incl. the duplicate
    assert delta("entitle_decisions_total", reason="NO_CONTRACT") == 1
    assert delta("entitle_decisions_total", reason="QUOTA_EXHAUSTED") == 1
    assert ("entitle_decisions_total", (("reason", "CONTRACT_EXPIRED"),)) in after
    assert delta("entitle_admissions_total", result="admitted") == 10
    assert delta("entitle_admissions_total", result="duplicate") == 1
    assert delta("entitle_admissions_total", result="exhausted") == 1
    method = "/entitle.v1.EntitlementService/CheckCoverage"
    assert delta("entitle_rpc_duration_seconds_count", method=method, code="OK") == 14
    assert delta("entitle_rpc_duration_seconds_bucket", method=method, code="OK", le="+Inf") == 14
    assert delta("entitle_rpc_duration_seconds_count",
                 method="/entitle.v1.EntitlementService/Reload", code="OK") == 2
    assert delta("entitle_reloads_total", result="success") == 2  # start + good reload
    assert delta("entitle_reloads_total", result="failure") == 1
    assert value(after, "entitle_policy_info", revision=new_revision) == 1
    assert value(after, "entitle_policy_info", revision=revision) == 0
    # The 10 admissions on a 10-incident pack crossed 50, 80 and 100 % and exhausted it.
    assert delta("entitle_alerts_emitted_total", kind="USAGE_THRESHOLD") == 3
    assert delta("entitle_alerts_emitted_total", kind="QUOTA_EXHAUSTED") == 1
    assert len(usage_alerts) == 4
    assert ("entitle_store_errors_total", (("backend", "sqlite"),)) in after


def test_failed_rpcs_are_timed_by_status_code(tmp_path):
    http, _ = metrics.serve_http("127.0.0.1:0")
    try:
        before = scrape(http.server_port)
        with in_process(make_bundle(tmp_path), f"sqlite:///{tmp_path / 'e.db'}") as srv:
            with pytest.raises(grpc.RpcError) as failure:
                srv.stub.CheckCoverage(pb.CheckCoverageRequest(), timeout=10)
            assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        after = scrape(http.server_port)
    finally:
        http.shutdown()
        http.server_close()
    name = "entitle_rpc_duration_seconds_count"
    method = "/entitle.v1.EntitlementService/CheckCoverage"
    labels = {"method": method, "code": "INVALID_ARGUMENT"}
    assert value(after, name, **labels) - value(before, name, **labels) == 1


@pytest.fixture
def metrics_port():
    """This process's metrics on a real port (the in-process server's registry)."""
    http, _ = metrics.serve_http("127.0.0.1:0")
    try:
        yield http.server_port
    finally:
        http.shutdown()
        http.server_close()


def settles(port: int, name: str, want: float, **labels) -> dict:
    """Scrape until the sample is `want` (streams end on the server after the client left)."""
    def reached():
        samples = scrape(port)
        return samples if value(samples, name, **labels) == want else None

    return wait_for(reached, timeout=10)


def test_an_open_watch_stream_is_a_subscriber_and_its_cancel_is_not_an_error(
    tmp_path, metrics_port
):
    watch = "/entitle.v1.EntitlementService/WatchAlerts"
    count = "entitle_rpc_duration_seconds_count"
    before = scrape(metrics_port)
    with in_process(make_bundle(tmp_path), f"sqlite:///{tmp_path / 'e.db'}") as srv:
        stream = srv.stub.WatchAlerts(pb.WatchAlertsRequest(), timeout=60)
        assert stream.initial_metadata()
        settles(metrics_port, "entitle_alert_subscribers", 1)
        stream.cancel()
        settles(metrics_port, "entitle_alert_subscribers", 0)
        settles(metrics_port, count, value(before, count, method=watch, code="CANCELLED") + 1,
                method=watch, code="CANCELLED")
        # A stream that runs into the client's deadline says so.
        with pytest.raises(grpc.RpcError) as ended:
            list(srv.stub.WatchAlerts(pb.WatchAlertsRequest(), timeout=0.5))
        assert ended.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        after = settles(
            metrics_port, count,
            value(before, count, method=watch, code="DEADLINE_EXCEEDED") + 1,
            method=watch, code="DEADLINE_EXCEEDED",
        )
    for code in ("OK", "UNKNOWN"):
        assert value(after, count, method=watch, code=code) == value(
            before, count, method=watch, code=code
        )


def test_reflection_streams_of_entitle_call_are_never_unknown(tmp_path, metrics_port, capsys):
    reflection = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
    count = "entitle_rpc_duration_seconds_count"
    before = scrape(metrics_port)
    with in_process(make_bundle(tmp_path), f"sqlite:///{tmp_path / 'e.db'}") as srv:
        # `entitle call` looks the method up on one stream, then closes the channel: the
        # stream ends OK (its requests ended first) or CANCELLED, whichever reaches the server.
        for _ in range(4):
            assert cli_main(["call", "--server", f"127.0.0.1:{srv.port}", "Ping", "{}"]) == 0
        capsys.readouterr()
        after = settles(metrics_port, count, value(before, count, method=reflection) + 4,
                        method=reflection)
    ended = {code: value(after, count, method=reflection, code=code)
             - value(before, count, method=reflection, code=code) for code in ("OK", "CANCELLED")}
    assert sum(ended.values()) == 4, ended  # none UNKNOWN


def test_a_stream_cancelled_while_it_waits_at_a_yield_is_cancelled(metrics_port):
    """grpcio drops such a stream's generator: GeneratorExit at its `yield`, no status."""
    method, count = "/test.Streams/Forever", "entitle_rpc_duration_seconds_count"

    def forever(request, context):
        while True:
            yield b"tick"
            time.sleep(0.02)

    handler = grpc.unary_stream_rpc_method_handler(forever)
    server = grpc.server(ThreadPoolExecutor(2), interceptors=[ServerInterceptor()])
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("test.Streams", {"Forever": handler}),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    before = value(scrape(metrics_port), count, method=method, code="CANCELLED")
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            ticks = channel.unary_stream(method)(b"", timeout=60)
            assert next(ticks) == b"tick"
            ticks.cancel()
            after = settles(metrics_port, count, before + 1, method=method, code="CANCELLED")
    finally:
        server.stop(None).wait()
    assert value(after, count, method=method) == before + 1  # nothing else, UNKNOWN least


def test_a_store_failure_is_counted_and_answered_unavailable(tmp_path, metrics_port,
                                                             monkeypatch):
    from entitle.server.store import sqlite as sqlite_store

    monkeypatch.setattr(sqlite_store, "BUSY_TIMEOUT_MS", 20)  # give up on a lock quickly
    path = tmp_path / "e.db"
    check_coverage = "/entitle.v1.EntitlementService/CheckCoverage"
    before = scrape(metrics_port)
    no_sweeper = {"sweep_interval": 0}  # it would run into the lock too, now and then
    with in_process(make_bundle(tmp_path), f"sqlite:///{path}", config=no_sweeper) as srv:
        locker = sqlite3.connect(path, isolation_level=None)
        locker.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        try:
            with pytest.raises(grpc.RpcError) as failure:
                check(srv.stub, ticket("S-1"), consume=True)
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        assert failure.value.code() == grpc.StatusCode.UNAVAILABLE
        assert check(srv.stub, ticket("S-1"), consume=True).admitted  # the lock is gone
        after = scrape(metrics_port)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("entitle_store_errors_total", backend="sqlite") == 1
    assert delta("entitle_rpc_duration_seconds_count", method=check_coverage,
                 code="UNAVAILABLE") == 1
    assert delta("entitle_admissions_total", result="admitted") == 1


@pytest.fixture
def log_lines():
    """The `entitle` logger's JSON lines, as `entitle serve` writes them."""
    logger, out = get_logger(), io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonLines())
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield lambda: [json.loads(line) for line in out.getvalue().splitlines()]
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def test_a_refused_calls_log_line_carries_its_request_id(tmp_path, log_lines):
    tokens = tmp_path / "tokens"
    tokens.write_text("a-checker-token checker\n")
    config = {"tokens_file": str(tokens)}
    with in_process(make_bundle(tmp_path), f"sqlite:///{tmp_path / 'e.db'}",
                    config=config) as srv:
        ids = []
        for metadata in ((("x-request-id", "req-refused"),), ()):
            with pytest.raises(grpc.RpcError) as refused:
                srv.stub.Ping(pb.PingRequest(), metadata=metadata, timeout=10)
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
            ids.append(dict(refused.value.trailing_metadata())["x-request-id"])
        with pytest.raises(grpc.RpcError):  # streams too, in their initial metadata
            list(srv.stub.WatchAlerts(pb.WatchAlertsRequest(), timeout=10))
        authorized = (("authorization", "Bearer a-checker-token"),)
        _, call = srv.stub.Ping.with_call(pb.PingRequest(), metadata=authorized, timeout=10)
        allowed = dict(call.trailing_metadata())["x-request-id"]
    assert ids[0] == "req-refused" and len(ids[1]) == 32
    refusals = [line for line in log_lines() if line["event"] == "rpc refused"]
    assert [line.get("request_id") for line in refusals[:2]] == ids
    assert len(refusals) == 3 and refusals[2]["method"].endswith("/WatchAlerts")
    assert len(refusals[2].get("request_id", "")) == 32
    assert allowed not in ids  # the refusal's id did not stick to the method


def test_request_ids_are_echoed_or_made_and_logged(tmp_path, caplog):
    with in_process(make_bundle(tmp_path), f"sqlite:///{tmp_path / 'e.db'}") as srv:
        _, call = srv.stub.Ping.with_call(
            pb.PingRequest(), metadata=(("x-request-id", "req-42"),), timeout=10
        )
        assert dict(call.trailing_metadata())["x-request-id"] == "req-42"
        _, call = srv.stub.Ping.with_call(pb.PingRequest(), timeout=10)
        made = dict(call.trailing_metadata())["x-request-id"]
        _, again = srv.stub.Ping.with_call(pb.PingRequest(), timeout=10)
        assert len(made) == 32 and dict(again.trailing_metadata())["x-request-id"] != made
        # A failing call carries its id too, next to the handler's own trailers.
        with pytest.raises(grpc.RpcError) as failure:
            srv.stub.CheckCoverage(
                pb.CheckCoverageRequest(), metadata=(("x-request-id", "req-bad"),), timeout=10
            )
        trailers = dict(failure.value.trailing_metadata())
        assert trailers["entitle-field"] == "ticket"
        assert trailers["x-request-id"] == "req-bad"


def test_log_lines_of_a_call_carry_its_request_id():
    import logging

    from entitle.server.logs import REQUEST_ID, JsonLines

    token = REQUEST_ID.set("abc")
    try:
        record = logging.makeLogRecord({"msg": "store unavailable", "levelname": "ERROR"})
        line = json.loads(JsonLines().format(record))
    finally:
        REQUEST_ID.reset(token)
    assert line["request_id"] == "abc"
    assert "request_id" not in json.loads(JsonLines().format(record))


def test_request_id_from_metadata_rejects_junk():
    assert metrics.request_id_from((("x-request-id", "a b"),)) != "a b"
    assert metrics.request_id_from((("x-request-id", "x" * 500),)) != "x" * 500
    assert metrics.request_id_from((("x-request-id", "ok-1"),)) == "ok-1"


def all_serve(server: ServerProcess, revision: str) -> None:
    """Wait until every worker serves `revision` (they reload on the supervisor's SIGHUP)."""
    def done():
        seen = {}
        for _ in range(server.workers * 6):
            # A private subchannel pool: a new connection even while another one is open.
            options = (("grpc.use_local_subchannel_pool", 1),)
            with grpc.insecure_channel(f"127.0.0.1:{server.port}", options=options) as channel:
                stub = EntitlementServiceStub(channel)
                reply = stub.ServerInfo(pb.ServerInfoRequest(), timeout=10)
                seen[reply.pid] = reply.policy_revision
        return len(seen) == server.workers and set(seen.values()) == {revision}

    wait_for(done, timeout=30, interval=0.1)


def test_metrics_of_two_worker_processes_are_summed(tmp_path):
    bundle = make_bundle(tmp_path)
    mport = free_port()
    server = ServerProcess(
        bundle, f"sqlite:///{tmp_path / 'entitle.db'}", tmp_path / "server.log", workers=2,
        extra_args=("--metrics-listen", f"127.0.0.1:{mport}"),
    )
    with server:
        pids = set()
        for i in range(12):  # new connections spread over both workers
            channel, stub = stub_for(server.port)
            with channel:
                pids.add(stub.ServerInfo(pb.ServerInfoRequest(), timeout=10).pid)
                if i == 0:
                    traffic(stub)
                    reload_good_then_bad(bundle, stub, lambda rev: all_serve(server, rev))
                else:
                    check(stub, ticket(f"P-{i}"))
        channel, stub = stub_for(server.port)
        with channel:
            revision = stub.ServerInfo(pb.ServerInfoRequest(), timeout=10).policy_revision
            stream = stub.WatchAlerts(pb.WatchAlertsRequest(), timeout=60)
            assert stream.initial_metadata()
            settles(mport, "entitle_alert_subscribers", 1)  # the worker's live gauge, summed
            stream.cancel()
            settles(mport, "entitle_alert_subscribers", 0)

        def settled():
            s = scrape(mport)
            # Both workers saw the bad bundle (the supervisor's SIGHUPs after each Reload).
            return s if value(s, "entitle_reloads_total", result="failure") >= 2 else None

        samples = wait_for(settled, timeout=30, interval=0.2)
        server.stop()

    assert names(samples) >= EXPECTED_NAMES
    assert value(samples, "entitle_decisions_total") == 14 + 11
    assert value(samples, "entitle_decisions_total", reason="COVERED") >= 12
    assert value(samples, "entitle_decisions_total", reason="NO_CONTRACT") == 1
    assert value(samples, "entitle_admissions_total", result="admitted") == 10
    assert value(samples, "entitle_admissions_total", result="duplicate") == 1
    assert value(samples, "entitle_admissions_total", result="exhausted") == 1
    method = "/entitle.v1.EntitlementService/CheckCoverage"
    assert value(samples, "entitle_rpc_duration_seconds_count", method=method, code="OK") == 14 + 11
    assert value(samples, "entitle_reloads_total", result="success") >= 3  # starts, good Reload
    assert value(samples, "entitle_reloads_total", result="failure") >= 2  # SIGHUPs make it vary
    info = {dict(ls)["pid"]: v for (n, ls), v in samples.items()
            if n == "entitle_policy_info" and dict(ls)["revision"] == revision}
    assert len(info) == 2 and set(info.values()) == {1.0}  # one series per live worker
    assert len(pids) == 2
    assert value(samples, "entitle_store_errors_total", backend="sqlite") == 0
    assert ("entitle_store_errors_total", (("backend", "sqlite"),)) in samples
    assert value(samples, "entitle_alert_subscribers") == 0
    assert value(samples, "entitle_alerts_emitted_total", kind="USAGE_THRESHOLD") == 3
    assert value(samples, "entitle_alerts_emitted_total", kind="QUOTA_EXHAUSTED") == 1


def test_alerts_are_counted_once_committed(store_url):
    from datetime import UTC, datetime

    from prometheus_client import REGISTRY

    from entitle.server.store import NewAlert, open_store

    def emitted() -> float:
        sample = REGISTRY.get_sample_value(
            "entitle_alerts_emitted_total", {"kind": "CONTRACT_EXPIRING"}
        )
        return sample or 0.0

    at = datetime(2026, 6, 15, tzinfo=UTC)
    alert = NewAlert("k-1", "CONTRACT_EXPIRING", "c-1", "cust", "plan", at, threshold=30)
    store = open_store(store_url)
    try:
        before = emitted()
        store.append_alerts([alert], at)
        store.append_alerts([alert], at)  # a duplicate key is not emitted again
        assert emitted() - before == 1
    finally:
        store.close()
