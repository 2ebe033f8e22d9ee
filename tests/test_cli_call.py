"""`entitle call` against a real server: reflection lookup, JSON in and out, errors."""

from __future__ import annotations

import json

import pytest
from test_server_harness import in_process, make_bundle

from entitle.cli import main


@pytest.fixture
def server(tmp_path):
    with in_process(make_bundle(tmp_path), f"sqlite:///{tmp_path / 'e.db'}") as srv:
        yield srv


def call(capsys, srv, *args: str) -> tuple[int, str, str]:
    code = main(["call", "--server", f"127.0.0.1:{srv.port}", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_list_names_the_services(server, capsys):
    code, out, _ = call(capsys, server, "--list")
    assert code == 0
    assert {"entitle.v1.EntitlementService", "grpc.health.v1.Health"} <= set(out.split())


def test_a_call_prints_the_reply_as_json_with_zero_values(server, capsys):
    ticket = {"ticket_id": "T-1", "customer_id": "acme", "product": "backup",
              "priority": "high", "created_at": "2026-06-15T09:00:00Z"}
    code, out, _ = call(capsys, server, "CheckCoverage", json.dumps({"ticket": ticket}))
    assert code == 0
    decision = json.loads(out)["decision"]
    assert decision["covered"] is True and decision["reason"] == "COVERAGE_REASON_COVERED"
    assert "used" in decision["quota"]  # zero, and printed
    code, out, _ = call(capsys, server, "grpc.health.v1.Health/Check", "{}")
    assert code == 0 and json.loads(out) == {"status": "SERVING"}


def test_errors_name_the_status_and_field(server, capsys):
    code, _, err = call(capsys, server, "CheckCoverage", '{"ticket": {"customer_id": "acme"}}')
    assert code == 1 and "INVALID_ARGUMENT" in err and "ticket." in err
    code, _, err = call(capsys, server, "NoSuchMethod", "{}")
    assert code == 2 and "no method" in err
    code, _, err = call(capsys, server, "Ping", "{not json")
    assert code == 2 and "bad request JSON" in err
    code, _, err = call(capsys, server)
    assert code == 2 and "--list" in err
