"""`--decision-log`: one NDJSON line per CheckCoverage decision, masked as asked."""

from __future__ import annotations

import contextlib
import json
import os
import stat
import threading

from test_server_harness import NOW, ServerProcess, make_bundle, stub_for, ticket

from entitle.server.clock import FixedClock
from entitle.server.config import ServeConfig
from entitle.server.decisionlog import DecisionLog
from entitle.server.faces.grpc.server import build_server
from entitle.server.runtime import Runtime
from entitle.v1 import entitle_pb2 as pb


@contextlib.contextmanager
def serving(bundle, store_url, **config):
    """One in-process worker with extra ServeConfig fields (the decision log's)."""
    cfg = ServeConfig(policies=str(bundle), store_url=store_url, listen="127.0.0.1:0",
                      reload_interval=0, grace=1.0, **config)
    runtime = Runtime.open(cfg, FixedClock(NOW))
    server, port = build_server(runtime)
    runtime.start()
    server.start()
    channel, stub = stub_for(port)
    try:
        yield stub
    finally:
        channel.close()
        server.stop(None).wait()
        runtime.close()


def read_lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_decisions_are_logged_with_masking(tmp_path, store_url):
    log = tmp_path / "decisions.ndjson"
    bundle = make_bundle(tmp_path)
    with serving(bundle, store_url, decision_log=str(log), mask_attributes=("email", "tier"),
                 mask_subject=True) as stub:
        msg = ticket("D-1", email="a@b.example", tier="gold", licenses=40)
        msg.subject = "password of the CEO"
        reply, _ = stub.CheckCoverage.with_call(
            pb.CheckCoverageRequest(ticket=msg, consume=True),
            metadata=(("x-request-id", "req-7"),), timeout=10,
        )
        assert reply.admitted
        stub.CheckCoverage(pb.CheckCoverageRequest(ticket=ticket("D-2", "nobody")), timeout=10)
        stub.CheckCoverage(pb.CheckCoverageRequest(ticket=msg, consume=True), timeout=10)
        revision = stub.ServerInfo(pb.ServerInfoRequest(), timeout=10).policy_revision

    first, second, third = read_lines(log)
    assert first["request_id"] == "req-7"
    assert first["time"] == "2026-06-15T10:00:00Z"
    assert first["ticket"] == {
        "ticket_id": "D-1", "customer_id": "globex", "product": "mail", "priority": "high",
        "created_at": "2026-06-15T10:00:00Z", "subject": "***",
        "attributes": {"email": "***", "licenses": 40.0, "tier": "***"},
    }
    assert "a@b.example" not in log.read_text() and "CEO" not in log.read_text()
    result = first["result"]
    assert result["reason"] == "COVERED" and result["covered"] is True
    assert result["contract_id"] == "globex-mail-pack" and result["sla_id"]
    assert result["targets"] and all(t["due_at"] for t in result["targets"])
    assert result["quota"]["used"] == 1
    assert "sla_rule" in result
    assert first["policy_revision"] == revision
    assert first["consume"] is True and first["admitted"] is True
    assert isinstance(first["latency_ms"], float) and first["latency_ms"] >= 0
    assert second["result"]["reason"] == "NO_CONTRACT" and second["ticket"]["subject"] is None
    assert len(second["request_id"]) == 32  # made by the server
    assert third["duplicate"] is True and third["result"]["quota"]["used"] == 1


def test_no_log_unless_asked(tmp_path):
    bundle = make_bundle(tmp_path)
    with serving(bundle, f"sqlite:///{tmp_path / 'e.db'}") as stub:
        stub.CheckCoverage(pb.CheckCoverageRequest(ticket=ticket("D-1")), timeout=10)
    assert not list(tmp_path.glob("*.ndjson"))


def test_concurrent_writers_never_interleave_lines(tmp_path):
    path = tmp_path / "d.ndjson"
    logs = [DecisionLog(str(path)) for _ in range(4)]  # four descriptors, as four workers
    line = json.dumps({"x": "y" * 3000}) + "\n"  # close to PIPE_BUF

    def write(log):
        for _ in range(200):
            log.write(line)

    threads = [threading.Thread(target=write, args=(log,)) for log in logs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for log in logs:
        log.close()
    lines = path.read_text().splitlines()
    assert len(lines) == 800 and all(json.loads(x) == {"x": "y" * 3000} for x in lines)


def test_two_worker_processes_share_one_log(tmp_path):
    bundle = make_bundle(tmp_path)
    log = tmp_path / "decisions.ndjson"
    server = ServerProcess(
        bundle, f"sqlite:///{tmp_path / 'entitle.db'}", tmp_path / "server.log", workers=2,
        extra_args=("--decision-log", str(log), "--mask-attribute", "email"),
    )
    with server:
        for i in range(20):
            channel, stub = stub_for(server.port)
            with channel:
                stub.CheckCoverage(
                    pb.CheckCoverageRequest(ticket=ticket(f"W-{i}", email="x@y.example")),
                    timeout=10,
                )
        server.stop()
    lines = read_lines(log)
    assert sorted(x["ticket"]["ticket_id"] for x in lines) == sorted(f"W-{i}" for i in range(20))
    assert {x["ticket"]["attributes"]["email"] for x in lines} == {"***"}


def test_the_log_is_created_with_mode_0640_under_a_umask_of_022(tmp_path, capsys):
    from entitle.cli import main

    path = tmp_path / "decisions.ndjson"
    old = os.umask(0o022)
    try:
        # `entitle serve` creates the log before anything else can fail: --workers 0 stops it
        assert main(["serve", "--decision-log", str(path), "--workers", "0"]) == 2
        assert "--workers" in capsys.readouterr().err
        assert stat.S_IMODE(path.stat().st_mode) == 0o640
        DecisionLog(str(tmp_path / "direct.ndjson")).close()
        assert stat.S_IMODE((tmp_path / "direct.ndjson").stat().st_mode) == 0o640
    finally:
        os.umask(old)


def test_an_unwritable_log_path_stops_serve_with_exit_2(tmp_path, capsys):
    from entitle.cli import main

    path = tmp_path / "no-such-dir" / "decisions.ndjson"
    assert main(["serve", "--decision-log", str(path)]) == 2
    assert f"--decision-log {path}" in capsys.readouterr().err
