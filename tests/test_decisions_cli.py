"""`entitle test` and `entitle check` end to end on the example bundle."""

from __future__ import annotations

import io
import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from entitle.cli import main

ROOT = Path(__file__).resolve().parent.parent
POLICIES = ROOT / "policies"
FIXTURES = Path(__file__).resolve().parent / "fixtures"

TICKET = {
    "ticket_id": "T-1",
    "customer_id": "initech",
    "product": "analytics",
    "priority": "medium",
    "created_at": "2026-06-10T13:00:00Z",
    "attributes": {"license_count": 75},
}


def test_example_suites_all_pass(tmp_path, capsys):
    junit = tmp_path / "report.xml"
    assert main(["test", str(POLICIES), "--junit", str(junit)]) == 0
    tree = ET.parse(junit).getroot()
    cases = tree.findall(".//testcase")
    assert len(cases) >= 30
    assert not tree.findall(".//failure") and not tree.findall(".//error")


def test_suites_under_hidden_directories_are_not_run(tmp_path, capsys):
    bundle = tmp_path / "bundle"
    shutil.copytree(POLICIES, bundle)
    (bundle / ".github").mkdir()
    shutil.copy(FIXTURES / "suites/failing/wrong_test.yaml", bundle / ".github" / "x_test.yaml")
    assert main(["test", str(bundle)]) == 0


def test_failing_expectations_are_reported_with_a_diff(tmp_path, capsys):
    bundle = tmp_path / "bundle"
    shutil.copytree(POLICIES, bundle, ignore=shutil.ignore_patterns("*_test.yaml"))
    shutil.copy(FIXTURES / "suites/failing/wrong_test.yaml", bundle / "wrong_test.yaml")
    junit = tmp_path / "report.xml"
    code = main(["test", str(bundle), "--junit", str(junit)])
    out = capsys.readouterr().out
    assert code == 2  # a test could not run (unknown fixture): errors outrank failures
    assert "reason: expected 'QUOTA_EXHAUSTED', got 'COVERED'" in out
    assert "targets.resolution.due_at: expected '2026-03-10T12:00:00Z', got " in out
    assert "no usage fixture named 'nope'" in out
    root = ET.parse(junit).getroot()
    assert len(root.findall(".//failure")) == 1 and len(root.findall(".//error")) == 1


def _check(monkeypatch, capsys, stdin: str, *extra: str) -> tuple[int, list[dict]]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = main(["check", "--policies", str(POLICIES), "--now", "2026-06-10T13:00:00Z", *extra])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    return code, lines


def test_check_one_pretty_object(monkeypatch, capsys):
    code, out = _check(monkeypatch, capsys, json.dumps(TICKET, indent=2))
    assert code == 0
    assert out[0]["contract_id"] == "initech-licensed"
    assert out[0]["sla_rule"] == "50-to-100-licenses"
    assert out[0]["targets"]["resolution"]["due_at"] == "2026-06-10T21:00:00Z"


def test_check_ndjson_goes_on_after_a_bad_line(monkeypatch, capsys):
    lines = [
        json.dumps(TICKET),
        "{not json",
        json.dumps({**TICKET, "priority": "critical"}),
        json.dumps({**TICKET, "ticket_id": "T-2", "product": "mail"}),
    ]
    code, out = _check(monkeypatch, capsys, "\n".join(lines) + "\n")
    assert code == 1
    assert out[0]["reason"] == "COVERED"
    assert out[1]["line"] == 2 and out[1]["error"]["field"] == "ticket"
    assert out[2]["line"] == 3 and out[2]["error"]["field"] == "priority"
    assert "unknown priority 'critical'" in out[2]["error"]["message"]
    assert out[3]["contract_id"] == "initech-basic"


def test_check_ndjson_goes_on_after_a_bad_first_line(monkeypatch, capsys):
    lines = ["", "{not json", json.dumps(TICKET), "", json.dumps({**TICKET, "ticket_id": "T-2"})]
    code, out = _check(monkeypatch, capsys, "\n".join(lines) + "\n")
    assert code == 1
    assert out[0]["line"] == 2 and out[0]["error"]["field"] == "ticket"
    assert [(d["ticket_id"], d["reason"]) for d in out[1:]] == [("T-1", "COVERED"),
                                                               ("T-2", "COVERED")]


def test_check_reads_one_pretty_printed_ticket(monkeypatch, capsys):
    code, out = _check(monkeypatch, capsys, "\n" + json.dumps(TICKET, indent=2) + "\n")
    assert code == 0 and out[0]["ticket_id"] == "T-1"


def test_check_usage_file_changes_the_answer(monkeypatch, capsys, tmp_path):
    usage = tmp_path / "usage.json"
    usage.write_text(json.dumps([
        {"contract_id": "initech-licensed", "used": 30},
        {"contract_id": "initech-basic", "period_start": "2026-06-01", "used": 5},
    ]))
    code, out = _check(monkeypatch, capsys, json.dumps(TICKET), "--usage", str(usage))
    assert code == 0
    assert out[0]["reason"] == "COVERED_OVERAGE"
    assert out[0]["contract_id"] == "initech-basic"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"ticket_id": ""}, "ticket_id"),
        ({"customer_id": None}, "customer_id"),
        ({"created_at": "2026-06-10T13:00:00"}, "created_at"),
        ({"created_at": "1999-12-31T00:00:00Z"}, "created_at"),
        ({"created_at": "2026-06-12T13:00:00Z"}, "created_at"),
        ({"attributes": {"license_count": True}}, "attributes.license_count"),
        ({"colour": "red"}, "colour"),
        # The same text rules as the server's (entitle.engine.text):
        ({"customer_id": "glo\x00bex"}, "customer_id"),
        ({"ticket_id": "T\t1"}, "ticket_id"),
        ({"subject": "bell\x07"}, "subject"),
        ({"attributes": {"tier": "a\x00"}}, "attributes.tier"),
        ({"attributes": {"ti\ner": "gold"}}, "attributes"),
    ],
)
def test_check_names_the_bad_field(monkeypatch, capsys, change, field):
    code, out = _check(monkeypatch, capsys, json.dumps({**TICKET, **change}))
    assert code == 1
    assert out[0]["error"]["field"] == field


def test_check_refuses_an_invalid_bundle(monkeypatch, capsys, tmp_path):
    (tmp_path / "plan.yaml").write_text("kind: Plan\nid: p\ntype: pack\nunit: incidents\n"
                                        "limit: 3\nsla: missing-sla\n")
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(TICKET)))
    assert main(["check", "--policies", str(tmp_path)]) == 2
    assert "plan.yaml:6:6: unknown SLA 'missing-sla'" in capsys.readouterr().err


GLOBEX = {"customer_id": "globex", "product": "backup", "priority": "high",
          "created_at": "2026-06-10T07:00:00Z"}  # Wednesday 09:00 CEST, Berlin desk


def test_check_replays_events_into_each_target_clock(monkeypatch, capsys):
    events = [
        {"id": "e2", "type": "status_changed", "status": "open", "at": "2026-06-10T11:00:00Z"},
        {"id": "e1", "type": "status_changed", "status": "pending", "at": "2026-06-10T08:00:00Z"},
        {"id": "e3", "type": "agent_reply", "at": "2026-06-10T07:30:00Z"},
    ]
    code, out = _check(monkeypatch, capsys, json.dumps({**GLOBEX, "ticket_id": "G-1",
                                                        "events": events}))
    assert code == 0
    first, resolution = out[0]["targets"]["first_response"], out[0]["targets"]["resolution"]
    assert (first["state"], first["stopped_at"]) == ("met", "2026-06-10T07:30:00Z")
    # 07-08Z (1h), pending until 11:00Z (lunch 10-11Z is closed anyway), 11-13Z (2h) = 3h
    assert resolution["state"] == "breached"
    assert resolution["elapsed_minutes"] == 180 and resolution["remaining_minutes"] == 0
    assert resolution["due_at"] == resolution["breached_at"] == "2026-06-10T13:00:00Z"
    assert [c["percent"] for c in resolution["crossed"]] == [50, 75, 100]


def test_check_pauses_form_open_pause_has_no_due_time(monkeypatch, capsys):
    ticket = {**GLOBEX, "ticket_id": "G-2", "first_response_at": "2026-06-10T07:15:00Z",
              "pauses": [{"from": "2026-06-10T07:30:00Z"}]}
    code, out = _check(monkeypatch, capsys, json.dumps(ticket))
    assert code == 0
    resolution = out[0]["targets"]["resolution"]
    assert (resolution["state"], resolution["paused"], resolution["due_at"]) == (
        "paused", True, None)
    assert resolution["elapsed_minutes"] == 30 and resolution["percent_elapsed"] == round(
        100 * 30 / 180, 4)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"events": [{"id": "e1", "type": "agent_reply"}]}, "events[0].at"),
        ({"events": [{"id": "e1", "type": "status_changed", "at": "2026-06-10T08:00:00Z"}]},
         "events[0].status"),
        ({"events": [{"id": "e1", "type": "agent_reply", "at": "2026-06-10T08:00:00Z",
                      "colour": "red"}]}, "events[0].colour"),
        ({"events": {"id": "e1"}}, "events"),
        ({"pauses": [{"from": "2026-06-10T09:00:00Z", "to": "2026-06-10T08:00:00Z"}]},
         "pauses[0].to"),
        ({"pauses": [{"to": "2026-06-10T08:00:00Z"}]}, "pauses[0].from"),
        ({"pauses": [{"from": "2026-06-10T09:00:00Z"}],
          "events": [{"id": "e1", "type": "agent_reply", "at": "2026-06-10T08:00:00Z"}]},
         "events"),
    ],
)
def test_check_names_the_bad_history_field(monkeypatch, capsys, change, field):
    code, out = _check(monkeypatch, capsys, json.dumps({**GLOBEX, "ticket_id": "G-3", **change}))
    assert code == 1
    assert out[0]["error"]["field"] == field
