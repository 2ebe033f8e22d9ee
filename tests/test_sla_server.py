"""Live SLA clocks in the server, over a real port on SQLite and PostgreSQL: RecordTicketEvents,
GetTicketSla, SLA_WARNING / SLA_BREACHED alerts once each at their true instants."""

from __future__ import annotations

import itertools
import json
import shutil
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_server_harness import (
    NOW,
    ServerProcess,
    in_process,
    make_bundle,
    stub_for,
    ticket,
    wait_for,
)

from entitle.engine.model import PRIORITIES
from entitle.engine.ticket import EVENT_TYPES
from entitle.server.service.wire import timestamp
from entitle.server.slaclocks import MAX_TICKET_EVENTS, SlaSweeper, sla_sweeper_of
from entitle.v1 import entitle_pb2 as pb

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "sla_server"
T0 = NOW  # 2026-06-15 10:00 UTC: tickets are created then
M = timedelta(minutes=1)
QUIET = {"sla_sweep_interval": 3600}  # one sweep at start, then the tests sweep by hand
WARNING, BREACHED = pb.ALERT_KIND_SLA_WARNING, pb.ALERT_KIND_SLA_BREACHED
STATE = {v: k.removeprefix("CLOCK_STATE_").lower() for k, v in pb.ClockState.items()}
# The live-desk SLA (calendar time; pauses on pending/on_hold; warns at 50 and 75 %):
# medium fr 2h, nr 2h, res 8h; urgent fr 15m, nr 30m, res 2h.


@pytest.fixture
def bundle(tmp_path):
    root = make_bundle(tmp_path)
    shutil.copy(FIXTURES / "live-desk.yaml", root / "live-desk.yaml")
    return root


def admit(stub, ticket_id: str, priority: str = "medium", created_at: datetime = T0,
          **fields) -> pb.CheckCoverageResponse:
    msg = ticket(ticket_id, customer_id="initech", product="live-chat", priority=priority,
                 created_at=created_at)
    for name, value in fields.items():
        getattr(msg, name).extend(value)
    answer = stub.CheckCoverage(pb.CheckCoverageRequest(ticket=msg, consume=True), timeout=10)
    assert answer.decision.covered and answer.decision.contract_id == "initech-live"
    return answer


def event(event_id: str, kind: str, at: datetime, **fields) -> pb.TicketEvent:
    return pb.TicketEvent(id=event_id, type=kind, at=timestamp(at), **fields)


def record(stub, ticket_id: str, *events: pb.TicketEvent) -> pb.RecordTicketEventsResponse:
    return stub.RecordTicketEvents(
        pb.RecordTicketEventsRequest(ticket_id=ticket_id, events=events), timeout=10)


def sla_of(stub, ticket_id: str, at: datetime | None = None) -> pb.TicketSla:
    req = pb.GetTicketSlaRequest(ticket_id=ticket_id)
    if at is not None:
        req.at.CopyFrom(timestamp(at))
    return stub.GetTicketSla(req, timeout=10).sla


def clocks(sla: pb.TicketSla) -> dict[tuple[str, int], str]:
    return {(c.metric, c.cycle): STATE[c.state] for c in sla.clocks}


def clock(sla: pb.TicketSla, metric: str, cycle: int = 0) -> pb.Target:
    return next(c for c in sla.clocks if c.metric == metric and c.cycle == cycle)


def when(ts) -> datetime:
    return ts.ToDatetime(tzinfo=UTC)


def sla_alerts(stub, ticket_id: str | None = None) -> list[pb.Alert]:
    page = stub.ListAlerts(pb.ListAlertsRequest(
        page_size=1000, filter=pb.AlertFilter(kinds=[WARNING, BREACHED])), timeout=10)
    return [a for a in page.alerts if ticket_id is None or a.ticket_id == ticket_id]


def summary(alerts) -> list[tuple]:
    """(kind, metric, cycle, threshold, occurred_at) of each alert, in cursor order."""
    return [(pb.AlertKind.Name(a.kind).removeprefix("ALERT_KIND_"), a.metric, a.cycle,
             a.threshold, when(a.occurred_at)) for a in alerts]


def set_now(srv, at: datetime) -> None:
    srv.runtime.clock.at = at


def sla_sweep(srv) -> int | None:
    sweeper = sla_sweeper_of(srv.runtime)
    assert isinstance(sweeper, SlaSweeper)
    return sweeper.sweep()


# --- a ticket's life ------------------------------------------------------------------------


def test_a_ticket_life_created_pending_reply_reopen_priority_up_resolved(bundle, store_url):
    with in_process(bundle, store_url, config=QUIET) as srv:
        stub = srv.stub
        admit(stub, "T-life")
        sla = sla_of(stub, "T-life")
        assert (sla.sla_id, sla.priority, sla.event_count) == ("live-desk", "medium", 0)
        assert clocks(sla) == {("first_response", 0): "running", ("next_response", 0): "inactive",
                               ("resolution", 0): "running"}
        assert when(clock(sla, "first_response").due_at) == T0 + 120 * M
        assert when(sla.next_alert_at) == T0  # admitted: the next sweep looks at it
        assert sla_sweep(srv) == 0
        assert when(sla_of(stub, "T-life").next_alert_at) == T0 + 60 * M  # fr at 50 %

        # 10:30 pending, 11:30 open again: every clock stood still for an hour.
        set_now(srv, T0 + 95 * M)
        out = record(stub, "T-life", event("e1", "status_changed", T0 + 30 * M, status="Pending"),
                     event("e2", "status_changed", T0 + 90 * M, status="open"))
        fr = clock(out.sla, "first_response")
        assert STATE[fr.state] == "running" and fr.elapsed_minutes == 35
        assert when(fr.due_at) == T0 + 180 * M  # two hours of work plus the hour paused
        assert [e.duplicate for e in out.events] == [False, False]
        paused = sla_of(stub, "T-life", at=T0 + 60 * M)
        assert STATE[clock(paused, "first_response").state] == "paused"
        assert not clock(paused, "first_response").HasField("due_at")

        # 11:50 the agent replies (fr met at 50 of 120 minutes); 12:30 resolved.
        set_now(srv, T0 + 150 * M)
        out = record(stub, "T-life", event("e3", "agent_reply", T0 + 110 * M),
                     event("e4", "resolved", T0 + 150 * M))
        assert clocks(out.sla) == {("first_response", 0): "met", ("next_response", 0): "inactive",
                                   ("resolution", 0): "met"}
        assert not out.sla.HasField("next_alert_at")  # nothing runs: the sweeper skips it

        # 13:00 the customer writes back: the ticket reopens and a next_response cycle opens.
        set_now(srv, T0 + 185 * M)
        out = record(stub, "T-life", event("e5", "reopened", T0 + 180 * M),
                     event("e6", "customer_message", T0 + 180 * M))
        assert clocks(out.sla) == {("first_response", 0): "met", ("next_response", 1): "running",
                                   ("resolution", 0): "running"}
        assert clock(out.sla, "resolution").elapsed_minutes == 90 + 5  # resolved time skipped

        # 13:40 the priority goes up to urgent: next_response (30m) and resolution (2h) are
        # already past their new targets, so each breaches at the change, warnings with it.
        set_now(srv, T0 + 220 * M)
        out = record(stub, "T-life", event("e7", "priority_changed", T0 + 220 * M,
                                           priority="urgent"))
        assert out.sla.priority == "urgent"
        assert clocks(out.sla)[("next_response", 1)] == "breached"
        assert clocks(out.sla)[("resolution", 0)] == "breached"
        change = T0 + 220 * M
        assert sorted(summary(sla_alerts(stub, "T-life"))) == sorted([
            ("SLA_WARNING", "next_response", 1, 50, change),
            ("SLA_WARNING", "next_response", 1, 75, change),
            ("SLA_BREACHED", "next_response", 1, 100, change),
            ("SLA_WARNING", "resolution", 0, 50, change),
            ("SLA_WARNING", "resolution", 0, 75, change),
            ("SLA_BREACHED", "resolution", 0, 100, change),
        ])

        # 14:00 reply, 14:30 resolved: both met late; the breaches stay, nothing new.
        set_now(srv, T0 + 270 * M)
        out = record(stub, "T-life", event("e8", "agent_reply", T0 + 240 * M),
                     event("e9", "resolved", T0 + 270 * M))
        assert clocks(out.sla) == {("first_response", 0): "met", ("next_response", 1): "met_late",
                                   ("resolution", 0): "met_late"}
        assert when(clock(out.sla, "resolution").breached_at) == change
        assert out.sla.event_count == 9
        set_now(srv, T0 + 24 * 60 * M)
        assert sla_sweep(srv) == 0
        assert len(sla_alerts(stub, "T-life")) == 6
        breach = next(a for a in sla_alerts(stub, "T-life") if a.kind == BREACHED)
        assert breach.customer_id == "initech" and breach.contract_id == "initech-live"
        assert list(breach.recipients) == ["desk-lead@initech.example"]
        assert "T-life" in breach.message


def test_retried_and_out_of_order_events_give_the_same_clocks(bundle, store_url):
    history = [
        event("a", "status_changed", T0 + 10 * M, status="on_hold"),
        event("b", "status_changed", T0 + 40 * M, status="open"),
        event("c", "agent_reply", T0 + 50 * M),
        event("d", "customer_message", T0 + 60 * M),
        event("e", "agent_reply", T0 + 70 * M),
    ]
    late = T0 + 200 * M
    with in_process(bundle, store_url, now=late, config=QUIET) as srv:
        stub = srv.stub
        admit(stub, "T-order")
        admit(stub, "T-retry")
        for e in reversed(history):  # newest first, one call each
            record(stub, "T-order", e)
        record(stub, "T-retry", *history)
        again = record(stub, "T-retry", *history)  # a webhook delivered twice
        assert all(e.duplicate and not e.conflicting for e in again.events)
        assert again.sla.event_count == len(history)
        changed = record(stub, "T-retry", event("c", "agent_reply", T0 + 5 * M))
        assert changed.events[0].duplicate and changed.events[0].conflicting  # first one wins
        a, b = sla_of(stub, "T-order"), sla_of(stub, "T-retry")
        assert [(c.metric, c.cycle, c.state, c.elapsed_minutes) for c in a.clocks] == [
            (c.metric, c.cycle, c.state, c.elapsed_minutes) for c in b.clocks]
        assert clock(a, "first_response").elapsed_minutes == 20  # 10 + 10, 30 on hold
        # The event older than the resolved clock's end still counts: a late pause.
        record(stub, "T-order", event("r", "resolved", T0 + 100 * M))
        before = clock(sla_of(stub, "T-order"), "resolution").elapsed_minutes
        record(stub, "T-order", event("p1", "status_changed", T0 + 80 * M, status="pending"),
               event("p2", "status_changed", T0 + 90 * M, status="open"))
        assert clock(sla_of(stub, "T-order"), "resolution").elapsed_minutes == before - 10


def test_a_ticket_that_never_gets_an_event_still_warns_and_breaches(bundle, store_url):
    with in_process(bundle, store_url, config=QUIET) as srv:
        admit(srv.stub, "T-silent")
        set_now(srv, T0 + 59 * M)
        assert sla_sweep(srv) == 0  # nothing due yet
        set_now(srv, T0 + 125 * M)
        assert sla_sweep(srv) == 3
        assert summary(sla_alerts(srv.stub)) == [
            ("SLA_WARNING", "first_response", 0, 50, T0 + 60 * M),
            ("SLA_WARNING", "first_response", 0, 75, T0 + 90 * M),
            ("SLA_BREACHED", "first_response", 0, 100, T0 + 120 * M),
        ]
        assert {when(a.emitted_at) for a in sla_alerts(srv.stub)} == {T0 + 125 * M}
        assert when(sla_of(srv.stub, "T-silent").next_alert_at) == T0 + 240 * M  # resolution
        assert sla_sweep(srv) == 0


def test_paused_clocks_emit_nothing_until_resumed(bundle, store_url):
    with in_process(bundle, store_url, config=QUIET) as srv:
        stub = srv.stub
        admit(stub, "T-wait")
        set_now(srv, T0 + 30 * M)
        out = record(stub, "T-wait", event("w", "status_changed", T0 + 30 * M, status="pending"))
        assert not out.sla.HasField("next_alert_at")
        set_now(srv, T0 + 20 * 60 * M)
        assert sla_sweep(srv) == 0 and sla_alerts(stub) == []
        out = record(stub, "T-wait", event("go", "status_changed", T0 + 20 * 60 * M,
                                           status="open"))
        assert when(out.sla.next_alert_at) == T0 + 20 * 60 * M + 30 * M  # 60 of fr's 120
        set_now(srv, T0 + 20 * 60 * M + 31 * M)
        assert sla_sweep(srv) == 1
        assert summary(sla_alerts(stub)) == [
            ("SLA_WARNING", "first_response", 0, 50, T0 + 20 * 60 * M + 30 * M)]


def test_events_that_cross_thresholds_in_the_past_emit_at_once(bundle, store_url):
    with in_process(bundle, store_url, config=QUIET) as srv:
        stub = srv.stub
        admit(stub, "T-late", priority="urgent")  # fr 15m
        set_now(srv, T0 + 5 * M)
        record(stub, "T-late", event("x", "status_changed", T0 + 1 * M, status="in_progress"))
        assert sla_alerts(stub) == []
        set_now(srv, T0 + 3 * 60 * M)  # the reply comes in late, delivered even later
        record(stub, "T-late", event("r", "agent_reply", T0 + 20 * M))
        got = summary(sla_alerts(stub))
        assert ("SLA_BREACHED", "first_response", 0, 100, T0 + 15 * M) in got
        assert ("SLA_WARNING", "resolution", 0, 75, T0 + 90 * M) in got
        assert len(got) == len(set(got))


def test_bad_requests_name_the_field(bundle, store_url):
    with in_process(bundle, store_url, config=QUIET) as srv:
        stub = srv.stub
        admit(stub, "T-bad")
        cases = [
            (pb.RecordTicketEventsRequest(ticket_id="nope", events=[
                event("1", "agent_reply", T0)]), grpc.StatusCode.NOT_FOUND, "ticket_id"),
            (pb.RecordTicketEventsRequest(ticket_id="", events=[event("1", "agent_reply", T0)]),
             grpc.StatusCode.INVALID_ARGUMENT, "ticket_id"),
            (pb.RecordTicketEventsRequest(ticket_id="T-bad"), grpc.StatusCode.INVALID_ARGUMENT,
             "events"),
            (pb.RecordTicketEventsRequest(ticket_id="T-bad", events=[
                event("1", "agent_reply", T0), event("2", "archived", T0)]),
             grpc.StatusCode.INVALID_ARGUMENT, "events[1].type"),
            (pb.RecordTicketEventsRequest(ticket_id="T-bad", events=[
                event("1", "status_changed", T0)]),
             grpc.StatusCode.INVALID_ARGUMENT, "events[0].status"),
            (pb.RecordTicketEventsRequest(ticket_id="T-bad", events=[
                event("1", "priority_changed", T0, priority="p1")]),
             grpc.StatusCode.INVALID_ARGUMENT, "events[0].priority"),
            (pb.RecordTicketEventsRequest(ticket_id="T-bad", events=[
                pb.TicketEvent(id="1", type="agent_reply")]),
             grpc.StatusCode.INVALID_ARGUMENT, "events[0].at"),
            (pb.RecordTicketEventsRequest(ticket_id="T-bad", events=[
                event("1", "agent_reply", T0 + timedelta(days=2))]),
             grpc.StatusCode.INVALID_ARGUMENT, "events[0].at"),
            (pb.RecordTicketEventsRequest(ticket_id="T-bad", events=[
                event("", "agent_reply", T0)]), grpc.StatusCode.INVALID_ARGUMENT, "events[0].id"),
            (pb.RecordTicketEventsRequest(ticket_id="T-bad", events=[
                event(str(i), "agent_reply", T0) for i in range(101)]),
             grpc.StatusCode.INVALID_ARGUMENT, "events"),
        ]
        for request, code, field in cases:
            with pytest.raises(grpc.RpcError) as err:
                stub.RecordTicketEvents(request, timeout=10)
            assert err.value.code() == code, (field, err.value.details())
            assert err.value.details().startswith(f"{field}: "), err.value.details()
        with pytest.raises(grpc.RpcError) as err:
            stub.GetTicketSla(pb.GetTicketSlaRequest(ticket_id="nope"), timeout=10)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        assert "'nope'" in err.value.details()
        for at in (T0 - M, T0 + timedelta(days=3651), datetime(9999, 12, 31, tzinfo=UTC)):
            with pytest.raises(grpc.RpcError) as err:
                sla_of(stub, "T-bad", at=at)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert err.value.details().startswith("at: ")
        assert sla_of(stub, "T-bad", at=T0 + timedelta(days=3000)).event_count == 0
        assert sla_of(stub, "T-bad").event_count == 0  # nothing of the refused calls stuck


def test_history_is_bounded_per_ticket(bundle, store_url):
    with in_process(bundle, store_url, config=QUIET) as srv:
        stub = srv.stub
        admit(stub, "T-chatty")
        sent = 0
        while sent < MAX_TICKET_EVENTS:
            batch = [event(f"m{sent + i}", "customer_message", T0 + (sent + i) * M / 100)
                     for i in range(100)]
            record(stub, "T-chatty", *batch)
            sent += 100
        assert sla_of(stub, "T-chatty").event_count == MAX_TICKET_EVENTS
        assert record(stub, "T-chatty", event("m0", "customer_message", T0)).events[0].duplicate
        with pytest.raises(grpc.RpcError) as err:
            record(stub, "T-chatty", event("one-more", "agent_reply", T0 + 60 * M))
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "at most 1000 events" in err.value.details()
        assert err.value.details().startswith("events: ")


def test_events_sent_with_the_admission_are_recorded(bundle, store_url):
    with in_process(bundle, store_url, now=T0 + 60 * M,
                    config=QUIET) as srv:
        stub = srv.stub
        history = [event("h1", "agent_reply", T0 + 30 * M)]
        admit(stub, "T-with-history", events=history)
        admit(stub, "T-with-history", events=history)  # a retried admission: no change
        sla = sla_of(stub, "T-with-history")
        assert sla.event_count == 1 and clocks(sla)[("first_response", 0)] == "met"
        msg = ticket("T-paused", customer_id="initech", product="live-chat", priority="low")
        msg.pauses.append(pb.Pause(start=timestamp(T0)))
        with pytest.raises(grpc.RpcError) as err:
            stub.CheckCoverage(pb.CheckCoverageRequest(ticket=msg, consume=True), timeout=10)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert err.value.details().startswith("ticket.pauses: ")
        many = [event(f"m{i}", "customer_message", T0) for i in range(101)]
        with pytest.raises(grpc.RpcError) as err:
            admit(stub, "T-too-long", events=many)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert err.value.details().startswith("ticket.events: ")


def test_a_reload_does_not_change_a_live_ticket_s_targets(bundle, store_url):
    with in_process(bundle, store_url, config=QUIET) as srv:
        stub = srv.stub
        admit(stub, "T-pinned")
        before = sla_of(stub, "T-pinned")
        path = bundle / "live-desk.yaml"
        path.write_text(path.read_text().replace("first_response: 2h, next_response: 2h",
                                                 "first_response: 3h, next_response: 2h"))
        assert stub.Reload(pb.ReloadRequest(), timeout=30).changed
        admit(stub, "T-new")
        after = sla_of(stub, "T-pinned")
        assert clock(after, "first_response").minutes == 120
        assert after.policy_revision == before.policy_revision
        assert clock(sla_of(stub, "T-new"), "first_response").minutes == 180
        # A priority change picks the new priority's targets from the pinned terms too.
        out = record(stub, "T-pinned", event("up", "priority_changed", T0, priority="urgent"))
        assert clock(out.sla, "first_response").minutes == 15


def test_cli_shows_a_ticket_s_clocks(bundle, store_url, capsys):
    from entitle.cli import main

    with in_process(bundle, store_url, now=T0 + 30 * M, config=QUIET) as srv:
        admit(srv.stub, "T-cli")
        record(srv.stub, "T-cli", event("p", "status_changed", T0 + 10 * M, status="pending"))
        server = ["--server", f"127.0.0.1:{srv.port}"]
        assert main(["sla", "T-cli", *server]) == 0
        out = capsys.readouterr().out.splitlines()
        assert out[0].startswith("ticket T-cli  customer initech  contract initech-live  SLA "
                                 "live-desk (default targets")
        assert "events 1  next alert -" in out[1]
        assert out[2].split() == ["METRIC", "STATE", "TARGET", "DUE", "ELAPSED", "REMAINING",
                                  "%", "BREACHED"]
        assert out[3].split() == ["first_response", "paused", "2h", "calendar", "-", "10m",
                                  "1h50m", "8.3333", "-"]
        assert main(["sla", "T-cli", "--at", "2026-06-15T10:05:00Z", "--json", *server]) == 0
        got = json.loads(capsys.readouterr().out)
        assert got["clocks"][0]["state"] == "CLOCK_STATE_RUNNING"
        assert got["clocks"][0]["elapsed_minutes"] == 5
        assert main(["sla", "T-none", *server]) == 1
        assert "NOT_FOUND: ticket_id: no admitted ticket 'T-none'" in capsys.readouterr().err
        with pytest.raises(SystemExit):
            main(["sla", "T-cli", "--at", "yesterday"])
        assert "--at" in capsys.readouterr().err


EVENT = st.builds(
    lambda kind, minute, status, priority: (kind, minute, status, priority),
    st.sampled_from(EVENT_TYPES), st.integers(0, 600),
    st.sampled_from(["pending", "open", "on_hold", "solved"]), st.sampled_from(PRIORITIES),
)


def test_any_delivery_order_chunking_and_retries_give_the_offline_replay(bundle, tmp_path):
    """The server's clocks equal CheckCoverage's stateless replay of the same history,
    however the events were delivered: shuffled, in chunks, some delivered again."""
    late = T0 + 12 * 60 * M
    with in_process(bundle, f"sqlite:///{tmp_path / 'prop.db'}", now=late,
                    config=QUIET) as srv:
        stub, numbers = srv.stub, itertools.count()

        @settings(max_examples=25, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow])
        @given(st.lists(EVENT, min_size=1, max_size=12), st.data())
        def check(raw, data):
            history = [event(f"e{i}", kind, T0 + minute * M,
                             **({"status": status} if kind == "status_changed" else {}),
                             **({"priority": prio} if kind == "priority_changed" else {}))
                       for i, (kind, minute, status, prio) in enumerate(raw)]
            tid = f"T-prop-{next(numbers)}"
            admit(stub, tid)
            deliveries = data.draw(st.permutations(history))
            deliveries += data.draw(st.lists(st.sampled_from(history), max_size=4))
            cut = sorted(data.draw(st.sets(st.integers(1, len(deliveries)), max_size=3)))
            for a, b in zip([0, *cut], [*cut, len(deliveries)], strict=True):
                if a < b:
                    record(stub, tid, *deliveries[a:b])
            live = sla_of(stub, tid)
            msg = ticket(tid, customer_id="initech", product="live-chat", priority="medium",
                         created_at=T0)
            msg.events.extend(history)
            offline = stub.CheckCoverage(pb.CheckCoverageRequest(ticket=msg), timeout=10)
            latest = {c.metric: c for c in live.clocks}  # cycles ascending: the last wins
            assert {t.metric: t for t in offline.decision.targets} == latest

        check()


def test_releasing_a_ticket_cancels_its_open_clocks_and_its_alerts(bundle, store_url):
    with in_process(bundle, store_url, now=T0 + 70 * M, config=QUIET) as srv:
        stub = srv.stub
        wait_for(lambda: sla_sweeper_of(srv.runtime).sweeps >= 1, timeout=30)
        admit(stub, "T-merged")  # medium: fr 2h, res 8h, warnings at 50 and 75 %
        record(stub, "T-merged", event("r", "agent_reply", T0 + 10 * M))
        assert sla_sweep(srv) == 0
        admit(stub, "T-kept")
        out = stub.ReleaseUsage(pb.ReleaseUsageRequest(ticket_id="T-merged", reason="merged"),
                                timeout=10)
        assert [r.contract_id for r in out.released] == ["initech-live"]
        sla = sla_of(stub, "T-merged")
        assert clocks(sla) == {("first_response", 0): "met", ("next_response", 0): "cancelled",
                               ("resolution", 0): "cancelled"}
        assert when(clock(sla, "resolution").stopped_at) == T0 + 70 * M
        assert clock(sla, "resolution").elapsed_minutes == 70  # frozen at the release
        assert not sla.HasField("next_alert_at")
        later = T0 + 10 * 60 * M  # past every target: only the kept ticket alerts
        assert sla_of(stub, "T-merged", at=later).clocks == sla.clocks
        set_now(srv, later)
        assert sla_sweep(srv) == 6
        assert {a.ticket_id for a in sla_alerts(stub)} == {"T-kept"}
        with pytest.raises(grpc.RpcError) as err:
            record(stub, "T-merged", event("m", "customer_message", later))
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert err.value.details().startswith("ticket_id: ticket 'T-merged' was released at ")
        again = stub.ReleaseUsage(pb.ReleaseUsageRequest(ticket_id="T-merged"), timeout=10)
        assert list(again.released) == []
        assert when(clock(sla_of(stub, "T-merged"), "resolution").stopped_at) == T0 + 70 * M


# --- downtime and replicas ------------------------------------------------------------------


def test_a_breach_is_caught_up_after_a_restart_with_its_true_instant(bundle, store_url, tmp_path):
    log = tmp_path / "server.log"
    with ServerProcess(bundle, store_url, log, now=T0) as server:
        channel, stub = stub_for(server.port)
        with channel:
            admit(stub, "T-down", priority="urgent")  # fr 15m, res 2h
            record(stub, "T-down", event("s", "status_changed", T0 + 5 * M, status="open"))
        server.stop()
    later = T0 + 3 * 60 * M  # the server was down while the clocks ran out
    with ServerProcess(bundle, store_url, log, now=later) as server:
        channel, stub = stub_for(server.port)
        with channel:
            wait_for(lambda: len(sla_alerts(stub)) == 6, timeout=30)
            got = sla_alerts(stub)
            assert summary(got) == [
                ("SLA_WARNING", "first_response", 0, 50, T0 + timedelta(minutes=7.5)),
                ("SLA_WARNING", "first_response", 0, 75, T0 + timedelta(minutes=11.25)),
                ("SLA_BREACHED", "first_response", 0, 100, T0 + 15 * M),
                ("SLA_WARNING", "resolution", 0, 50, T0 + 60 * M),
                ("SLA_WARNING", "resolution", 0, 75, T0 + 90 * M),
                ("SLA_BREACHED", "resolution", 0, 100, T0 + 120 * M),
            ]
            assert {when(a.emitted_at) for a in got} == {later}
        server.stop()
    with ServerProcess(bundle, store_url, log, now=later + 60 * M) as server:
        channel, stub = stub_for(server.port)
        with channel:
            assert not sla_of(stub, "T-down").HasField("next_alert_at")
            assert len(sla_alerts(stub)) == 6  # a second restart emits nothing again


def test_two_replicas_on_one_store_emit_each_sla_alert_once(bundle, store_url):
    if not store_url.startswith("postgresql"):
        pytest.skip("replicas share a PostgreSQL store")
    late = T0 + 5 * 60 * M
    with in_process(bundle, store_url, now=late, config=QUIET) as a, \
            in_process(bundle, store_url, now=late, config=QUIET) as b:
        busy = [f"T-busy-{i}" for i in range(8)]  # events delivered to both replicas at once
        silent = [f"T-silent-{i}" for i in range(8)]  # no events: the sweepers find them
        for i, tid in enumerate(busy + silent):
            admit((a if i % 2 else b).stub, tid, priority="urgent")  # fr 15m, res 2h
        errors: list[BaseException] = []

        def run(work, *args) -> None:
            try:
                work(*args)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        def deliver(stub, tid: str) -> None:
            # After every crossing they could move (first_response breached at 15m, met late
            # at 20m; resolution breached at 2h, then on hold): the alerts are the same
            # whether a sweeper assesses the ticket before or after its events, so every
            # interleaving of sweeps and deliveries must give exactly these, once each.
            record(stub, tid, event("reply", "agent_reply", T0 + 20 * M),
                   event("hold", "status_changed", T0 + 4 * 60 * M, status="on_hold"))

        threads = [threading.Thread(target=run, args=(deliver, srv.stub, tid))
                   for tid in busy for srv in (a, b)]
        threads += [threading.Thread(target=run, args=(sla_sweeper_of(srv.runtime).sweep,))
                    for srv in (a, b) for _ in range(2)]  # under the lease: one replica
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        for srv in (a, b):  # and past the lease, as if it had expired mid-sweep
            sla_sweeper_of(srv.runtime).sweep(force=True)
        got = sla_alerts(b.stub)
        keys = [(x.ticket_id, x.metric, x.cycle, x.threshold) for x in got]
        assert len(keys) == len(set(keys))
        crossed = {  # urgent: fr 15m, res 2h, warnings at 50 and 75 %
            "first_response": {50: T0 + 7.5 * M, 75: T0 + 11.25 * M, 100: T0 + 15 * M},
            "resolution": {50: T0 + 60 * M, 75: T0 + 90 * M, 100: T0 + 120 * M},
        }
        assert sorted((x.ticket_id, x.metric, x.threshold, when(x.occurred_at)) for x in got) == \
            sorted((t, m, p, at) for t in busy + silent for m, by in crossed.items()
                   for p, at in by.items())
        for tid in busy:
            sla = sla_of(a.stub, tid)
            assert clocks(sla)[("first_response", 0)] == "met_late"
            assert clocks(sla)[("resolution", 0)] == "breached"
            assert clock(sla, "resolution").paused


def test_a_sweep_that_assessed_a_ticket_before_its_events_arrived_changes_nothing(
        bundle, store_url):
    """The sweeper read a ticket's clocks (no events yet: it looks breached), then events
    came in showing it on hold all along: the sweep's conclusions for it are dropped, the
    events' ones stand."""
    late = T0 + 5 * 60 * M
    with in_process(bundle, store_url, now=late, config=QUIET) as srv:
        sweeper = sla_sweeper_of(srv.runtime)
        wait_for(lambda: sweeper.sweeps >= 1, timeout=30)  # the one at start: not on ours
        admit(srv.stub, "T-stale", priority="urgent")  # fr 15m, res 2h
        admit(srv.stub, "T-other", priority="urgent")
        store = srv.runtime.store
        due = store.due_clocks(late, 10)
        assert {c.ticket_id for c, _ in due} == {"T-stale", "T-other"}
        updates = [(c, sweeper.sla.assess(c, events, late)) for c, events in due]
        record(srv.stub, "T-stale", event("hold", "status_changed", T0 + 1 * M, status="on_hold"))
        assert store.apply_sweep(updates, late) == 6  # T-other's alerts only
        assert {x.ticket_id for x in sla_alerts(srv.stub)} == {"T-other"}
        assert clocks(sla_of(srv.stub, "T-stale"))[("resolution", 0)] == "paused"
        assert sla_sweep(srv) == 0


def test_the_checker_role_may_record_events_and_read_clocks():
    from entitle.server.service.access import role_needed

    for name in ("RecordTicketEvents", "GetTicketSla"):
        assert role_needed(f"/entitle.v1.EntitlementService/{name}") == "checker"
