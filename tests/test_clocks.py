"""SLA clocks: table cases from tests/fixtures/clocks/*.yaml against a real compiled bundle."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from entitle.engine.clocks import ClockTerms, History, clock_terms, evaluate
from entitle.engine.decide import Due, instant_json, target_json
from entitle.engine.expect import mismatches
from entitle.engine.snapshot import Snapshot
from entitle.engine.ticket import MAX_EVENTS, TicketEvent, parse_instant, ticket_from_json

FIXTURES = Path(__file__).parent / "fixtures" / "clocks"
BASE_TICKET = {"ticket_id": "T-1", "customer_id": "acme", "product": "crm"}


def _cases() -> list:
    return [
        pytest.param(doc, case, id=f"{path.stem}: {case['name']}")
        for path in sorted(FIXTURES.glob("*.yaml"))
        for doc in [yaml.safe_load(path.read_text())]
        for case in doc["cases"]
    ]


@pytest.fixture(scope="module")
def snapshot():
    snap = Snapshot.load(FIXTURES / "bundle")
    yield snap
    snap.close()


def _stringify(value):
    """YAML timestamps back to the ISO text the ticket JSON carries."""
    if isinstance(value, dict):
        return {k: _stringify(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_stringify(v) for v in value]
    if hasattr(value, "isoformat"):
        return instant_json(value)
    return value


def report_of(snapshot: Snapshot, doc: dict, case: dict):
    ticket = ticket_from_json(_stringify({**BASE_TICKET, **doc.get("ticket", {}),
                                          **case.get("ticket", {})}))
    terms = clock_terms(snapshot, case.get("sla", doc["sla"]), ticket)
    now = parse_instant("now", _stringify(case["now"]))
    return terms, ticket, now, evaluate(terms, History.of(ticket), now)


def _clocks_json(report) -> dict:
    return {
        (f"{c.metric}#{c.cycle}" if c.cycle else c.metric):
            target_json(Due(c.metric, c.minutes, c.clock, c.calendar_id, c.due_at, c))
        for c in report.clocks
    }


@pytest.mark.parametrize(("doc", "case"), _cases())
def test_clock_case(snapshot, doc, case):
    _, _, _, report = report_of(snapshot, doc, case)
    actual = _clocks_json(report)
    problems = mismatches(_stringify(case.get("clocks", {})), actual)
    for key in case.get("absent", ()):
        if key in actual:
            problems.append(f"{key}: expected no clock, got {actual[key]['state']}")
    if "crossings" in case:
        got = [[c.metric, c.cycle, c.threshold, instant_json(c.at)] for c in report.crossings]
        problems += mismatches(_stringify(case["crossings"]), got, "crossings")
    if "next_crossing_at" in case:
        problems += mismatches(_stringify(case["next_crossing_at"]),
                               instant_json(report.next_crossing_at), "next_crossing_at")
        if case["next_crossing_at"] is None and report.next_crossing_at is not None:
            problems.append(f"next_crossing_at: expected none, got {report.next_crossing_at}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(("doc", "case"), _cases())
def test_pinned_terms_give_the_same_clocks(snapshot, doc, case):
    """Terms stored as JSON by a server and read back measure exactly the same."""
    terms, ticket, now, report = report_of(snapshot, doc, case)
    pinned = ClockTerms.from_json(terms.to_json())
    assert pinned.to_json() == terms.to_json()
    assert evaluate(pinned, History.of(ticket), now) == report


@pytest.mark.parametrize(("doc", "case"), _cases())
def test_crossings_are_those_up_to_now_and_the_next_one_comes_after(snapshot, doc, case):
    """Re-asking at the next crossing instant (nothing else happening) finds one more
    threshold crossed exactly there, and every earlier crossing still."""
    terms, ticket, now, report = report_of(snapshot, doc, case)
    assert all(c.at <= now for c in report.crossings)
    if report.next_crossing_at is None:
        return
    history = History.of(ticket)
    seen = replace(history, events=tuple(e for e in history.events if e.at <= now))
    later = evaluate(terms, seen, report.next_crossing_at)
    new = set(later.crossings) - set(report.crossings)
    assert new and all(c.at == report.next_crossing_at for c in new)
    assert set(report.crossings) <= set(later.crossings)


def test_a_ticket_at_the_history_limit_replays_every_cycle(snapshot):
    """MAX_EVENTS events: 2,500 reply/pending/customer/open rounds, each a met cycle."""
    start = parse_instant("created_at", "2026-03-09T08:00:00Z")
    events = []
    for i in range(MAX_EVENTS // 4):
        at = start + timedelta(minutes=20 * i)
        later = at + timedelta(minutes=10)
        events += [TicketEvent(f"a{i}", "agent_reply", at),
                   TicketEvent(f"s{i}", "status_changed", at, status="pending"),
                   TicketEvent(f"c{i}", "customer_message", later),
                   TicketEvent(f"o{i}", "status_changed", later, status="open")]
    ticket = ticket_from_json({**BASE_TICKET, "priority": "high",
                               "created_at": "2026-03-09T08:00:00Z"})
    terms = clock_terms(snapshot, "desk", ticket)
    now = start + timedelta(minutes=20 * (MAX_EVENTS // 4) + 5)
    cycles = [c for c in evaluate(terms, History(start, "high", tuple(events)), now).clocks
              if c.metric == "next_response"]
    assert [c.cycle for c in cycles] == list(range(1, MAX_EVENTS // 4 + 1))
    assert {c.state for c in cycles[:-1]} == {"met"}
    assert cycles[-1].state in ("running", "paused", "breached")


def test_same_instant_events_of_one_type_apply_by_id_whatever_the_delivery_order():
    from entitle.engine.clocks import ordered_events

    at = parse_instant("at", "2026-06-15T10:00:00Z")
    low = TicketEvent("e0", "priority_changed", at, priority="low")
    medium = TicketEvent("e1", "priority_changed", at, priority="medium")
    assert ordered_events([medium, low]) == ordered_events([low, medium]) == (low, medium)
