"""Live tickets' SLA clocks in the ledger: their events, pinned terms and next-alert instant.

A clock row is created with the ticket's admission, in its transaction (admit(clock=...)),
so a ticket that never gets an event still warns and breaches. Events are kept once per
(ticket_id, event_id); a ticket keeps at most `max_events` of them. Nothing is counted:
the caller's `assess` derives the clocks from the events (the engine) inside the
transaction that recorded them, and returns the next-alert instant and the alerts to
append; the sweeper reads only rows whose indexed next_alert_at has come.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING

from entitle.server.store.base import NewAlert, from_text, to_text

if TYPE_CHECKING:
    from entitle.server.store.sql import Tx

CLOCK_COLUMNS = (
    "ticket_id, contract_id, customer_id, plan_id, product, terms_id, created_at, priority, "
    "event_count, version, next_alert_at, alerted, cancelled_at"
)
EVENT_COLUMNS = "ticket_id, event_id, type, at, status, priority"
SWEEP_CHUNK = 500  # clock rows per UPDATE statement of a sweep (4 parameters each)
EVENT_CHUNK = 100  # events per INSERT statement (8 parameters each)


class TicketReleased(RuntimeError):
    """The ticket's usage was released (deleted, merged): its clocks ended, no more events."""

    def __init__(self, ticket_id: str, at: datetime):
        super().__init__(
            f"ticket {ticket_id!r} was released at {at.isoformat()}: its SLA clocks are "
            "cancelled and it takes no more events")


class TicketHistoryFull(RuntimeError):
    """Recording the events would keep more than the per-ticket limit (nothing was recorded)."""

    def __init__(self, ticket_id: str, limit: int, kept: int, adding: int):
        self.limit = limit
        super().__init__(
            f"ticket {ticket_id!r} keeps at most {limit} events; it has {kept} and these "
            f"would add {adding}")


@dataclass(frozen=True)
class NewClock:
    """The clock row an admission creates: who it is for and the terms pinned for it."""

    ticket_id: str
    contract_id: str
    customer_id: str
    plan_id: str
    product: str
    terms_id: str
    created_at: datetime
    priority: str  # at creation; priority_changed events change it
    next_alert_at: datetime | None


@dataclass(frozen=True)
class StoredEvent:
    """One recorded event, as the ledger keeps it."""

    event_id: str
    type: str
    at: datetime
    status: str | None = None
    priority: str | None = None

    def same(self, other: StoredEvent) -> bool:
        return (self.type, self.at, self.status, self.priority) == (
            other.type, other.at, other.status, other.priority)


@dataclass(frozen=True)
class StoredClock:
    ticket_id: str
    contract_id: str
    customer_id: str
    plan_id: str
    product: str
    terms_id: str
    created_at: datetime
    priority: str
    event_count: int
    version: int
    next_alert_at: datetime | None
    alerted: frozenset[str]  # crossing keys already emitted (alert_keys is the guarantee)
    cancelled_at: datetime | None = None  # the ticket was released then: its clocks ended


@dataclass(frozen=True)
class ClockUpdate:
    """What `assess` concluded: when to look again, the alerts to append, what it saw."""

    next_alert_at: datetime | None
    alerts: Sequence[NewAlert] = ()
    alerted: frozenset[str] = frozenset()
    report: object = None  # the caller's own result (the clocks), handed back


@dataclass(frozen=True)
class EventOutcome:
    event_id: str
    duplicate: bool = False
    conflicting: bool = False  # a duplicate id whose first delivery differs (it stays)


@dataclass(frozen=True)
class EventsRecorded:
    clock: StoredClock  # as read under the row lock, before this call's events
    events: tuple[StoredEvent, ...]  # the ticket's events after the call, in delivery order
    outcomes: tuple[EventOutcome, ...]
    update: ClockUpdate
    appended: list[int] = field(default_factory=list)  # cursors of the alerts appended


Assess = Callable[[StoredClock, Sequence[StoredEvent]], ClockUpdate]


@dataclass(frozen=True)
class EventsCall:
    """One record_ticket_events() call waiting for its group's transaction."""

    ticket_id: str
    events: tuple[StoredEvent, ...]
    max_events: int
    now: datetime
    assess: Assess


def _merge(clock: StoredClock, kept: Sequence[StoredEvent], call: EventsCall
           ) -> tuple[tuple[StoredEvent, ...], list[StoredEvent], tuple[EventOutcome, ...]]:
    """(the history after the call, its new events, each event's outcome): a known id is a
    duplicate and its first delivery stays."""
    known = {e.event_id: e for e in kept}
    outcomes, fresh = [], []
    for e in call.events:
        first = known.get(e.event_id)
        if first is None:
            known[e.event_id] = e
            fresh.append(e)
            outcomes.append(EventOutcome(e.event_id))
        else:
            outcomes.append(EventOutcome(e.event_id, True, not first.same(e)))
    if len(kept) + len(fresh) > call.max_events:
        raise TicketHistoryFull(clock.ticket_id, call.max_events, len(kept), len(fresh))
    return (*kept, *fresh), fresh, tuple(outcomes)


def _clock(row: tuple) -> StoredClock:
    (ticket_id, contract_id, customer_id, plan_id, product, terms_id, created, priority,
     count, version, next_at, alerted, cancelled) = row
    return StoredClock(
        ticket_id, contract_id, customer_id, plan_id, product, terms_id, from_text(created),
        priority, int(count), int(version), from_text(next_at) if next_at else None,
        frozenset(json.loads(alerted)) if alerted else frozenset(),
        from_text(cancelled) if cancelled else None,
    )


def _event(row: tuple) -> StoredEvent:
    _, event_id, kind, at, status, priority = row
    return StoredEvent(event_id, kind, from_text(at), status, priority)


def _with_events(tx: Tx, clocks: list[StoredClock]
                 ) -> list[tuple[StoredClock, list[StoredEvent]]]:
    """Each clock with its events (delivery order), read in one statement."""
    events: dict[str, list[StoredEvent]] = {c.ticket_id: [] for c in clocks}
    if clocks:
        marks = ", ".join("?" * len(clocks))
        for r in tx.all(f"SELECT {EVENT_COLUMNS} FROM ticket_events WHERE ticket_id "
                        f"IN ({marks}) ORDER BY ticket_id, seq", tuple(events)):
            events[r[0]].append(_event(r))
    return [(c, events[c.ticket_id]) for c in clocks]


def _alerted(keys: frozenset[str]) -> str:
    return json.dumps(sorted(keys)) if keys else ""


def _at(value: datetime | None) -> str | None:
    return None if value is None else to_text(value)


class ClockLedger:
    """SqlStore's SLA-clock methods (same SQL on SQLite and PostgreSQL)."""

    # -- pinned terms: shared by every ticket admitted under the same SLA rule and revision --
    def put_terms(self, terms_id: str, terms_json: str, at: datetime) -> None:
        """Keep a terms document once (its id is its content hash)."""
        self._run(lambda tx: tx.run(
            "INSERT INTO sla_terms (terms_id, terms, stored_at) VALUES (?, ?, ?) "
            "ON CONFLICT (terms_id) DO NOTHING",
            (terms_id, terms_json, to_text(at)),
        ))

    def terms(self, terms_id: str) -> str | None:
        row = self._read_one("SELECT terms FROM sla_terms WHERE terms_id = ?", (terms_id,))
        return None if row is None else row[0]

    # -- the clock row, created by admit() in the admission's transaction ----------------------
    def _insert_clock(self, tx: Tx, clock: NewClock) -> None:
        tx.run(
            "INSERT INTO ticket_clocks (ticket_id, contract_id, customer_id, plan_id, product, "
            "terms_id, created_at, priority, event_count, version, next_alert_at, alerted, "
            "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, 0, ?, '', ?) "
            "ON CONFLICT (ticket_id) DO NOTHING",
            (clock.ticket_id, clock.contract_id, clock.customer_id, clock.plan_id,
             clock.product, clock.terms_id, to_text(clock.created_at), clock.priority,
             _at(clock.next_alert_at), to_text(clock.created_at)),
        )

    # -- reads ----------------------------------------------------------------------------
    def ticket_clock(self, ticket_id: str) -> tuple[StoredClock, list[StoredEvent]] | None:
        """A ticket's clock row and its events (delivery order); None without a clock."""

        def work(tx: Tx):
            row = tx.one(f"SELECT {CLOCK_COLUMNS} FROM ticket_clocks WHERE ticket_id = ?",
                         (ticket_id,))
            if row is None:
                return None
            rows = tx.all(f"SELECT {EVENT_COLUMNS} FROM ticket_events WHERE ticket_id = ? "
                          "ORDER BY seq", (ticket_id,))
            return _clock(row), [_event(r) for r in rows]

        return self._run(work, write=False)

    def due_clocks(self, now: datetime, limit: int
                   ) -> list[tuple[StoredClock, list[StoredEvent]]]:
        """Clocks whose next-alert instant has come (an index range scan), oldest first."""

        def work(tx: Tx):
            rows = tx.all(
                f"SELECT {CLOCK_COLUMNS} FROM ticket_clocks "
                "WHERE next_alert_at IS NOT NULL AND next_alert_at <= ? "
                "ORDER BY next_alert_at LIMIT ?",
                (to_text(now), limit),
            )
            return _with_events(tx, [_clock(r) for r in rows])

        return self._run(work, write=False)

    def clocks_page(self, *, quiet: bool, limit: int
                    ) -> list[tuple[StoredClock, list[StoredEvent]]]:
        """The dashboard's SLA page: clocks with a next alert, soonest first, or `quiet` ones
        (every clock paused or stopped), most recently changed first; index scans both."""
        if quiet:
            sql = (f"SELECT {CLOCK_COLUMNS} FROM ticket_clocks WHERE next_alert_at IS NULL "
                   "ORDER BY updated_at DESC LIMIT ?")
        else:
            sql = (f"SELECT {CLOCK_COLUMNS} FROM ticket_clocks WHERE next_alert_at IS NOT NULL "
                   "ORDER BY next_alert_at LIMIT ?")
        return self._run(lambda tx: _with_events(tx, [_clock(r) for r in tx.all(sql, (limit,))]),
                         write=False)

    # -- writes ---------------------------------------------------------------------------
    def record_ticket_events(
        self, ticket_id: str, events: Sequence[StoredEvent], *, max_events: int,
        now: datetime, assess: Assess,
    ) -> EventsRecorded | None:
        """Add a ticket's new events (a known id is a duplicate: the first delivery wins),
        then store what `assess` derives from all of them; None when the ticket has no clock.

        Concurrent calls of this process share one transaction with each other and with
        admissions (group commit, store/sql.py); the clock rows are locked first, so calls for
        one ticket (any process or replica) apply one after the other, each assessing the
        full history.
        """
        return self._group_commit().submit(  # type: ignore[attr-defined]
            EventsCall(ticket_id, tuple(events), max_events, now, assess))

    def _record_in(self, tx: Tx, calls: Sequence[EventsCall]
                   ) -> list[EventsRecorded | Exception | None]:
        """A group's event calls: the clock rows locked (ticket order: no deadlocks) and their
        events read, in one round trip when pipelined; each call assessed in order on what the
        ones before it left (two calls for one ticket see each other); then every write at
        once. A call that fails (history full, a broken assessment) fails alone."""
        ids = sorted({c.ticket_id for c in calls})
        marks = ", ".join("?" * len(ids))
        read = tx.many([
            *((f"SELECT {CLOCK_COLUMNS} FROM ticket_clocks WHERE ticket_id = ?"
               f"{self.lock_rows}", (tid,)) for tid in ids),  # type: ignore[attr-defined]
            (f"SELECT {EVENT_COLUMNS} FROM ticket_events WHERE ticket_id IN ({marks}) "
             "ORDER BY ticket_id, seq", tuple(ids)),
        ])
        clocks = {rows[0][0]: _clock(rows[0]) for rows in read[:-1] if rows}
        kept: dict[str, list[StoredEvent]] = {tid: [] for tid in clocks}
        for r in read[-1]:
            if r[0] in kept:
                kept[r[0]].append(_event(r))
        results: list[EventsRecorded | Exception | None] = []
        rows: list[tuple] = []
        updates: dict[str, tuple] = {}
        alerting: list[tuple[int, ClockUpdate, datetime]] = []
        for call in calls:
            clock = clocks.get(call.ticket_id)
            if clock is None:
                results.append(None)
                continue
            try:
                if clock.cancelled_at is not None:
                    raise TicketReleased(clock.ticket_id, clock.cancelled_at)
                history, fresh, outcomes = _merge(clock, kept[call.ticket_id], call)
                update = call.assess(clock, history)
            except Exception as exc:  # this call's own failure: nothing of it is written
                results.append(exc)
                continue
            rows += [(call.ticket_id, e.event_id, seq, e.type, to_text(e.at), e.status,
                      e.priority, to_text(call.now))
                     for seq, e in enumerate(fresh, start=len(kept[call.ticket_id]))]
            kept[call.ticket_id] = list(history)
            clocks[call.ticket_id] = replace(
                clock, event_count=len(history), next_alert_at=update.next_alert_at,
                alerted=update.alerted)
            updates[call.ticket_id] = (len(history), _at(update.next_alert_at),
                                       _alerted(update.alerted), to_text(call.now),
                                       call.ticket_id)
            if update.alerts:
                alerting.append((len(results), update, call.now))
            results.append(EventsRecorded(clock, history, outcomes, update))
        for i in range(0, len(rows), EVENT_CHUNK):
            chunk = rows[i: i + EVENT_CHUNK]
            tx.run("INSERT INTO ticket_events (ticket_id, event_id, seq, type, at, status, "
                   "priority, recorded_at) VALUES "
                   + ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?)"] * len(chunk)),
                   tuple(v for row in chunk for v in row))
        for params in updates.values():
            tx.run("UPDATE ticket_clocks SET event_count = ?, next_alert_at = ?, alerted = ?, "
                   "updated_at = ?, version = version + 1 WHERE ticket_id = ?", params)
        for i, update, now in alerting:  # alerts committed with the state that caused them
            recorded = results[i]
            assert isinstance(recorded, EventsRecorded)
            recorded.appended.extend(self._append(tx, update.alerts, now))  # type: ignore[attr-defined]
        return results

    def _cancel_clock(self, tx: Tx, ticket_id: str, at: datetime) -> None:
        """A released ticket's clocks end (in the release's transaction): none is due again,
        and a sweep that assessed it before (its version moved) changes nothing."""
        tx.run("UPDATE ticket_clocks SET cancelled_at = ?, next_alert_at = NULL, "
               "version = version + 1, updated_at = ? WHERE ticket_id = ? "
               "AND cancelled_at IS NULL", (to_text(at), to_text(at), ticket_id))

    def apply_sweep(self, updates: Sequence[tuple[StoredClock, ClockUpdate]],
                    now: datetime) -> int:
        """The sweeper's conclusions, in one transaction; a clock whose events changed since
        it was read (its version moved) is left alone: that call assessed it already.
        Returns the number of alerts appended."""

        def work(tx: Tx) -> int:
            by_id = {clock.ticket_id: (clock, update) for clock, update in updates}
            rows = list(by_id.values())
            kept: set[str] = set()
            for i in range(0, len(rows), SWEEP_CHUNK):  # one statement per chunk of rows
                chunk = rows[i: i + SWEEP_CHUNK]
                kept.update(r[0] for r in tx.all(
                    "UPDATE ticket_clocks SET next_alert_at = v.column3, alerted = v.column4, "
                    "updated_at = ? FROM (VALUES "
                    + ", ".join(["(?, ?, ?, ?)"] * len(chunk))
                    + ") AS v WHERE ticket_clocks.ticket_id = v.column1 "
                    "AND ticket_clocks.version = v.column2 RETURNING ticket_clocks.ticket_id",
                    (to_text(now), *(v for clock, update in chunk for v in (
                        clock.ticket_id, clock.version, _at(update.next_alert_at),
                        _alerted(update.alerted)))),
                ))
            alerts = sorted((a for tid in kept for a in by_id[tid][1].alerts),
                            key=lambda a: a.occurred_at)
            return len(self._append(tx, alerts, now)) if alerts else 0

        return self._run(work)
