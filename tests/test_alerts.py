"""Alert events over a real port, against both stores: thresholds, dates, exactly-once, streams.

Time is injected (FixedClock, ENTITLE_FAKE_NOW): sweeps run when a test calls them, at the
instant it set. Waits on the wall clock are only for delivery (a stream, a process), never
for the logic under test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from test_server_harness import (
    NOW,
    REPO,
    ServerProcess,
    in_process,
    make_bundle,
    stub_for,
    ticket,
    wait_for,
)

from entitle.cli import main as cli_main
from entitle.engine.alerts import contract_alerts, due_alerts, usage_alerts
from entitle.engine.bundle import compile_or_raise
from entitle.engine.snapshot import Snapshot
from entitle.server.alerts import WATERMARK_META, Sweeper, sweeper_of
from entitle.server.clock import FixedClock
from entitle.server.service.wire import timestamp
from entitle.server.snapshots import SnapshotHolder
from entitle.server.store import AlertQuery, NewAlert, open_store
from entitle.v1 import entitle_pb2 as pb

DAY = timedelta(days=1)
# Contracts of these tests, in UTC so the expected instants read plainly.
ALERT_CONTRACTS = """
kind: Contract
id: renew-me
customer: umbrella
plan: premium-monthly
start: 2026-07-01
end: 2026-12-01
timezone: UTC
owner: desk@support.example
notify: [ops@umbrella.example, desk@support.example]
"""
START = datetime(2026, 7, 1, tzinfo=UTC)
END = datetime(2026, 12, 1, tzinfo=UTC)

USAGE = pb.ALERT_KIND_USAGE_THRESHOLD
EXHAUSTED = pb.ALERT_KIND_QUOTA_EXHAUSTED
ACTIVATED = pb.ALERT_KIND_CONTRACT_ACTIVATED
EXPIRING = pb.ALERT_KIND_CONTRACT_EXPIRING
EXPIRED = pb.ALERT_KIND_CONTRACT_EXPIRED


@pytest.fixture
def bundle(tmp_path):
    root = make_bundle(tmp_path)
    (root / "contracts" / "alert-tests.yaml").write_text(ALERT_CONTRACTS)
    return root


def consume(stub, msg: pb.Ticket) -> pb.CheckCoverageResponse:
    return stub.CheckCoverage(pb.CheckCoverageRequest(ticket=msg, consume=True), timeout=10)


def hours(stub, key: str, amount: float, at: datetime | None = None) -> pb.RecordUsageResponse:
    req = pb.RecordUsageRequest(
        ticket_id=f"T-{key}", contract_id="acme-hours", amount=amount, unit="hours",
        idempotency_key=key,
    )
    if at is not None:
        req.recorded_at.CopyFrom(timestamp(at))
    return stub.RecordUsage(req, timeout=10)


def listed(stub, after: int = 0, **filters) -> list[pb.Alert]:
    """Every stored alert after `after` matching filters, through ListAlerts paging."""
    out: list[pb.Alert] = []
    cursor = after
    while True:
        page = stub.ListAlerts(
            pb.ListAlertsRequest(after_cursor=cursor, page_size=1000,
                                 filter=pb.AlertFilter(**filters)),
            timeout=10,
        )
        out += page.alerts
        cursor = page.next_cursor
        if not page.has_more:
            return out


def usage_of(stub, contract_id: str) -> list[pb.Alert]:
    return listed(stub, contract_id=contract_id, kinds=[USAGE, EXHAUSTED])


def summary(alerts) -> list[tuple]:
    return [(a.kind, a.contract_id, a.threshold) for a in alerts]


def ident(a: pb.Alert) -> tuple:
    return (a.kind, a.contract_id, a.threshold, a.occurred_at.seconds)


def at(ts) -> datetime:
    return ts.ToDatetime(tzinfo=UTC)


def first_sweep(srv) -> Sweeper:
    sweeper = sweeper_of(srv.runtime)
    assert sweeper is not None and sweeper.wait_sweeps(1)
    return sweeper


# --- usage kinds -----------------------------------------------------------------------------


def test_usage_thresholds_then_exhaustion_once_with_their_figures(bundle, store_url):
    with in_process(bundle, store_url) as srv:
        first_sweep(srv)
        for i in range(12):  # the pack holds 10; 11 and 12 are rejected
            consume(srv.stub, ticket(f"T-{i}"))
        got = usage_of(srv.stub, "globex-mail-pack")
    assert summary(got) == [
        (USAGE, "globex-mail-pack", 50),
        (USAGE, "globex-mail-pack", 80),
        (USAGE, "globex-mail-pack", 100),
        (EXHAUSTED, "globex-mail-pack", 0),
    ]
    fifty, eighty, hundred, exhausted = got
    assert (fifty.used, fifty.limit, fifty.unit) == (5, 10, "incidents")
    assert (eighty.used, hundred.used, exhausted.used) == (8, 10, 10)
    assert at(fifty.period_start) == datetime(2026, 1, 1, 5, tzinfo=UTC)  # New York midnight
    assert at(fifty.occurred_at) == NOW and at(fifty.emitted_at) == NOW
    assert list(fifty.recipients) == ["americas-desk@support.example"]
    assert fifty.customer_id == "globex" and fifty.plan_id == "incident-pack-10"
    assert not fifty.HasField("days_left")  # the pack has no end date
    assert eighty.message == (
        "globex: contract globex-mail-pack has used 80% of 10 incidents (pack) (8/10)"
    )
    assert "no incidents left" in exhausted.message
    assert [a.cursor for a in got] == sorted(a.cursor for a in got)


def test_one_record_crossing_two_thresholds_emits_both(bundle, store_url):
    worked = datetime(2026, 6, 10, 9, tzinfo=UTC)  # logged later than the work was done
    with in_process(bundle, store_url) as srv:
        first_sweep(srv)
        hours(srv.stub, "w1", 46, at=worked)  # 0% -> 92%: crosses 75 and 90 at once
        got = usage_of(srv.stub, "acme-hours")
        assert summary(got) == [(USAGE, "acme-hours", 75), (USAGE, "acme-hours", 90)]
        assert {at(a.occurred_at) for a in got} == {worked}
        assert {at(a.emitted_at) for a in got} == {NOW}  # server time, not the work's
        assert got[0].used == 46 and got[0].unit == "hours"
        assert list(got[0].recipients) == ["it-ops@acme.example"]
        assert got[0].days_left == pytest.approx(
            (datetime(2026, 12, 31, 23, tzinfo=UTC) - worked) / DAY
        )
        hours(srv.stub, "w2", 4)  # 100%: threshold and exhaustion
        hours(srv.stub, "w3", 10)  # overage: nothing new
        hours(srv.stub, "w1", 46, at=worked)  # a retried record counts (and alerts) once
        got = usage_of(srv.stub, "acme-hours")
    assert summary(got)[2:] == [(USAGE, "acme-hours", 100), (EXHAUSTED, "acme-hours", 0)]
    assert "billed as overage" in got[3].message


def test_release_then_consumption_again_in_the_period_does_not_re_emit(bundle, store_url):
    with in_process(bundle, store_url) as srv:
        first_sweep(srv)
        for i in range(5):
            consume(srv.stub, ticket(f"T-{i}"))
        assert summary(usage_of(srv.stub, "globex-mail-pack")) == [
            (USAGE, "globex-mail-pack", 50)
        ]
        srv.stub.ReleaseUsage(pb.ReleaseUsageRequest(ticket_id="T-4", reason="merged"))
        consume(srv.stub, ticket("T-5"))  # 4 -> 5 crosses 50% again
        assert len(usage_of(srv.stub, "globex-mail-pack")) == 1


def test_an_unlimited_plan_raises_no_usage_alerts(bundle, store_url):
    with in_process(bundle, store_url) as srv:
        first_sweep(srv)
        for i in range(20):
            consume(srv.stub, ticket(f"B-{i}", "acme", "backup"))
        assert not listed(srv.stub, kinds=[USAGE, EXHAUSTED])


# --- contract kinds, the sweeper ----------------------------------------------------------------


def test_sweeps_emit_date_alerts_at_their_true_instants(bundle, store_url):
    with in_process(bundle, store_url) as srv:
        sweeper = first_sweep(srv)
        sweeper.retention_days = 0  # keep everything: this test spans five months
        clock: FixedClock = srv.runtime.clock
        assert not listed(srv.stub, contract_id="renew-me")
        # Step through the term one sweep at a time, as the background task would.
        stops = [START - timedelta(seconds=1), START, START + 60 * DAY,
                 END - 30 * DAY, END - 7 * DAY - timedelta(seconds=1), END + DAY]
        seen: list[list[tuple]] = []
        for t in stops:
            clock.at = t
            sweeper.sweep()
            seen.append(summary(listed(srv.stub, contract_id="renew-me")))
        got = listed(srv.stub, contract_id="renew-me")
    assert [len(s) for s in seen] == [0, 1, 1, 3, 3, 5]
    assert summary(got) == [
        (ACTIVATED, "renew-me", 0),
        (EXPIRING, "renew-me", 90),
        (EXPIRING, "renew-me", 30),
        (EXPIRING, "renew-me", 7),
        (EXPIRED, "renew-me", 0),
    ]
    assert [at(a.occurred_at) for a in got] == [
        START, END - 90 * DAY, END - 30 * DAY, END - 7 * DAY, END
    ]
    assert [a.days_left for a in got] == [153, 90, 30, 7, 0]
    assert at(got[1].emitted_at) == END - 30 * DAY  # noticed at the sweep after it fell due
    assert list(got[0].recipients) == ["desk@support.example", "ops@umbrella.example"]
    assert not got[0].HasField("period_start") and got[0].unit == ""
    assert got[2].message == (
        "umbrella: contract renew-me (premium-monthly) ends on 2026-12-01, in 30 days "
        "(threshold 30 days)"
    )


def test_catch_up_after_downtime_emits_what_fell_due_with_true_instants(bundle, store_url):
    with in_process(bundle, store_url, now=START - DAY) as srv:
        first_sweep(srv)
        assert not listed(srv.stub, contract_id="renew-me")
        before = listed(srv.stub)
    back = END - 10 * DAY  # down from the day before the start until 20 days after the 30
    with in_process(bundle, store_url, now=back) as srv:
        first_sweep(srv)
        got = listed(srv.stub, contract_id="renew-me")
        assert srv.runtime.store.get_meta(WATERMARK_META).startswith("2026-11-21T00:00:00")
        # Nothing emitted before the downtime came again (those are purged by now: the
        # 90-day retention counts from emission).
        new = listed(srv.stub, after=before[-1].cursor)
        assert not {ident(a) for a in new} & {ident(a) for a in before}
    assert summary(got) == [
        (ACTIVATED, "renew-me", 0), (EXPIRING, "renew-me", 90), (EXPIRING, "renew-me", 30)
    ]
    assert [at(a.occurred_at) for a in got] == [START, END - 90 * DAY, END - 30 * DAY]
    assert {at(a.emitted_at) for a in got} == {back}


def test_restart_does_not_emit_anything_twice(bundle, store_url):
    with in_process(bundle, store_url) as srv:
        first_sweep(srv)
        for i in range(5):
            consume(srv.stub, ticket(f"T-{i}"))
        before = [(a.cursor, a.kind, a.contract_id, a.threshold) for a in listed(srv.stub)]
    for _ in range(2):
        with in_process(bundle, store_url) as srv:
            sweeper = first_sweep(srv)
            srv.runtime.store.set_meta(WATERMARK_META, "2025-01-01T00:00:00.000000Z")
            sweeper.sweep()  # re-sweeps the whole past: every key already exists
            consume(srv.stub, ticket("T-4"))  # a retry
            after = [(a.cursor, a.kind, a.contract_id, a.threshold) for a in listed(srv.stub)]
            assert after == before


def test_a_reload_applies_new_thresholds_from_then_on_only(bundle, store_url):
    plans = bundle / "plans.yaml"
    with in_process(bundle, store_url) as srv:
        first_sweep(srv)
        for i in range(5):
            consume(srv.stub, ticket(f"T-{i}"))  # 50%
        plans.write_text(plans.read_text().replace(
            "usage_percent: [50, 80, 100]", "usage_percent: [20, 40, 50, 60, 80, 100]"
        ))
        reply = srv.stub.Reload(pb.ReloadRequest())
        assert reply.changed, reply.error
        consume(srv.stub, ticket("T-5"))  # 60%: crosses 60 only; 20 and 40 lie behind
        got = usage_of(srv.stub, "globex-mail-pack")
    assert summary(got) == [(USAGE, "globex-mail-pack", 50), (USAGE, "globex-mail-pack", 60)]


LATE_CONTRACT = """
---
kind: Contract
id: entered-late
customer: soylent
plan: premium-monthly
start: 2026-06-01
end: 2026-09-01
timezone: UTC
"""


def test_a_contract_added_after_its_start_still_gets_its_activation(bundle, store_url):
    """The watermark had passed its start: the new contract's past is swept once."""
    contracts = bundle / "contracts" / "alert-tests.yaml"
    with in_process(bundle, store_url) as srv:
        sweeper = first_sweep(srv)
        contracts.write_text(contracts.read_text() + LATE_CONTRACT)
        assert srv.stub.Reload(pb.ReloadRequest()).changed
        sweeper.sweep()
        got = listed(srv.stub, contract_id="entered-late")
        sweeper.sweep()  # swept once: nothing again
        assert listed(srv.stub, contract_id="entered-late") == got
    # Its start, and 90 days before its end: both behind the watermark when it was added.
    assert summary(got) == [(ACTIVATED, "entered-late", 0), (EXPIRING, "entered-late", 90)]
    assert [at(a.occurred_at) for a in got] == [datetime(2026, 6, 1, tzinfo=UTC),
                                                datetime(2026, 6, 3, tzinfo=UTC)]


def test_a_contract_added_while_the_server_was_down_gets_its_past_alerts(bundle, store_url):
    contracts = bundle / "contracts" / "alert-tests.yaml"
    with in_process(bundle, store_url) as srv:
        first_sweep(srv)
    contracts.write_text(contracts.read_text() + LATE_CONTRACT)
    later = datetime(2026, 6, 20, tzinfo=UTC)
    with in_process(bundle, store_url, now=later) as srv:
        first_sweep(srv)
        got = listed(srv.stub, contract_id="entered-late")
        others = listed(srv.stub)
    assert summary(got) == [(ACTIVATED, "entered-late", 0), (EXPIRING, "entered-late", 90)]
    assert len({ident(a) for a in others}) == len(others)  # nothing twice


def test_a_renewal_that_moves_the_end_date_gets_fresh_expiry_alerts(bundle, store_url):
    contracts = bundle / "contracts" / "alert-tests.yaml"
    with in_process(bundle, store_url, now=END - 20 * DAY) as srv:
        sweeper = first_sweep(srv)
        sweeper.retention_days = 0  # keep everything: this test spans a year
        clock: FixedClock = srv.runtime.clock
        assert [a.threshold for a in listed(srv.stub, contract_id="renew-me", kinds=[EXPIRING])
                ] == [90, 30]
        contracts.write_text(ALERT_CONTRACTS.replace("end: 2026-12-01", "end: 2027-12-01"))
        assert srv.stub.Reload(pb.ReloadRequest()).changed
        sweeper.sweep()  # same instant: nothing new; the old 90 and 30 are not repeated
        assert len(listed(srv.stub, contract_id="renew-me")) == 3
        new_end = datetime(2027, 12, 1, tzinfo=UTC)
        clock.at = new_end - 25 * DAY
        sweeper.sweep()
        got = listed(srv.stub, contract_id="renew-me")
    assert summary(got)[3:] == [(EXPIRING, "renew-me", 90), (EXPIRING, "renew-me", 30)]
    assert [at(a.occurred_at) for a in got[3:]] == [new_end - 90 * DAY, new_end - 30 * DAY]
    assert "2026-07-01..2027-12-01" not in got[0].message  # keys are internal, not messages


def test_two_sweepers_on_one_store_sweeping_at_once_emit_once(bundle, store_url):
    policy = compile_or_raise(bundle)
    pairs = [(c, policy.plans[c.plan_id]) for c in policy.contracts.values()]
    holder = SnapshotHolder()
    holder.swap(Snapshot.build(policy), NOW)
    stores = [open_store(store_url) for _ in range(4)]  # as four replicas would
    t1 = NOW + 200 * DAY
    t2 = t1 + 400 * DAY
    clock = FixedClock(t1)
    try:
        sweepers = [Sweeper(s, holder, clock, batch=3, retention_days=0) for s in stores]
        results: list[int | None] = [None] * len(sweepers)

        def all_at_once(force: bool) -> None:
            gate = threading.Barrier(len(sweepers))

            def run(i: int) -> None:
                gate.wait()
                results[i] = sweepers[i].sweep(force=force)

            threads = [threading.Thread(target=run, args=(i,)) for i in range(len(sweepers))]
            for t in threads:
                t.start()
            for t in threads:
                t.join()

        all_at_once(force=False)  # the lease: one sweeps, the others skip
        assert sum(r is not None for r in results) == 1
        first = due_alerts(pairs, t1 - 400 * DAY, t1)
        assert sum(r or 0 for r in results) == len(first) > 0
        clock.at = t2
        all_at_once(force=True)  # no lease: all four race over the same window
        second = due_alerts(pairs, t1, t2)
        assert sum(r or 0 for r in results) == len(second) > 0
        page, _, more = stores[0].alerts(AlertQuery(limit=10_000))
        keys = [a.dedupe_key for a in page]
        assert not more and len(keys) == len(set(keys))
        assert keys == [e.dedupe_key for e in first + second]  # and in occurrence order
    finally:
        for s in stores:
            s.close()
        holder.close()


def test_retention_purges_old_alerts_and_they_never_come_back(bundle, store_url):
    with in_process(bundle, store_url) as srv:
        sweeper = first_sweep(srv)
        store = srv.runtime.store
        old, _, _ = store.alerts(AlertQuery(limit=10_000))
        assert old
        srv.runtime.clock.at = NOW + 91 * DAY
        sweeper.sweep()  # new date alerts, then the purge of those emitted 90+ days ago
        remaining = listed(srv.stub)
        assert remaining and all(at(a.emitted_at) == NOW + 91 * DAY for a in remaining)
        assert remaining[0].cursor > old[-1].cursor
        stale = old[0]
        again = NewAlert(stale.dedupe_key, stale.kind, stale.contract_id, stale.customer_id,
                         stale.plan_id, stale.occurred_at)
        assert store.append_alerts([again], NOW + 92 * DAY) == []
        store.set_meta(WATERMARK_META, "2025-01-01T00:00:00.000000Z")
        sweeper.sweep()  # the whole past again: purged keys stay emitted
        assert listed(srv.stub) == remaining


# --- ListAlerts ---------------------------------------------------------------------------------


def test_list_alerts_pages_and_filters(bundle, store_url):
    with in_process(bundle, store_url) as srv:
        first_sweep(srv)
        store = srv.runtime.store
        base = store.latest_cursor()
        store.append_alerts([
            NewAlert(f"bulk/{i}", "USAGE_THRESHOLD" if i % 2 else "CONTRACT_EXPIRED",
                     f"c{i % 3}", f"cust{i % 5}", "p", NOW, threshold=i % 100)
            for i in range(1500)
        ], NOW)
        page = srv.stub.ListAlerts(pb.ListAlertsRequest(after_cursor=base))
        assert len(page.alerts) == 100 and page.has_more
        assert page.next_cursor == page.alerts[-1].cursor == base + 100
        page = srv.stub.ListAlerts(pb.ListAlertsRequest(after_cursor=base, page_size=5000))
        assert len(page.alerts) == 1000 and page.has_more
        rest = srv.stub.ListAlerts(pb.ListAlertsRequest(after_cursor=page.next_cursor,
                                                        page_size=1000))
        assert len(rest.alerts) == 500 and not rest.has_more
        assert rest.next_cursor == base + 1500
        # Nothing newer: the cursor stays where it was.
        empty = srv.stub.ListAlerts(pb.ListAlertsRequest(after_cursor=rest.next_cursor))
        assert not empty.alerts and not empty.has_more and empty.next_cursor == base + 1500
        # Filters: AND of kind, customer and contract.
        picked = listed(srv.stub, after=base, kinds=[USAGE], customer_id="cust1",
                        contract_id="c1")
        assert picked and all(
            (a.kind, a.customer_id, a.contract_id) == (USAGE, "cust1", "c1") for a in picked
        )
        assert len(picked) == sum(1 for i in range(1500) if i % 2 and i % 5 == 1 and i % 3 == 1)
        # A filtered page that skipped the tail still moves the cursor past it.
        last = srv.stub.ListAlerts(pb.ListAlertsRequest(
            after_cursor=base, page_size=1000, filter=pb.AlertFilter(customer_id="nobody")
        ))
        assert not last.alerts and not last.has_more and last.next_cursor == base + 1500
        for bad, field in (
            (pb.ListAlertsRequest(filter=pb.AlertFilter(kinds=[pb.ALERT_KIND_UNSPECIFIED])),
             "filter.kinds"),
            (pb.ListAlertsRequest(filter=pb.AlertFilter(kinds=[42])), "filter.kinds"),
            (pb.ListAlertsRequest(page_size=-1), "page_size"),
        ):
            with pytest.raises(grpc.RpcError) as info:
                srv.stub.ListAlerts(bad, timeout=10)
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert info.value.details().startswith(field)


# --- WatchAlerts --------------------------------------------------------------------------------


def test_a_subscriber_resumes_from_its_last_cursor_without_loss_or_duplicates(
    bundle, store_url
):
    many = "".join(
        f"---\nkind: Contract\nid: burst-{i}\ncustomer: burst-{i}\nplan: incident-pack-10\n"
        f"start: 2026-01-01\ntimezone: UTC\n"
        for i in range(12)
    )
    (bundle / "contracts" / "burst.yaml").write_text(many)
    with in_process(bundle, store_url) as srv:
        first_sweep(srv)
        start = srv.runtime.store.latest_cursor()
        received: list[pb.Alert] = []
        stop_after = 17

        def admit_all() -> None:
            channel, stub = stub_for(srv.port)
            with channel:
                for n in range(10):
                    for i in range(12):
                        consume(stub, ticket(f"X-{i}-{n}", f"burst-{i}", "anything"))

        producer = threading.Thread(target=admit_all)
        stream = srv.stub.WatchAlerts(pb.WatchAlertsRequest(after_cursor=start))
        producer.start()
        for reply in stream:  # disconnect mid-burst
            received.append(reply.alert)
            if len(received) == stop_after:
                stream.cancel()
                break
        producer.join()
        total = 12 * 4  # 50, 80, 100 and exhausted per contract
        stream = srv.stub.WatchAlerts(
            pb.WatchAlertsRequest(after_cursor=received[-1].cursor), timeout=30
        )
        for reply in stream:
            received.append(reply.alert)
            if len(received) == total:
                stream.cancel()
                break
        stored = listed(srv.stub, after=start)
        wait_for(lambda: srv.calls.alerts._watchers == 0, timeout=10)
    assert len(stored) == total
    assert [a.cursor for a in received] == [a.cursor for a in stored]
    assert [a.SerializeToString() for a in received] == [a.SerializeToString() for a in stored]


def test_a_stream_sends_new_alerts_live_and_ends_cleanly_on_shutdown(bundle, store_url):
    with in_process(bundle, store_url) as srv:
        first_sweep(srv)
        start = srv.runtime.store.latest_cursor()
        stream = srv.stub.WatchAlerts(pb.WatchAlertsRequest(
            after_cursor=start, filter=pb.AlertFilter(kinds=[USAGE], customer_id="globex")
        ))
        for i in range(5):
            consume(srv.stub, ticket(f"T-{i}"))
        first = next(stream).alert
        assert (first.kind, first.threshold, first.contract_id) == (USAGE, 50, "globex-mail-pack")
        srv.runtime.begin_shutdown()  # what `entitle serve` does before draining
        assert list(stream) == []  # ends with OK, not an error
        assert stream.code() == grpc.StatusCode.OK


def test_watch_rejects_a_bad_filter(bundle, store_url):
    with in_process(bundle, store_url) as srv:
        stream = srv.stub.WatchAlerts(pb.WatchAlertsRequest(
            filter=pb.AlertFilter(kinds=[pb.ALERT_KIND_UNSPECIFIED])
        ))
        with pytest.raises(grpc.RpcError) as info:
            next(stream)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


# --- the CLI and a real process -------------------------------------------------------------------


def test_cli_prints_alerts(bundle, store_url, capsys):
    with in_process(bundle, store_url) as srv:
        first_sweep(srv)
        for i in range(5):
            consume(srv.stub, ticket(f"T-{i}"))
        server = f"127.0.0.1:{srv.port}"
        assert cli_main(["alerts", "--server", server]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert len(lines) == len(listed(srv.stub))
        assert lines[-1].split("\t")[2:4] == ["USAGE_THRESHOLD/50", "globex-mail-pack"]
        assert cli_main(["alerts", "--server", server, "--json", "--kind", "usage_threshold",
                         "--customer", "globex"]) == 0
        objs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        assert [(o["kind"], o["threshold"], o["used"]) for o in objs] == [
            ("ALERT_KIND_USAGE_THRESHOLD", 50, 5.0)
        ]
        cursor = objs[0]["cursor"]
        assert cli_main(["alerts", "--server", server, "--after", str(cursor)]) == 0
        assert capsys.readouterr().out == ""
        # --follow: a separate process that prints alerts as they come.
        follow = subprocess.Popen(
            [sys.executable, "-m", "entitle", "alerts", "--server", server, "--follow",
             "--json", "--after", str(cursor)],
            stdout=subprocess.PIPE, text=True, cwd=REPO,
        )
        guard = threading.Timer(60, follow.kill)  # a hung stream fails instead of hanging
        guard.start()
        try:
            for i in range(5, 8):
                consume(srv.stub, ticket(f"T-{i}"))
            line = follow.stdout.readline()
            assert json.loads(line)["threshold"] == 80
        finally:
            guard.cancel()
            follow.kill()
            follow.wait()


def test_cli_rejects_an_unknown_kind(capsys):
    with pytest.raises(SystemExit):
        cli_main(["alerts", "--kind", "nope"])
    assert "unknown alert kind" in capsys.readouterr().err


def test_a_real_server_catches_up_and_serves_alerts(bundle, store_url, tmp_path):
    with ServerProcess(bundle, store_url, tmp_path / "server.log", now=END + DAY) as server:
        channel, stub = stub_for(server.port)
        with channel:
            wait_for(lambda: len(listed(stub, contract_id="renew-me")) == 5, timeout=30)
            got = listed(stub, contract_id="renew-me")
    assert [at(a.occurred_at) for a in got] == [
        START, END - 90 * DAY, END - 30 * DAY, END - 7 * DAY, END
    ]
    assert {at(a.emitted_at) for a in got} == {END + DAY}


# --- the domain, without a server ---------------------------------------------------------------


def test_sweeping_in_small_windows_equals_one_big_window(bundle):
    policy = compile_or_raise(bundle)
    pairs = [(c, policy.plans[c.plan_id]) for c in policy.contracts.values()]
    a, b = datetime(2025, 1, 1, tzinfo=UTC), datetime(2028, 6, 1, tzinfo=UTC)
    whole = [e.dedupe_key for e in due_alerts(pairs, a, b)]
    pieces: list[str] = []
    t = a
    step = timedelta(days=3, hours=7, minutes=13)
    while t < b:
        u = min(t + step, b)
        pieces += [e.dedupe_key for e in due_alerts(pairs, t, u)]
        t = u
    assert pieces == whole and len(whole) == len(set(whole))


def test_short_terms_send_only_the_tightest_expiry_threshold_at_start(bundle):
    policy = compile_or_raise(bundle)
    contract = policy.contracts["renew-me"]
    plan = policy.plans[contract.plan_id]
    short = replace(contract, end_at=START + 20 * DAY)  # 20 days: 90 and 30 are already due
    got = contract_alerts(short, plan, START - DAY, START + 30 * DAY)
    assert [(e.kind, e.threshold, e.occurred_at) for e in got] == [
        ("CONTRACT_ACTIVATED", 0, START),
        ("CONTRACT_EXPIRING", 30, START),
        ("CONTRACT_EXPIRING", 7, START + 13 * DAY),
        ("CONTRACT_EXPIRED", 0, START + 20 * DAY),
    ]


def test_usage_alerts_need_a_crossing(bundle):
    policy = compile_or_raise(bundle)
    contract = policy.contracts["globex-mail-pack"]
    plan = policy.plans[contract.plan_id]
    key = "2026-01-01T05:00:00Z"
    assert usage_alerts(contract, plan, key, 5, 6, NOW) == []  # 50 already behind
    assert [e.threshold for e in usage_alerts(contract, plan, key, 4, 9, NOW)] == [50, 80]
    assert usage_alerts(contract, plan, key, 6, 5, NOW) == []  # a release
    got = usage_alerts(contract, plan, key, 9, 12, NOW)
    assert [(e.kind, e.threshold) for e in got] == [
        ("USAGE_THRESHOLD", 100), ("QUOTA_EXHAUSTED", 0)
    ]
    assert got[0].dedupe_key == "globex-mail-pack/USAGE_THRESHOLD/100/2026-01-01T05:00:00Z"


@pytest.fixture(autouse=True)
def _no_fake_now_leak():
    yield
    assert "ENTITLE_FAKE_NOW" not in os.environ

