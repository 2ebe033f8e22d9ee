"""The ledger's logic, once, in SQL both SQLite and PostgreSQL run; backends supply connections."""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from entitle.server.metrics import count_alert, count_store_error
from entitle.server.store.base import (
    EPSILON,
    Admission,
    AdmitResult,
    AlertHook,
    AlertQuery,
    DeadLetter,
    NewAlert,
    RecordResult,
    StoredAlert,
    StoreError,
    StoreUnavailable,
    TicketUsage,
    UsageChange,
    ValueNotStorable,
    WebhookProgress,
    from_text,
    to_text,
)
from entitle.server.store.clocks import ClockLedger, EventsCall, NewClock
from entitle.server.store.groupcommit import GroupCommit
from entitle.server.store.migrations import LATEST, MIGRATIONS

T = TypeVar("T")
KEPT_BUNDLES = 5  # accepted bundles kept in the store, the newest included
APPEND_CHUNK = 200  # alerts per INSERT statement (10 parameters each)
ATTEMPTS = 5  # a transaction that hit a deadlock or a lock timeout is run again, this often


class Tx:
    """A cursor that speaks `?` placeholders on either database."""

    def __init__(self, cursor: Any, paramstyle: str, new_cursor: Callable[[], Any] | None = None):
        self.cursor = cursor
        self.percent = paramstyle == "format"
        self._new_cursor = new_cursor  # given in PostgreSQL pipeline mode: see many()

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.percent else sql

    def run(self, sql: str, params: tuple = ()) -> Any:
        return self.cursor.execute(self._sql(sql), params)

    def one(self, sql: str, params: tuple = ()) -> tuple | None:
        return self.run(sql, params).fetchone()

    def all(self, sql: str, params: tuple = ()) -> list[tuple]:
        return list(self.run(sql, params).fetchall())

    def many(self, statements: Sequence[tuple[str, tuple]]) -> list[list[tuple]]:
        """Each statement's rows (each returns rows: SELECT or RETURNING); in pipeline mode all
        are sent before any result is awaited (one round trip), each run after the one
        before it."""
        if self._new_cursor is None:
            return [self.all(sql, params) for sql, params in statements]
        cursors = []
        for sql, params in statements:
            cursor = self._new_cursor()
            cursor.execute(self._sql(sql), params)
            cursors.append(cursor)
        return [list(c.fetchall()) for c in cursors]


class _TicketRace(Exception):
    """Another process admitted a ticket of the batch after the check: run it again."""


@dataclass(frozen=True)
class _Admission:
    """One admit() call waiting for its group's transaction."""

    ticket_id: str
    contract_id: str
    period_key: str
    amount: float
    cap: float
    answer: Callable[[float], bytes]
    at: datetime
    hook: AlertHook | None
    clock: NewClock | None


_GROUP_GUARD = threading.Lock()  # creates each store's group-commit queue once


class SqlStore(ClockLedger):
    """Conditional updates, idempotency and the outbox; subclasses open transactions."""

    backend = "sql"
    # Appended to a SELECT of rows the transaction will update: locks them until it ends
    # (SQLite needs nothing: BEGIN IMMEDIATE holds the whole file's write lock).
    lock_rows = ""
    unavailable: tuple[type[BaseException], ...] = ()  # database errors a caller may retry
    # Driver errors about a value the database cannot hold (checked before `unavailable`,
    # which may include their base classes): ValueNotStorable, never retried.
    not_storable: tuple[type[BaseException], ...] = (OverflowError, UnicodeEncodeError)

    # -- what a backend provides ------------------------------------------------------------
    def _transaction(self, write: bool, pipeline: bool = False) -> AbstractContextManager[Tx]:
        """A write transaction, or (write=False) autocommit reads that never block writers.
        `pipeline`: statements whose results nobody waits for (BEGIN, writes without
        RETURNING, COMMIT) travel with the next that is waited for, where the database can."""
        raise NotImplementedError

    def _retryable(self, exc: BaseException) -> bool:
        """A lost race (deadlock, lock timeout) worth running the transaction again for."""
        return False

    def _reconnect(self, exc: BaseException) -> bool:
        """True when `exc` is a connection lost under the call and the next one is live."""
        return False

    def _lock_alert_log(self, tx: Tx) -> None:
        """Serialise alert appends so cursors become visible in increasing order."""

    def _lock_migrations(self, tx: Tx) -> None:
        """Keep two processes from migrating at once."""

    def close(self) -> None:
        raise NotImplementedError

    # -- plumbing -------------------------------------------------------------------------
    def _run(self, work: Callable[[Tx], T], *, write: bool = True, pipeline: bool = False) -> T:
        """`work` in one transaction, run again on a deadlock, lock timeout or lost connection."""
        attempt, reconnected = 0, False
        while True:
            try:
                with self._transaction(write, pipeline) as tx:
                    result = work(tx)
                for kind in getattr(tx, "emitted_kinds", ()):  # committed: count its alerts
                    count_alert(kind)
                return result
            except self.not_storable as exc:
                raise self._refusal(exc) from exc
            except self.unavailable as exc:
                # A server restart or failover must not fail the calls that notice it.
                # A lost connection: the server rolled the transaction back -- unless it broke
                # during COMMIT, which may then have committed unheard. Running `work` again
                # is safe either way, because every write checks for its own earlier effect
                # inside the transaction and so finds it instead of counting twice, answering
                # as a client's own retry would: admit() finds its ticket (ON CONFLICT) and
                # returns "duplicate" with the stored decision; record() finds its idempotency
                # key and fingerprint ("duplicate"); release() only updates rows still
                # unreleased (and then releases nothing more); alerts dedupe on alert_keys;
                # leases, meta, accepted bundles and migrations are upserts or check their
                # own state first. A write added here must keep that property. (The alerts of
                # an unheard commit are not counted in entitle_alerts_emitted_total.)
                if not reconnected and self._reconnect(exc):
                    reconnected = True
                    continue
                attempt += 1
                if not self._retryable(exc):
                    count_store_error(self.backend)
                    raise StoreUnavailable(f"{self.backend} store unavailable: {exc}") from exc
                if attempt == ATTEMPTS:
                    count_store_error(self.backend)
                    raise StoreUnavailable(f"{self.backend} store busy: {exc}") from exc
                time.sleep(0.01 * 2 ** (attempt - 1))

    def _refusal(self, exc: BaseException) -> ValueNotStorable:
        return ValueNotStorable(f"the {self.backend} store cannot hold a value: {exc}")

    def _read_one(self, sql: str, params: tuple = ()) -> tuple | None:
        return self._run(lambda tx: tx.one(sql, params), write=False)

    def migrate(self) -> int:
        """Apply pending migrations; refuse a schema newer than this code knows."""

        def work(tx: Tx) -> int:
            self._lock_migrations(tx)
            tx.run(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
            row = tx.one("SELECT MAX(version) FROM schema_migrations")
            current = row[0] if row and row[0] is not None else 0
            if current > LATEST:
                raise StoreError(
                    f"the store's schema is version {current}, newer than this entitle knows "
                    f"({LATEST}); upgrade entitle before pointing it at this store"
                )
            for m in MIGRATIONS:
                if m.version > current:
                    for statement in m.sql(self.backend):
                        tx.run(statement)
                    tx.run(
                        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?,?,?)",
                        (m.version, m.name, to_text(datetime.now().astimezone())),
                    )
            return LATEST

        return self._run(work)

    def schema_version(self) -> int:
        row = self._read_one("SELECT MAX(version) FROM schema_migrations")
        return int(row[0]) if row and row[0] is not None else 0

    # -- usage ----------------------------------------------------------------------------
    def used(self, contract_id: str, period_key: str) -> float:
        row = self._read_one(
            "SELECT used FROM usage_counters WHERE contract_id = ? AND period_key = ?",
            (contract_id, period_key),
        )
        return float(row[0]) if row else 0.0

    def used_many(self, keys: Sequence[tuple[str, str]]) -> list[float]:
        """Several periods' usage in one statement (a decision weighs every live contract)."""
        if len(keys) == 1:
            return [self.used(*keys[0])]
        if not keys:
            return []
        match = " OR ".join(["(contract_id = ? AND period_key = ?)"] * len(keys))
        rows = self._run(lambda tx: tx.all(
            f"SELECT contract_id, period_key, used FROM usage_counters WHERE {match}",
            tuple(v for key in keys for v in key),
        ), write=False)
        found = {(cid, key): float(used) for cid, key, used in rows}
        return [found.get(key, 0.0) for key in keys]

    def usage_of(self, contract_id: str) -> dict[str, float]:
        """Every period's usage of one contract (reports)."""
        rows = self._run(lambda tx: tx.all(
            "SELECT period_key, used FROM usage_counters WHERE contract_id = ?", (contract_id,)
        ), write=False)
        return {key: float(used) for key, used in rows}

    def current_usage(self) -> dict[tuple[str, str], float]:
        """Every counter that is not zero (the dashboard ranks contracts by % used with it)."""
        rows = self._run(lambda tx: tx.all(
            "SELECT contract_id, period_key, used FROM usage_counters WHERE used > 0"
        ), write=False)
        return {(cid, key): float(used) for cid, key, used in rows}

    def admissions_of(self, contract_id: str, limit: int) -> list[Admission]:
        """A contract's newest admitted tickets, released ones included (marked so)."""
        rows = self._run(lambda tx: tx.all(
            "SELECT ticket_id, period_key, amount, admitted_at, released_at, release_reason "
            "FROM ticket_admissions WHERE contract_id = ? "
            "ORDER BY admitted_at DESC, ticket_id LIMIT ?",
            (contract_id, limit),
        ), write=False)
        return [
            Admission(tid, key, float(amount), from_text(at),
                      from_text(released) if released else None, reason)
            for tid, key, amount, at, released, reason in rows
        ]

    def ticket_usage(self, ticket_id: str) -> TicketUsage | None:
        def work(tx: Tx) -> TicketUsage | None:
            row = tx.one(
                "SELECT contract_id, payload, released_at FROM ticket_admissions "
                "WHERE ticket_id = ?",
                (ticket_id,),
            )
            if row:
                return TicketUsage(ticket_id, row[0], True, bytes(row[1]), row[2] is not None)
            row = tx.one(
                "SELECT contract_id, released_at FROM usage_records WHERE ticket_id = ? "
                "ORDER BY recorded_at DESC, idempotency_key LIMIT 1",
                (ticket_id,),
            )
            if row:
                return TicketUsage(ticket_id, row[0], False, None, row[1] is not None)
            return None

        return self._run(work, write=False)

    def admission_view(self, ticket_id: str, keys: Sequence[tuple[str, str]]
                       ) -> tuple[bytes | None, list[float]]:
        """Before an admission, in one statement: the decision kept if the ticket was already
        admitted, and used() of each key (what its decision reads)."""
        match = " OR ".join(["(contract_id = ? AND period_key = ?)"] * len(keys))
        sql = "SELECT payload, NULL, NULL, NULL FROM ticket_admissions WHERE ticket_id = ?"
        if keys:
            sql += (" UNION ALL SELECT NULL, contract_id, period_key, used FROM usage_counters "
                    f"WHERE {match}")
        rows = self._run(lambda tx: tx.all(sql, (ticket_id, *(v for k in keys for v in k))),
                         write=False)
        payload = next((bytes(r[0]) for r in rows if r[0] is not None), None)
        found = {(r[1], r[2]): float(r[3]) for r in rows if r[0] is None}
        return payload, [found.get(key, 0.0) for key in keys]

    def _add(self, tx: Tx, contract_id: str, period_key: str, amount: float,
             cap: float) -> float | None:
        """Add `amount` unless that passes `cap`; the period's new usage, or None if refused."""
        tx.run(
            "INSERT INTO usage_counters (contract_id, period_key, used) VALUES (?, ?, 0) "
            "ON CONFLICT (contract_id, period_key) DO NOTHING",
            (contract_id, period_key),
        )
        row = tx.one(
            "UPDATE usage_counters SET used = used + ? "
            "WHERE contract_id = ? AND period_key = ? AND used + ? <= ? RETURNING used",
            (amount, contract_id, period_key, amount, cap),
        )
        return float(row[0]) if row else None

    def admit(
        self, ticket_id: str, contract_id: str, period_key: str, *, amount: float,
        limit: float | None, allow_over: bool, answer: Callable[[float], bytes], at: datetime,
        on_commit_alerts: AlertHook | None = None,
        clock: NewClock | None = None,  # SLA clocks: the row created with the admission
    ) -> AdmitResult:
        """Count a ticket once: a known ticket is a duplicate, a full period is refused.

        `answer(used)` is the decision to keep for retries, given the period's usage once
        this ticket is counted (known only inside the transaction, under the row lock).
        `clock`, when given, is the ticket's SLA clock row, inserted in the same transaction.
        Concurrent admissions of this process share a transaction (group commit).
        """
        cap = math.inf if limit is None or allow_over else limit + EPSILON
        return self._group_commit().submit(_Admission(  # type: ignore[return-value]
            ticket_id, contract_id, period_key, amount, cap, answer, at, on_commit_alerts, clock
        ))

    # -- writes in groups: one transaction, one commit for every admission and event queued --
    def _group_commit(self) -> GroupCommit[_Admission | EventsCall, object]:
        group = getattr(self, "_admissions", None)
        if group is None:
            with _GROUP_GUARD:
                group = getattr(self, "_admissions", None)
                if group is None:
                    group = self._admissions = GroupCommit(self._commit_batch)
        return group

    def _commit_batch(self, batch: Sequence[_Admission | EventsCall]) -> list[object]:
        """`batch` in one transaction; if the database refused a value (ValueNotStorable),
        each call alone, so that only the one carrying it fails."""
        try:
            return self._commit_group(batch)
        except ValueNotStorable:
            if len(batch) == 1:
                raise
        results: list[object] = []
        for item in batch:
            try:
                results += self._commit_group([item])
            except ValueNotStorable as exc:
                results.append(exc)
        return results

    def _commit_group(self, batch: Sequence[_Admission | EventsCall]) -> list[object]:
        """One transaction for `batch`, run again if another process admitted one of its
        tickets meanwhile (PostgreSQL replicas: the row lock did not cover that ticket)."""
        for _ in range(ATTEMPTS):
            try:
                return self._run(lambda tx: self._commit_in(tx, batch), pipeline=True)
            except _TicketRace:
                continue
        raise StoreUnavailable(f"{self.backend} store busy: tickets admitted concurrently")

    def _commit_in(self, tx: Tx, batch: Sequence[_Admission | EventsCall]) -> list[object]:
        """Admissions first (a clock row they create is there for events of the same group),
        then ticket events (store/clocks.py); each call's result in its place."""
        admissions = [(i, x) for i, x in enumerate(batch) if isinstance(x, _Admission)]
        events = [(i, x) for i, x in enumerate(batch) if isinstance(x, EventsCall)]
        results: list[object] = [None] * len(batch)
        if admissions:
            for (i, _), result in zip(admissions, self._admit_in(tx, [x for _, x in admissions]),
                                      strict=True):
                results[i] = result
        if events:
            for (i, _), result in zip(events, self._record_in(tx, [x for _, x in events]),
                                      strict=True):
                results[i] = result
        return results

    def _admit_in(self, tx: Tx, batch: Sequence[_Admission]) -> list[AdmitResult | Exception]:
        """Each admission in order, as if alone; one that raises fails alone.

        The counters are locked first, so the ticket check after them sees every admission
        committed before ours on the same counters; the decisions (payloads) and alerts are
        computed in Python from the locked values, then written once.
        """
        counting = sorted({(a.contract_id, a.period_key) for a in batch if a.amount})
        used = self._lock_counters(tx, counting)
        reading = [(a.contract_id, a.period_key) for a in batch if not a.amount]
        used.update(self._counters(tx, [k for k in dict.fromkeys(reading) if k not in used]))
        known = self._admitted_payloads(tx, list(dict.fromkeys(a.ticket_id for a in batch)))
        results: list[AdmitResult | Exception] = []
        rows: list[tuple] = []
        alerts: list[tuple[list[NewAlert], datetime]] = []
        clocks: list[NewClock] = []
        changed: dict[tuple[str, str], float] = {}
        for a in batch:
            if a.ticket_id in known:
                results.append(AdmitResult("duplicate", known[a.ticket_id]))
                continue
            key = (a.contract_id, a.period_key)
            before = used.get(key, 0.0)
            after = before + a.amount
            if a.amount and not after <= a.cap:
                results.append(AdmitResult("exhausted"))
                continue
            try:
                payload = a.answer(after)
                new = (list(a.hook(UsageChange(*key, before, after, a.at)))
                       if a.amount and a.hook is not None else [])
            except Exception as exc:  # this admission's own failure: it alone is not counted
                results.append(exc)
                continue
            if a.amount:
                used[key] = changed[key] = after
            known[a.ticket_id] = payload
            rows.append((a.ticket_id, a.contract_id, a.period_key, a.amount, payload,
                         to_text(a.at)))
            if new:
                alerts.append((new, a.at))
            if a.clock is not None:
                clocks.append(a.clock)
            results.append(AdmitResult("admitted", payload, after))
        if rows:
            inserted = tx.all(
                "INSERT INTO ticket_admissions "
                "(ticket_id, contract_id, period_key, amount, payload, admitted_at) VALUES "
                + ", ".join(["(?, ?, ?, ?, ?, ?)"] * len(rows))
                + " ON CONFLICT (ticket_id) DO NOTHING RETURNING ticket_id",
                tuple(v for row in rows for v in row),
            )
            if len(inserted) != len(rows):
                raise _TicketRace()
        for (contract_id, period_key), after in changed.items():
            tx.run(
                "UPDATE usage_counters SET used = ? WHERE contract_id = ? AND period_key = ?",
                (after, contract_id, period_key),
            )
        for clock in clocks:  # SLA clocks: committed with their admissions
            self._insert_clock(tx, clock)
        for new, at in alerts:
            self._append(tx, new, at)
        return results

    def _lock_counters(self, tx: Tx, keys: Sequence[tuple[str, str]]) -> dict:
        """Create missing counters and lock them (in key order: no deadlocks); their usage."""
        if not keys:
            return {}
        rows = tx.all(
            "INSERT INTO usage_counters (contract_id, period_key, used) VALUES "
            + ", ".join(["(?, ?, 0)"] * len(keys))
            + " ON CONFLICT (contract_id, period_key) DO UPDATE SET used = usage_counters.used "
            "RETURNING contract_id, period_key, used",
            tuple(v for key in keys for v in key),
        )
        return {(cid, key): float(u) for cid, key, u in rows}

    def _counters(self, tx: Tx, keys: Sequence[tuple[str, str]]) -> dict:
        """Usage of existing counters, without creating or locking any."""
        if not keys:
            return {}
        match = " OR ".join(["(contract_id = ? AND period_key = ?)"] * len(keys))
        rows = tx.all(
            f"SELECT contract_id, period_key, used FROM usage_counters WHERE {match}",
            tuple(v for key in keys for v in key),
        )
        return {(cid, key): float(u) for cid, key, u in rows}

    def _admitted_payloads(self, tx: Tx, ticket_ids: Sequence[str]) -> dict[str, bytes]:
        rows = tx.all(
            "SELECT ticket_id, payload FROM ticket_admissions WHERE ticket_id IN ("
            + ", ".join("?" * len(ticket_ids)) + ")",
            tuple(ticket_ids),
        )
        return {tid: bytes(payload) for tid, payload in rows}

    def record(
        self, key: str, *, ticket_id: str, contract_id: str, period_key: str, amount: float,
        unit: str, at: datetime, on_commit_alerts: AlertHook | None = None,
        now: datetime | None = None, at_sent: bool = True,
    ) -> RecordResult:
        """Logged hours or days, once per key; a key reused with other data conflicts.

        `at` is when the work was done (it picks the period); `now`, when given, is the
        server time the record's alerts are emitted at (default: `at`). `at_sent` says the
        caller gave `at`: it is then part of what a retry must repeat; otherwise `at` is the
        server time of the first try and a retry's differs.
        """
        same = [ticket_id, contract_id, round(amount, 9), unit] + ([to_text(at)] if at_sent else [])
        fingerprint = json.dumps(same)

        def work(tx: Tx) -> RecordResult:
            inserted = tx.one(
                "INSERT INTO usage_records (idempotency_key, fingerprint, ticket_id, contract_id, "
                "period_key, amount, unit, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (idempotency_key) DO NOTHING RETURNING idempotency_key",
                (key, fingerprint, ticket_id, contract_id, period_key, amount, unit, to_text(at)),
            )
            if inserted is None:
                row = tx.one(
                    "SELECT fingerprint FROM usage_records WHERE idempotency_key = ?", (key,)
                )
                return RecordResult("duplicate" if row and row[0] == fingerprint else "conflict")
            after = self._add(tx, contract_id, period_key, amount, math.inf)
            assert after is not None
            self._emit(tx, on_commit_alerts, UsageChange(
                contract_id, period_key, after - amount, after, at
            ), now)
            return RecordResult("recorded")

        return self._run(work)

    def release(self, ticket_id: str, *, reason: str, at: datetime) -> dict[str, float]:
        """Give back a ticket's unreleased usage; the amounts released now, per contract."""

        def work(tx: Tx) -> dict[str, float]:
            rows = []
            for table in ("ticket_admissions", "usage_records"):
                rows += tx.all(
                    f"UPDATE {table} SET released_at = ?, release_reason = ? "
                    "WHERE ticket_id = ? AND released_at IS NULL "
                    "RETURNING contract_id, period_key, amount",
                    (to_text(at), reason, ticket_id),
                )
            released: dict[str, float] = {}
            for contract_id, period_key, amount in rows:
                if not amount:
                    continue
                tx.run(
                    "UPDATE usage_counters SET used = CASE WHEN used - ? < ? THEN 0 "
                    "ELSE used - ? END WHERE contract_id = ? AND period_key = ?",
                    (amount, EPSILON, amount, contract_id, period_key),
                )
                released[contract_id] = released.get(contract_id, 0.0) + float(amount)
            self._cancel_clock(tx, ticket_id, at)  # its SLA clocks end with it
            return released

        return self._run(work)

    # -- alerts ---------------------------------------------------------------------------
    def _emit(self, tx: Tx, hook: AlertHook | None, change: UsageChange,
              emitted_at: datetime | None = None) -> None:
        if hook is not None:
            alerts = list(hook(change))
            if alerts:
                self._append(tx, alerts, emitted_at or change.at)

    def _append(self, tx: Tx, alerts: Iterable[NewAlert], emitted_at: datetime) -> list[int]:
        """Insert alerts whose key was never emitted, in order; their new cursors.

        Two statements per chunk of alerts whatever their number (a sweep appends a
        thousand at once): the keys that are new, then those alerts."""
        self._lock_alert_log(tx)
        batch, seen = [], set()
        for a in alerts:  # a key given twice: its first alert
            if a.dedupe_key not in seen:
                seen.add(a.dedupe_key)
                batch.append(a)
        cursors: list[int] = []
        for i in range(0, len(batch), APPEND_CHUNK):
            chunk = batch[i: i + APPEND_CHUNK]
            fresh = {r[0] for r in tx.all(
                "INSERT INTO alert_keys (dedupe_key, emitted_at) VALUES "
                + ", ".join(["(?, ?)"] * len(chunk))
                + " ON CONFLICT (dedupe_key) DO NOTHING RETURNING dedupe_key",
                tuple(v for a in chunk for v in (a.dedupe_key, to_text(emitted_at))),
            )}
            new = [a for a in chunk if a.dedupe_key in fresh]
            if not new:
                continue
            rows = tx.all(
                "INSERT INTO alerts (dedupe_key, kind, contract_id, customer_id, plan_id, "
                "threshold, period_key, occurred_at, emitted_at, body) VALUES "
                + ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"] * len(new))
                + " RETURNING cursor",
                tuple(v for a in new for v in (
                    a.dedupe_key, a.kind, a.contract_id, a.customer_id, a.plan_id, a.threshold,
                    a.period_key, to_text(a.occurred_at), to_text(emitted_at),
                    json.dumps(a.body, sort_keys=True))),
            )
            cursors += sorted(int(r[0]) for r in rows)
            tx.emitted_kinds = [*getattr(tx, "emitted_kinds", ()), *(a.kind for a in new)]
        return cursors

    def append_alerts(self, alerts: Iterable[NewAlert], emitted_at: datetime) -> list[int]:
        """Alerts not tied to usage (the sweeper's), in their own transaction."""
        batch = list(alerts)
        if not batch:
            return []
        return self._run(lambda tx: self._append(tx, batch, emitted_at))

    def alerts(self, query: AlertQuery) -> tuple[list[StoredAlert], int, bool]:
        """Alerts after a cursor: the page, the cursor to resume after, and whether more match."""

        def work(tx: Tx) -> tuple[list[StoredAlert], int, bool]:
            top = tx.one("SELECT MAX(cursor) FROM alerts")
            latest = int(top[0]) if top and top[0] is not None else 0
            where, params = _alert_filter(query)
            where += ["cursor > ?", "cursor <= ?"]
            params += [query.after_cursor, latest]
            rows = tx.all(
                f"SELECT {_ALERT_COLUMNS} FROM alerts "
                f"WHERE {' AND '.join(where)} ORDER BY cursor LIMIT ?",
                (*params, query.limit + 1),
            )
            more = len(rows) > query.limit
            page = [_alert(r) for r in rows[: query.limit]]
            resume = page[-1].cursor if more else max(latest, query.after_cursor)
            return page, resume, more

        return self._run(work, write=False)

    def recent_alerts(self, query: AlertQuery, before_cursor: int = 0) -> list[StoredAlert]:
        """Up to `query.limit` alerts newest first, before `before_cursor` (0: the newest)."""
        where, params = _alert_filter(query)
        if before_cursor:
            where.append("cursor < ?")
            params.append(before_cursor)
        rows = self._run(lambda tx: tx.all(
            f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE {' AND '.join(where) or 'TRUE'} "
            "ORDER BY cursor DESC LIMIT ?",
            (*params, query.limit),
        ), write=False)
        return [_alert(r) for r in rows]

    def latest_cursor(self) -> int:
        row = self._read_one("SELECT MAX(cursor) FROM alerts")
        return int(row[0]) if row and row[0] is not None else 0

    def purge_alerts(self, emitted_before: datetime) -> int:
        """Retention: drop old alerts; their keys stay, so none is ever emitted again."""
        rows = self._run(lambda tx: tx.all(
            "DELETE FROM alerts WHERE emitted_at < ? RETURNING cursor", (to_text(emitted_before),)
        ))
        return len(rows)

    # -- coordination ---------------------------------------------------------------------
    def try_lease(self, name: str, holder: str, now: datetime, seconds: float) -> bool:
        """Take or renew a named lease; False while another holder's lease runs."""
        until = to_text(now + timedelta(seconds=seconds))
        row = self._run(lambda tx: tx.one(
            "INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, "
            "expires_at = excluded.expires_at "
            "WHERE leases.holder = excluded.holder OR leases.expires_at < ? RETURNING holder",
            (name, holder, until, to_text(now)),
        ))
        return row is not None

    def get_meta(self, key: str) -> str | None:
        row = self._read_one("SELECT value FROM meta WHERE key = ?", (key,))
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self._run(lambda tx: tx.run(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        ))

    # -- accepted bundles: the reload baseline every worker and replica shares ---------------
    def accepted_revision(self) -> str | None:
        """Revision of the newest accepted bundle (cheap: the bundle itself is not read)."""
        row = self._read_one("SELECT revision FROM policy_bundles ORDER BY seq DESC LIMIT 1")
        return None if row is None else row[0]

    def bundle_of(self, revision: str) -> bytes | None:
        """A recently accepted bundle (packed documents) by revision, None once dropped."""
        row = self._read_one(
            "SELECT bundle FROM policy_bundles WHERE revision = ? ORDER BY seq DESC LIMIT 1",
            (revision,),
        )
        return None if row is None else bytes(row[0])

    def accept_bundle(self, revision: str, bundle: bytes, at: datetime) -> None:
        """Make `revision` the newest accepted bundle; the few before it are kept for audit."""

        def work(tx: Tx) -> None:
            row = tx.one("SELECT revision FROM policy_bundles ORDER BY seq DESC LIMIT 1")
            if row is not None and row[0] == revision:
                return
            tx.run(
                "INSERT INTO policy_bundles (revision, bundle, accepted_at) VALUES (?, ?, ?)",
                (revision, bundle, to_text(at)),
            )
            tx.run(
                "DELETE FROM policy_bundles WHERE seq <= "
                "(SELECT MAX(seq) FROM policy_bundles) - ?",
                (KEPT_BUNDLES,),
            )

        self._run(work)

    # -- webhook delivery progress (entitle/server/webhooks): apart from the ledger above ----
    # A delivering worker holds the store lease "webhook:<id>"; every write below is also a
    # compare-and-set on the endpoint's cursor, so a worker whose lease ran out while it
    # waited on a receiver can neither move the cursor back nor count an alert twice.
    _PROGRESS_COLUMNS = (
        "endpoint_id, cursor, attempt_cursor, attempts, next_attempt_at, last_error, "
        "last_error_at, delivered, dead_letters, last_delivered_at"
    )

    def webhook_progress(
        self, endpoint_id: str, *, start_cursor: int, at: datetime
    ) -> WebhookProgress:
        """The endpoint's progress, created at `start_cursor` the first time it is asked for."""

        def work(tx: Tx) -> WebhookProgress:
            tx.run(
                "INSERT INTO webhook_endpoints (endpoint_id, cursor, created_at) VALUES (?, ?, ?) "
                "ON CONFLICT (endpoint_id) DO NOTHING",
                (endpoint_id, start_cursor, to_text(at)),
            )
            row = tx.one(
                f"SELECT {self._PROGRESS_COLUMNS} FROM webhook_endpoints WHERE endpoint_id = ?",
                (endpoint_id,),
            )
            assert row is not None
            return _progress(row)

        return self._run(work)

    def webhook_progress_of(self, endpoint_ids: Sequence[str]) -> dict[str, WebhookProgress]:
        """Progress of the endpoints that have any (health, metrics), by endpoint id."""
        if not endpoint_ids:
            return {}
        rows = self._run(lambda tx: tx.all(
            f"SELECT {self._PROGRESS_COLUMNS} FROM webhook_endpoints "
            f"WHERE endpoint_id IN ({', '.join('?' for _ in endpoint_ids)})",
            tuple(endpoint_ids),
        ), write=False)
        return {row[0]: _progress(row) for row in rows}

    def webhook_advance(
        self, endpoint_id: str, from_cursor: int, to_cursor: int, *, delivered: bool,
        at: datetime,
    ) -> bool:
        """Move the cursor past a delivered alert (or alerts the filter skips); False if it
        was no longer at `from_cursor` (another holder moved it)."""
        done = ", delivered = delivered + 1, last_delivered_at = ?" if delivered else ""
        params = (to_cursor, *((to_text(at),) if delivered else ()), endpoint_id, from_cursor)
        row = self._run(lambda tx: tx.one(
            "UPDATE webhook_endpoints SET cursor = ?, attempt_cursor = 0, attempts = 0, "
            f"next_attempt_at = NULL{done} WHERE endpoint_id = ? AND cursor = ? "
            "RETURNING endpoint_id",
            params,
        ))
        return row is not None

    def webhook_failed(
        self, endpoint_id: str, cursor: int, alert_cursor: int, *, attempts: int, error: str,
        at: datetime, next_attempt_at: datetime,
    ) -> bool:
        """A failed attempt at the alert after `cursor`, and when to try it again."""
        row = self._run(lambda tx: tx.one(
            "UPDATE webhook_endpoints SET attempt_cursor = ?, attempts = ?, next_attempt_at = ?, "
            "last_error = ?, last_error_at = ? WHERE endpoint_id = ? AND cursor = ? "
            "RETURNING endpoint_id",
            (alert_cursor, attempts, to_text(next_attempt_at), error, to_text(at), endpoint_id,
             cursor),
        ))
        return row is not None

    def webhook_dead_letter(
        self, endpoint_id: str, from_cursor: int, alert_cursor: int, *, attempts: int,
        error: str, body: str, at: datetime,
    ) -> bool:
        """Give up on an alert: keep it as a dead letter and move the cursor past it, at once."""

        def work(tx: Tx) -> bool:
            row = tx.one(
                "UPDATE webhook_endpoints SET cursor = ?, attempt_cursor = 0, attempts = 0, "
                "next_attempt_at = NULL, dead_letters = dead_letters + 1, last_error = ?, "
                "last_error_at = ? WHERE endpoint_id = ? AND cursor = ? RETURNING endpoint_id",
                (alert_cursor, error, to_text(at), endpoint_id, from_cursor),
            )
            if row is None:
                return False
            tx.run(
                "INSERT INTO webhook_dead_letters (endpoint_id, cursor, attempts, last_error, "
                "dead_at, body) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (endpoint_id, cursor) DO NOTHING",
                (endpoint_id, alert_cursor, attempts, error, to_text(at), body),
            )
            return True

        return self._run(work)

    def webhook_dead_letters(self, endpoint_id: str, limit: int = 100) -> list[DeadLetter]:
        """An endpoint's dead letters, oldest first."""
        rows = self._run(lambda tx: tx.all(
            "SELECT endpoint_id, cursor, attempts, last_error, dead_at, body "
            "FROM webhook_dead_letters WHERE endpoint_id = ? ORDER BY cursor LIMIT ?",
            (endpoint_id, limit),
        ), write=False)
        return [
            DeadLetter(r[0], int(r[1]), int(r[2]), r[3], from_text(r[4]), r[5]) for r in rows
        ]


_ALERT_COLUMNS = (
    "cursor, dedupe_key, kind, contract_id, customer_id, plan_id, occurred_at, emitted_at, "
    "threshold, period_key, body"
)


def _alert_filter(query: AlertQuery) -> tuple[list[str], list]:
    """The WHERE terms and parameters of a query's kind, customer and contract filters."""
    where: list[str] = []
    params: list = []
    if query.kinds:
        where.append(f"kind IN ({', '.join('?' for _ in query.kinds)})")
        params += list(query.kinds)
    for column in ("customer_id", "contract_id"):
        if getattr(query, column):
            where.append(f"{column} = ?")
            params.append(getattr(query, column))
    return where, params


def _alert(row: tuple) -> StoredAlert:
    (cursor, key, kind, contract_id, customer_id, plan_id, occurred, emitted, threshold,
     period_key, body) = row
    return StoredAlert(
        int(cursor), key, kind, contract_id, customer_id, plan_id, from_text(occurred),
        from_text(emitted), int(threshold), period_key, json.loads(body),
    )



def _progress(row: tuple) -> WebhookProgress:
    (endpoint_id, cursor, attempt_cursor, attempts, next_at, error, error_at, delivered, dead,
     delivered_at) = row

    def instant(text: str | None) -> datetime | None:
        return None if text is None else from_text(text)

    return WebhookProgress(
        endpoint_id, int(cursor), int(attempt_cursor), int(attempts), instant(next_at), error,
        instant(error_at), int(delivered), int(dead), instant(delivered_at),
    )
