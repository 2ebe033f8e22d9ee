"""The usage ledger against both real databases: exactly-once, never over the limit, outbox."""

from __future__ import annotations

import contextlib
import multiprocessing
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY

from entitle.server.store import (
    AlertQuery,
    NewAlert,
    StoreError,
    StoreUnavailable,
    UsageChange,
    ValueNotStorable,
    open_store,
    redact,
    server_pool_size,
)
from entitle.server.store.clocks import ClockUpdate, NewClock, StoredClock, StoredEvent
from entitle.server.store.migrations import LATEST
from entitle.server.store.postgres import APPLICATION_NAME

T0 = datetime(2026, 6, 15, 10, 0, tzinfo=UTC)
PERIOD = "2026-06"


@pytest.fixture
def store(store_url):
    s = open_store(store_url)
    yield s
    s.close()


def admit(store, ticket_id, *, limit=3.0, amount=1.0, allow_over=False, hook=None,
          contract="acme-pack", period=PERIOD):
    return store.admit(
        ticket_id, contract, period, amount=amount, limit=limit, allow_over=allow_over,
        answer=lambda used: f"{ticket_id} at {used:g}".encode(), at=T0, on_commit_alerts=hook,
    )


def test_migrations_are_applied_once_and_reopening_is_harmless(store_url):
    first = open_store(store_url)
    assert first.schema_version() == LATEST
    first.close()
    again = open_store(store_url)
    assert again.schema_version() == LATEST
    again.close()


def test_a_schema_newer_than_the_code_is_refused(store):
    store._run(lambda tx: tx.run(
        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
        (LATEST + 1, "from the future", "2030-01-01T00:00:00.000000Z"),
    ))
    with pytest.raises(StoreError, match="newer than this entitle knows"):
        store.migrate()


def test_admission_counts_once_and_a_retry_gets_the_original_decision(store):
    first = admit(store, "T-1")
    assert first.status == "admitted" and first.used == 1 and first.payload == b"T-1 at 1"
    retry = admit(store, "T-1")
    assert retry.status == "duplicate" and retry.payload == b"T-1 at 1"
    assert store.used("acme-pack", PERIOD) == 1
    usage = store.ticket_usage("T-1")
    assert usage.admitted and usage.contract_id == "acme-pack" and not usage.released
    assert store.ticket_usage("T-unknown") is None


def test_the_limit_is_never_passed_and_a_refusal_leaves_no_trace(store):
    assert [admit(store, f"T-{i}").status for i in range(4)] == [
        "admitted", "admitted", "admitted", "exhausted"
    ]
    assert store.used("acme-pack", PERIOD) == 3
    assert store.ticket_usage("T-3") is None  # refused: a later retry may be admitted
    assert admit(store, "T-3", allow_over=True).status == "admitted"  # overage plans
    assert store.used("acme-pack", PERIOD) == 4


def test_unlimited_and_zero_amount_admissions(store):
    assert admit(store, "T-1", limit=None).status == "admitted"
    assert admit(store, "T-2", amount=0, limit=0).status == "admitted"  # hours plan: no unit
    assert store.used("acme-pack", PERIOD) == 1
    assert admit(store, "T-2", amount=0, limit=0).status == "duplicate"


def test_used_many_reads_several_periods_at_once_in_order(store):
    admit(store, "T-1", contract="acme-pack", period="2026-06")
    admit(store, "T-2", contract="acme-pack", period="2026-06")
    admit(store, "T-3", contract="globex-pack", period="2026-06")
    keys = [("globex-pack", "2026-06"), ("acme-pack", "2026-07"), ("acme-pack", "2026-06")]
    assert store.used_many(keys) == [1.0, 0.0, 2.0]
    assert store.used_many(keys[2:]) == [store.used("acme-pack", "2026-06")] == [2.0]
    assert store.used_many([]) == []


def test_fractional_amounts_meet_the_limit_exactly(store):
    for i in range(3):
        assert admit(store, f"T-{i}", amount=0.1, limit=0.3).status == "admitted"
    assert admit(store, "T-9", amount=0.1, limit=0.3).status == "exhausted"


def test_concurrent_admissions_from_two_stores_admit_exactly_what_is_left(store_url):
    stores = [open_store(store_url), open_store(store_url)]
    try:
        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(
                lambda i: admit(stores[i % 2], f"T-{i}", limit=7).status, range(40)
            ))
        assert results.count("admitted") == 7 and results.count("exhausted") == 33
        assert stores[0].used("acme-pack", PERIOD) == 7
    finally:
        for s in stores:
            s.close()


def test_a_group_sharing_a_commit_gives_each_admission_its_own_answer(store):
    """Admissions queued while a commit runs go in one transaction: duplicates, admissions,
    exhausted ones, one whose decision fails and one the database cannot hold, each answered
    as if it ran alone."""
    assert [admit(store, f"T-old-{i}", limit=5).status for i in range(2)] == ["admitted"] * 2
    group = store._group_commit()
    release, ran_in = threading.Event(), {}

    def answer(ticket_id):
        def payload(used):
            ran_in[ticket_id] = threading.get_ident()
            if ticket_id == "T-first":
                release.wait(30)  # holds the group's transaction open while the rest queue
            if ticket_id == "T-boom":
                raise RuntimeError("no decision for T-boom")
            return f"{ticket_id} at {used:g}".encode()
        return payload

    def call(ticket_id):
        return store.admit(ticket_id, "acme-pack", PERIOD, amount=1.0, limit=5.0,
                           allow_over=False, answer=answer(ticket_id), at=T0,
                           on_commit_alerts=_threshold_hook)

    order = ["T-old-0", "T-a", "T-boom", "lone \ud800", "T-b", "T-c", "T-a", "T-d"]
    with ThreadPoolExecutor(len(order) + 1) as pool:
        first = pool.submit(call, "T-first")
        wait_until(lambda: "T-first" in ran_in)
        futures = []
        for n, ticket_id in enumerate(order, start=2):  # queued in this order
            futures.append(pool.submit(call, ticket_id))
            wait_until(lambda n=n: group.queued == n)
        release.set()
        assert first.result().status == "admitted" and first.result().used == 3
        outcomes = []
        for f in futures:
            try:
                r = f.result()
                outcomes.append((r.status, r.payload, r.used))
            except RuntimeError as exc:
                outcomes.append(("raised", str(exc), None))
            except ValueNotStorable:
                outcomes.append(("not storable", None, None))
    assert outcomes == [
        ("duplicate", b"T-old-0 at 1", 0.0),
        ("admitted", b"T-a at 4", 4.0),
        ("raised", "no decision for T-boom", None),
        ("not storable", None, None),  # a ticket id the database cannot hold fails alone
        ("admitted", b"T-b at 5", 5.0),
        ("exhausted", None, 0.0),
        ("duplicate", b"T-a at 4", 0.0),  # the same ticket twice in one group counts once
        ("exhausted", None, 0.0),
    ]
    assert len({ran_in[t] for t in ("T-a", "T-boom", "T-b")}) == 1  # one transaction's thread
    assert store.used("acme-pack", PERIOD) == 5
    assert store.ticket_usage("T-boom") is None and store.ticket_usage("T-c") is None
    assert store.ticket_usage("T-b").payload == b"T-b at 5"
    # Alerts committed with the usage that caused them: one per unit crossed, none twice.
    assert [a.threshold for a in store.alerts(AlertQuery())[0]] == [3, 4, 5]
    assert group.queued == 0


def _clock_row(ticket_id: str) -> NewClock:
    return NewClock(ticket_id, "acme-pack", "acme", "pack-plan", "p", "terms", T0, "medium",
                    T0)


def _counting_assess(clock: StoredClock, history) -> ClockUpdate:
    """Store-level stand-in for the SLA engine: one alert per breach event, keyed once."""
    if any(e.type == "boom" for e in history):
        raise RuntimeError(f"cannot assess {clock.ticket_id}")
    keys = {f"{clock.ticket_id}/{e.event_id}" for e in history if e.type == "breach"}
    fresh = sorted(keys - clock.alerted)
    return ClockUpdate(
        next_alert_at=max(e.at for e in history),
        alerts=[NewAlert(k, "SLA_BREACHED", "acme-pack", "acme", "pack-plan", T0, 100)
                for k in fresh],
        alerted=clock.alerted | keys, report=len(history))


def test_ticket_events_share_a_group_commit_with_admissions_each_as_if_alone(store):
    """Event calls queued while a group's commit runs go in one transaction with the
    admissions queued beside them: two calls for one ticket see each other, a duplicate id
    keeps its first delivery, a full history, a failing assessment, a ticket without a
    clock and a value the database cannot hold fail alone, alerts once."""
    for tid in ("T-ev", "T-full"):
        assert store.admit(tid, "acme-pack", PERIOD, amount=0, limit=None, allow_over=False,
                           answer=lambda used: b"ok", at=T0,
                           clock=_clock_row(tid)).status == "admitted"
    full = [StoredEvent(f"f{i}", "note", T0) for i in range(3)]
    assert store.record_ticket_events("T-full", full, max_events=3, now=T0,
                                      assess=_counting_assess) is not None
    group, release, held = store._group_commit(), threading.Event(), threading.Event()

    def hold(used):
        held.set()
        release.wait(30)  # holds the group's transaction open while the rest queue
        return b"first"

    def events(tid, *items):
        return lambda: store.record_ticket_events(
            tid, [StoredEvent(i, kind, T0 + timedelta(minutes=n)) for n, (i, kind) in
                  enumerate(items)], max_events=3 if tid == "T-full" else 4, now=T0,
            assess=_counting_assess)

    calls = [
        events("T-ev", ("a", "breach"), ("b", "note")),
        lambda: store.admit("T-new", "acme-pack", PERIOD, amount=0, limit=None,
                            allow_over=False, answer=lambda used: b"new", at=T0,
                            clock=_clock_row("T-new")),
        events("T-ev", ("a", "note"), ("c", "breach")),  # "a" again, changed: first wins
        events("T-nobody", ("x", "note")),
        events("T-full", ("f3", "note")),
        events("T-ev", ("d", "boom")),
        events("T-new", ("n1", "breach")),  # admitted earlier in the same group
        events("T-ev", ("lone \ud800", "note")),
    ]
    with ThreadPoolExecutor(len(calls) + 1) as pool:
        first = pool.submit(store.admit, "T-first", "acme-pack", PERIOD, amount=0, limit=None,
                            allow_over=False, answer=hold, at=T0)
        held.wait(30)
        futures = []
        for n, call in enumerate(calls, start=2):
            futures.append(pool.submit(call))
            wait_until(lambda n=n: group.queued == n)
        release.set()
        assert first.result().status == "admitted"
        outcomes = []
        for f in futures:
            try:
                r = f.result()
                outcomes.append(r.status if hasattr(r, "status") else r and (
                    [(o.event_id, o.duplicate, o.conflicting) for o in r.outcomes],
                    r.update.report, len(r.appended)))
            except Exception as exc:
                outcomes.append(type(exc).__name__)
    assert outcomes == [
        ([("a", False, False), ("b", False, False)], 2, 1),
        "admitted",
        ([("a", True, True), ("c", False, False)], 3, 1),
        None,
        "TicketHistoryFull",
        "RuntimeError",
        ([("n1", False, False)], 1, 1),
        "ValueNotStorable",  # an event id the database cannot hold fails alone
    ]
    clock, kept = store.ticket_clock("T-ev")
    assert [(e.event_id, e.type) for e in kept] == [("a", "breach"), ("b", "note"),
                                                    ("c", "breach")]
    assert clock.event_count == 3 and clock.alerted == {"T-ev/a", "T-ev/c"}
    assert [a.dedupe_key for a in store.alerts(AlertQuery())[0]] == [
        "T-ev/a", "T-ev/c", "T-new/n1"]
    assert len(store.ticket_clock("T-full")[1]) == 3 and group.queued == 0


def wait_until(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def _admit_in_process(url: str, first: int, count: int, out) -> None:
    store = open_store(url)
    with ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(
            lambda i: admit(store, f"T-{i}", limit=11).status, range(first, first + count)
        ))
    store.close()
    out.put(statuses)


def test_concurrent_admissions_from_two_processes_admit_exactly_what_is_left(store_url):
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_admit_in_process, args=(store_url, i * 30, 30, out))
             for i in range(2)]
    for p in procs:
        p.start()
    statuses = out.get(timeout=120) + out.get(timeout=120)
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert statuses.count("admitted") == 11
    store = open_store(store_url)
    assert store.used("acme-pack", PERIOD) == 11
    store.close()


def test_recorded_usage_is_exactly_once_per_key(store):
    kwargs = dict(ticket_id="T-1", contract_id="acme-hours", period_key="pack", unit="hours",
                  at=T0)
    assert store.record("k1", amount=1.5, **kwargs).status == "recorded"
    assert store.record("k1", amount=1.5, **kwargs).status == "duplicate"
    assert store.record("k1", amount=2.0, **kwargs).status == "conflict"
    assert store.record("k2", amount=0.25, **kwargs).status == "recorded"
    assert store.used("acme-hours", "pack") == 1.75
    usage = store.ticket_usage("T-1")
    assert usage.contract_id == "acme-hours" and not usage.admitted and usage.payload is None


def test_release_gives_usage_back_once_and_the_ticket_stays_known(store):
    admit(store, "T-1")
    store.record("k1", ticket_id="T-1", contract_id="acme-hours", period_key="pack",
                 amount=2.5, unit="hours", at=T0)
    released = store.release("T-1", reason="merged", at=T0)
    assert released == {"acme-pack": 1.0, "acme-hours": 2.5}
    assert store.used("acme-pack", PERIOD) == 0 and store.used("acme-hours", "pack") == 0
    assert store.release("T-1", reason="again", at=T0) == {}
    assert store.ticket_usage("T-1").released
    assert admit(store, "T-1").status == "duplicate"  # a late retry does not count again
    assert store.used("acme-pack", PERIOD) == 0


def _threshold_hook(change: UsageChange):
    """An alert at every whole unit crossed, keyed by period and unit (like percent alerts)."""
    for unit in range(int(change.before) + 1, int(change.after) + 1):
        yield NewAlert(
            dedupe_key=f"{change.contract_id}/{change.period_key}/{unit}",
            kind="USAGE_THRESHOLD", contract_id=change.contract_id, customer_id="acme",
            plan_id="incident-pack-10", occurred_at=change.at, threshold=unit,
            period_key=change.period_key, body={"used": change.after},
        )


def test_alerts_commit_with_usage_once_per_key_and_not_for_refusals(store):
    assert admit(store, "T-1", hook=_threshold_hook).status == "admitted"
    assert admit(store, "T-2", amount=2, hook=_threshold_hook).status == "admitted"
    assert admit(store, "T-3", hook=_threshold_hook).status == "exhausted"
    page, resume, more = store.alerts(AlertQuery())
    assert [a.threshold for a in page] == [1, 2, 3] and not more
    assert [a.cursor for a in page] == sorted(a.cursor for a in page)
    assert resume == page[-1].cursor == store.latest_cursor()
    assert page[0].body == {"used": 1.0} and page[0].occurred_at == T0
    # Released and consumed again in the same period: the same thresholds are not re-emitted.
    store.release("T-2", reason="deleted", at=T0)
    assert admit(store, "T-4", amount=2, hook=_threshold_hook).status == "admitted"
    assert len(store.alerts(AlertQuery())[0]) == 3


def test_alert_paging_filters_and_retention(store):
    later = T0 + timedelta(days=30)
    new = [
        NewAlert(f"k{i}", "CONTRACT_EXPIRING" if i % 2 else "CONTRACT_ACTIVATED",
                 f"c{i % 3}", "acme" if i < 6 else "globex", "p", T0, threshold=i)
        for i in range(10)
    ]
    assert len(store.append_alerts(new[:6], emitted_at=T0)) == 6
    assert len(store.append_alerts(new, emitted_at=later)) == 4  # the first six are known
    page, resume, more = store.alerts(AlertQuery(limit=4))
    assert [a.dedupe_key for a in page] == ["k0", "k1", "k2", "k3"] and more
    page, resume, more = store.alerts(AlertQuery(after_cursor=resume, limit=4))
    assert [a.dedupe_key for a in page] == ["k4", "k5", "k6", "k7"] and more
    only = store.alerts(AlertQuery(kinds=("CONTRACT_EXPIRING",), customer_id="globex"))[0]
    assert [a.dedupe_key for a in only] == ["k7", "k9"]
    # A filter that skips the newest alerts still moves the resume cursor past them.
    page, resume, more = store.alerts(AlertQuery(contract_id="c0", after_cursor=0))
    assert [a.dedupe_key for a in page] == ["k0", "k3", "k6", "k9"]
    assert resume == store.latest_cursor() and not more
    assert store.purge_alerts(emitted_before=later) == 6
    assert [a.dedupe_key for a in store.alerts(AlertQuery())[0]] == ["k6", "k7", "k8", "k9"]
    assert store.append_alerts(new, emitted_at=later) == []  # purged keys stay emitted


def test_concurrent_alert_appends_get_distinct_increasing_cursors(store_url):
    stores = [open_store(store_url), open_store(store_url)]
    try:
        def append(i):
            return stores[i % 2].append_alerts(
                [NewAlert(f"k{i}", "CONTRACT_ACTIVATED", "c", "acme", "p", T0)], emitted_at=T0
            )

        with ThreadPoolExecutor(8) as pool:
            cursors = [c for batch in pool.map(append, range(50)) for c in batch]
        assert len(set(cursors)) == 50
        page, _, _ = stores[0].alerts(AlertQuery(limit=1000))
        assert [a.cursor for a in page] == sorted(cursors)
    finally:
        for s in stores:
            s.close()


def test_a_lease_has_one_holder_until_it_expires(store):
    assert store.try_lease("sweeper", "a", T0, 30)
    assert store.try_lease("sweeper", "a", T0 + timedelta(seconds=10), 30)  # renewal
    assert not store.try_lease("sweeper", "b", T0 + timedelta(seconds=20), 30)
    assert store.try_lease("sweeper", "b", T0 + timedelta(seconds=41), 30)  # expired
    assert not store.try_lease("sweeper", "a", T0 + timedelta(seconds=42), 30)


def test_meta_values(store):
    assert store.get_meta("sweeper.watermark") is None
    store.set_meta("sweeper.watermark", "2026-06-15T10:00:00Z")
    store.set_meta("sweeper.watermark", "2026-06-16T10:00:00Z")
    assert store.get_meta("sweeper.watermark") == "2026-06-16T10:00:00Z"


def test_store_urls_are_checked_and_passwords_never_shown(tmp_path):
    with pytest.raises(StoreError, match=r"unsupported store 'mysql://app:\*\*\*@db/x'"):
        open_store("mysql://app:secret@db/x")
    with pytest.raises(StoreError, match="does not exist"):
        open_store(f"sqlite:///{tmp_path / 'missing' / 'entitle.db'}")
    not_a_db = tmp_path / "notes.db"
    not_a_db.write_text("plain text, not a database\n" * 100)
    with pytest.raises(StoreError, match=r"notes\.db"):
        open_store(f"sqlite:///{not_a_db}")
    masked = redact("postgresql://app:s3cret@db:5432/entitle")
    assert masked == "postgresql://app:***@db:5432/entitle"


def test_an_unreachable_postgresql_is_a_clear_error():
    with pytest.raises(StoreError, match=r"cannot connect to postgresql://app:\*\*\*@127"):
        open_store("postgresql://app:secret@127.0.0.1:1/x?connect_timeout=2")


def test_sqlite_is_in_wal_mode_with_durable_commits(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'e.db'}")
    conn = store._connection()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    store.close()


def test_reads_do_not_wait_for_a_writer(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'e.db'}")
    admit(store, "T-1")
    entered, release = threading.Event(), threading.Event()

    def slow_writer(tx):
        tx.run("UPDATE usage_counters SET used = used + 0")
        entered.set()
        release.wait(10)

    writer = threading.Thread(target=store._run, args=(slow_writer,))
    writer.start()
    entered.wait(10)
    try:
        assert store.used("acme-pack", PERIOD) == 1  # would block on BEGIN IMMEDIATE
    finally:
        release.set()
        writer.join()
    store.close()


# -- PostgreSQL connections: pool size, names, and connections the server dropped -------------
only_postgresql = pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)


def _named(url: str) -> tuple[str, str]:
    """`url` with an application_name of its own, so a test kills only its connections."""
    name = f"entitle-test-{uuid.uuid4().hex[:12]}"
    return f"{url}&application_name={name}", name


def _terminate(url: str, name: str) -> int:
    """Terminate the backends of `name`, as a DBA or a failover would; wait until gone."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as admin:
        # Two statements: in one, nothing keeps PostgreSQL from calling pg_terminate_backend
        # before it filters on the name, killing other sessions.
        pids = [pid for (pid,) in admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (name,)
        )]
        admin.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", (pids,))
        deadline = time.monotonic() + 30
        while admin.execute(  # the pool may meanwhile open new ones: wait for these only
            "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,)
        ).fetchone()[0]:
            assert time.monotonic() < deadline, "terminated backends did not exit"
            time.sleep(0.01)
    return len(pids)


def _store_errors() -> float:
    return REGISTRY.get_sample_value(
        "entitle_store_errors_total", {"backend": "postgresql"}
    ) or 0.0


@only_postgresql
def test_a_workers_pool_has_a_connection_per_thread_calling_the_store(store_url, tmp_path):
    from test_server_harness import make_bundle

    from entitle.server.clock import FixedClock
    from entitle.server.config import ServeConfig
    from entitle.server.runtime import Runtime

    bundle = str(make_bundle(tmp_path))
    for http, faces in (("", 1), ("127.0.0.1:0", 2)):
        config = ServeConfig(policies=bundle, store_url=store_url, threads=3, http_listen=http)
        runtime = Runtime.open(config, FixedClock(T0))
        runtime.start()
        try:
            # 3 handler threads per face (alert streams run on them), the two sweepers, the
            # watcher, the dashboard's usage snapshot and warm-up.
            assert runtime.store.pool.max_size == server_pool_size(3, faces=faces) == 3 * faces + 5
        finally:
            runtime.close()


@only_postgresql
def test_store_connections_are_named_in_pg_stat_activity(store_url):
    setting = "SELECT current_setting('application_name')"
    store = open_store(store_url)
    try:
        assert store._read_one(setting) == (APPLICATION_NAME,) == ("entitle",)
    finally:
        store.close()
    named, name = _named(store_url)
    store = open_store(named)  # the URL's own name wins
    try:
        assert store._read_one(setting) == (name,)
    finally:
        store.close()


@only_postgresql
def test_connections_the_server_terminated_are_replaced_without_failing_a_call(store_url):
    url, name = _named(store_url)
    store = open_store(url)
    try:
        assert [admit(store, f"T-{i}", limit=10).status for i in range(2)] == ["admitted"] * 2
        held = [store.pool.getconn() for _ in range(4)]  # four idle connections in the pool
        for conn in held:
            store.pool.putconn(conn)
        errors = _store_errors()
        assert _terminate(store_url, name) >= 4
        # Every call after the restart succeeds: reads, admissions, records, releases.
        assert store.used("acme-pack", PERIOD) == 2
        assert [admit(store, f"T-{i}", limit=10).status for i in range(2, 6)] == ["admitted"] * 4
        assert admit(store, "T-0", limit=10).status == "duplicate"
        assert store.record("k1", ticket_id="T-9", contract_id="acme-hours", period_key="pack",
                            amount=1.5, unit="hours", at=T0).status == "recorded"
        assert store.release("T-5", reason="deleted", at=T0) == {"acme-pack": 1.0}
        assert store.used("acme-pack", PERIOD) == 5 and store.used("acme-hours", "pack") == 1.5
        assert _store_errors() == errors
    finally:
        store.close()


def _kill_own_backends(url: str, name: str, times: int):
    """A usage hook that terminates the store's connections mid-transaction, `times` times."""
    calls = []

    def hook(change: UsageChange):
        calls.append(change)
        if len(calls) <= times:
            _terminate(url, name)
        return list(_threshold_hook(change))

    return hook, calls


@only_postgresql
def test_a_transaction_whose_connection_died_is_run_once_more_and_counts_once(store_url):
    url, name = _named(store_url)
    store = open_store(url)
    try:
        hook, calls = _kill_own_backends(store_url, name, times=1)
        result = admit(store, "T-1", hook=hook)  # the first run rolled back with its backend
        assert result.status == "admitted" and result.payload == b"T-1 at 1" and len(calls) == 2
        assert store.used("acme-pack", PERIOD) == 1
        assert [a.threshold for a in store.alerts(AlertQuery())[0]] == [1]
        # Still down after the one retry: unavailable, nothing counted, the failure counted.
        errors = _store_errors()
        hook, calls = _kill_own_backends(store_url, name, times=2)
        with pytest.raises(StoreUnavailable, match="connection lost"):
            admit(store, "T-2", hook=hook)
        assert len(calls) == 2 and _store_errors() == errors + 1
        assert store.used("acme-pack", PERIOD) == 1 and store.ticket_usage("T-2") is None
    finally:
        store.close()


def _lose_the_next_commit(store, monkeypatch) -> list[bool]:
    """The next write commits, then its connection dies before the caller hears of it: to
    the store, as if COMMIT's reply was lost. Returns a list that gets True once it did."""
    real, lost = store.pool.connection, []

    @contextlib.contextmanager
    def connection(*args, **kwargs):
        monkeypatch.setattr(store.pool, "connection", real)  # this call only
        with real(*args, **kwargs) as conn:
            commit = conn.transaction

            @contextlib.contextmanager
            def committed_then_dies():
                with commit():
                    yield
                lost.append(True)
                conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")

            conn.transaction = committed_then_dies
            yield conn

    monkeypatch.setattr(store.pool, "connection", connection)
    return lost


@only_postgresql
def test_a_write_whose_commit_outcome_was_lost_finds_itself_instead_of_counting_twice(
    store, monkeypatch
):
    lost = _lose_the_next_commit(store, monkeypatch)
    retry = admit(store, "T-1", hook=_threshold_hook)
    assert lost and retry.status == "duplicate" and retry.payload == b"T-1 at 1"
    assert store.used("acme-pack", PERIOD) == 1
    assert admit(store, "T-2").status == "admitted" and store.used("acme-pack", PERIOD) == 2

    record = dict(ticket_id="T-3", contract_id="acme-hours", period_key="pack", amount=2.5,
                  unit="hours", at=T0)
    lost = _lose_the_next_commit(store, monkeypatch)
    assert store.record("k1", **record).status == "duplicate" and lost
    assert store.used("acme-hours", "pack") == 2.5

    lost = _lose_the_next_commit(store, monkeypatch)
    assert store.release("T-1", reason="deleted", at=T0) == {} and lost  # released, once
    assert store.used("acme-pack", PERIOD) == 1 and store.ticket_usage("T-1").released

    alert = NewAlert("k-lost", "CONTRACT_EXPIRING", "c", "acme", "p", T0, threshold=30)
    lost = _lose_the_next_commit(store, monkeypatch)
    assert store.append_alerts([alert], emitted_at=T0) == [] and lost
    assert [a.dedupe_key for a in store.alerts(AlertQuery())[0]] == ["acme-pack/2026-06/1",
                                                                     "k-lost"]
