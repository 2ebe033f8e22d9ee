"""Live tickets' SLA clocks at run time: terms pinned at admission, assessments, the sweeper.

- `SlaClocks.new_clock` gives admit() the clock row of a covered ticket: the terms of the
  SLA rule chosen (every priority's targets, calendars, pause statuses, warn_at) are pinned
  by content hash in `sla_terms`, so a reload never changes a live ticket's clocks; a
  priority change picks the new priority's targets from the same pinned terms.
- `SlaClocks.assess` derives a ticket's clocks from its recorded events (engine/clocks.py,
  the same computation as `entitle check`), the alerts of thresholds crossed and not yet
  emitted (each at its true instant), and when to look again: the next crossing if nothing
  else happens, or the next recorded event still in the future. Paused and stopped clocks
  have no next crossing, so they cost the sweeper nothing until an event resumes them.
- `SlaSweeper` assesses, under the store lease "sla-sweeper" (one replica at a time), only
  the clocks whose indexed next_alert_at has come, in batches of one transaction.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from entitle.engine.alerts import TicketParty, recipients, sla_alerts, sla_crossing_key
from entitle.engine.clocks import ClockReport, ClockTerms, History, evaluate, terms_for
from entitle.engine.decide import Decision
from entitle.engine.snapshot import Snapshot
from entitle.engine.ticket import Ticket, TicketEvent
from entitle.server.alerts import AlertBus, Sweeper, new_alert
from entitle.server.logs import get_logger
from entitle.server.snapshots import NoPolicyLoaded, SnapshotHolder
from entitle.server.store.clocks import ClockUpdate, NewClock, StoredClock, StoredEvent

MAX_TICKET_EVENTS = 1000  # events one ticket keeps; more are refused (FAILED_PRECONDITION)
MAX_EVENTS_PER_CALL = 100  # events in one RecordTicketEvents request
SLA_SWEEPER_LEASE = "sla-sweeper"
DEFAULT_SLA_SWEEP_INTERVAL = 5.0  # seconds: how late, at most, a crossing is noticed
SLA_SWEEP_BATCH = 1000  # clocks assessed per transaction
MAX_SWEEP_BATCHES = 100  # per sweep; the rest waits for the next one
RETRY_BROKEN = timedelta(hours=1)  # a clock that cannot be assessed is tried again after


@dataclass(frozen=True)
class Assessment:
    """A ticket's clocks at one instant, with the stored row they were derived from."""

    clock: StoredClock
    terms: ClockTerms
    report: ClockReport
    priority: str  # now, after priority changes


def terms_json(terms: ClockTerms) -> tuple[str, str]:
    """(content hash, canonical JSON) of pinned terms."""
    text = json.dumps(terms.to_json(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32], text


def to_engine(events: Sequence[StoredEvent]) -> tuple[TicketEvent, ...]:
    return tuple(TicketEvent(e.event_id, e.type, e.at, e.status, e.priority) for e in events)


def to_stored(events: Sequence[TicketEvent]) -> list[StoredEvent]:
    return [StoredEvent(e.id, e.type, e.at, e.status, e.priority) for e in events]


class SlaClocks:
    """One worker's clock terms (cached by id: they never change) and assessments."""

    def __init__(self, store, holder: SnapshotHolder):
        self.store = store
        self.holder = holder
        self._pinned: dict[tuple[str, str, str | None], str] = {}  # (revision, sla, rule)
        self._terms: dict[str, ClockTerms] = {}
        self._guard = threading.Lock()

    # -- admission -------------------------------------------------------------------------
    def pin(self, snapshot: Snapshot, sla_id: str, rule_name: str | None, at: datetime) -> str:
        """The id of the terms of (revision, SLA, rule), stored once per process."""
        policy = snapshot.policy
        key = (policy.revision, sla_id, rule_name)
        terms_id = self._pinned.get(key)
        if terms_id is not None:
            return terms_id
        sla = policy.slas[sla_id]
        rule = next((r for r in sla.rules if r.name == rule_name), None) if rule_name else None
        terms = terms_for(policy, sla, rule)
        terms_id, text = terms_json(terms)
        self.store.put_terms(terms_id, text, at)  # before the admission that refers to it
        with self._guard:
            self._terms[terms_id] = terms
            self._pinned[key] = terms_id
        return terms_id

    def new_clock(self, snapshot: Snapshot, decision: Decision, ticket: Ticket,
                  now: datetime) -> NewClock | None:
        """The clock row admitting `ticket` on `decision` creates; None without an SLA."""
        if not decision.covered or not decision.sla_id or decision.contract_id is None:
            return None
        terms_id = self.pin(snapshot, decision.sla_id, decision.sla_rule, now)
        contract = snapshot.policy.contracts[decision.contract_id]
        # Due at once: the next sweep replays the clocks and stores their real next-alert
        # instant (emitting what a ticket admitted late already crossed), so an admission,
        # the hot path, writes this one row and replays nothing more than its decision.
        return NewClock(
            ticket_id=ticket.ticket_id, contract_id=contract.id,
            customer_id=contract.customer, plan_id=contract.plan_id, product=ticket.product,
            terms_id=terms_id, created_at=ticket.created_at, priority=ticket.priority,
            next_alert_at=ticket.created_at,
        )

    # -- assessment -----------------------------------------------------------------------
    def terms_of(self, terms_id: str) -> ClockTerms:
        terms = self._terms.get(terms_id)
        if terms is None:
            text = self.store.terms(terms_id)
            if text is None:
                raise LookupError(f"SLA terms {terms_id} are missing from the store")
            terms = ClockTerms.from_json(json.loads(text))
            with self._guard:
                self._terms[terms_id] = terms
        return terms

    def evaluate(self, clock: StoredClock, events: Sequence[StoredEvent],
                 at: datetime) -> Assessment:
        """The ticket's clocks at `at`, from its pinned terms and recorded events."""
        terms = self.terms_of(clock.terms_id)
        engine_events = to_engine(events)
        report = evaluate(terms, History(clock.created_at, clock.priority, engine_events,
                                         cancelled_at=clock.cancelled_at), at)
        priority = clock.priority
        for e in sorted((e for e in engine_events if e.at <= at and e.priority),
                        key=lambda e: e.at):
            priority = e.priority
        return Assessment(clock, terms, report, priority)

    def assess(self, clock: StoredClock, events: Sequence[StoredEvent],
               now: datetime) -> ClockUpdate:
        """What the store keeps after looking at a ticket at `now`: the alerts of crossings
        not yet emitted, and when to look again."""
        seen = self.evaluate(clock, events, now)
        report = seen.report
        fresh = [x for x in report.crossings if sla_crossing_key(x) not in clock.alerted]
        alerts = []
        if fresh:
            party = TicketParty(clock.ticket_id, clock.contract_id, clock.customer_id,
                                clock.plan_id, self._recipients(clock.contract_id))
            alerts = [new_alert(e) for e in sla_alerts(party, fresh, report.clocks)]
        later = [e.at for e in events if e.at > now]  # seen only once they happened
        upcoming = [t for t in (report.next_crossing_at, min(later, default=None)) if t]
        return ClockUpdate(
            next_alert_at=min(upcoming, default=None),
            alerts=alerts,
            alerted=clock.alerted | {sla_crossing_key(x) for x in fresh},
            report=seen,
        )

    def _recipients(self, contract_id: str) -> tuple[str, ...]:
        try:
            with self.holder.lease() as snapshot:
                contract = snapshot.policy.contracts.get(contract_id)
                return recipients(contract) if contract is not None else ()
        except NoPolicyLoaded:
            return ()


class SlaSweeper(Sweeper):
    """SLA alerts of clocks whose next-alert instant has come; one replica at a time."""

    lease = SLA_SWEEPER_LEASE

    def __init__(self, store, holder: SnapshotHolder, clock, sla: SlaClocks, *,
                 interval: float = DEFAULT_SLA_SWEEP_INTERVAL, batch: int = SLA_SWEEP_BATCH,
                 bus: AlertBus | None = None, holder_id: str | None = None):
        super().__init__(store, holder, clock, interval=interval, batch=batch, bus=bus,
                         holder_id=holder_id)
        self.sla = sla

    def sweep(self, *, force: bool = False) -> int | None:
        """Assess every due clock; the number of alerts appended, None without the lease."""
        with self._lock:
            now = self.clock.now()
            if not force and not self.store.try_lease(self.lease, self.id, now,
                                                      self.lease_seconds):
                return None
            appended = 0
            for _ in range(MAX_SWEEP_BATCHES):
                due = self.store.due_clocks(now, self.batch)
                if not due:
                    break
                updates = [(clock, self._assess(clock, events, now)) for clock, events in due]
                count = self.store.apply_sweep(updates, now)
                appended += count
                if count and self.bus is not None:
                    self.bus.notify()
                if len(due) < self.batch:
                    break
            if appended:
                get_logger().info("SLA alerts swept", extra={"alerts": appended})
            return appended

    def _assess(self, clock: StoredClock, events: Sequence[StoredEvent],
                now: datetime) -> ClockUpdate:
        try:
            return self.sla.assess(clock, events, now)
        except Exception:  # one broken ticket must not stop the others' alerts
            get_logger().exception("SLA clock assessment failed",
                                   extra={"ticket_id": clock.ticket_id})
            return ClockUpdate(now + RETRY_BROKEN, alerted=clock.alerted)


def install(runtime) -> None:
    """Wire SLA clocks into a Runtime (after alerts.install: it shares the alert bus)."""
    runtime.sla_clocks = SlaClocks(runtime.store, runtime.holder)
    interval = getattr(runtime.config, "sla_sweep_interval", DEFAULT_SLA_SWEEP_INTERVAL)
    if interval and interval > 0:
        runtime.background.append(SlaSweeper(
            runtime.store, runtime.holder, runtime.clock, runtime.sla_clocks,
            interval=interval, bus=runtime.alert_bus,
        ))


def sla_sweeper_of(runtime) -> SlaSweeper | None:
    return next((t for t in runtime.background if isinstance(t, SlaSweeper)), None)
