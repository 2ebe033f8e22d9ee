"""Prometheus metrics and request ids, scraped over HTTP after real traffic on a real port."""

from __future__ import annotations

import json
import urllib.request

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

from entitle.server import metrics
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
            metrics.count_alert("usage_threshold")  # the alerts code's hook
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
    assert delta("entitle_alerts_emitted_total", kind="usage_threshold") == 1
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
