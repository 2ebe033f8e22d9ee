"""Alert events from compiled policy: which thresholds a change crossed, which dates fell due.

Pure domain: no SQL, no gRPC, no clock. The runtime passes in what happened (a usage
change) or the window of time to look at (since, until], and gets back descriptions of the
alerts, each with the instant its condition became true and a dedupe key that names it
exactly once: (contract, kind, threshold, period).

Threshold crossing is decided by the durable-rules classifiers in `entitle.engine.rules`
(`crossed_usage_thresholds`, `due_expiry_thresholds`); this module only asks them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from entitle.engine.clocks import ClockState, Crossing
from entitle.engine.durations import format_minutes
from entitle.engine.model import Contract, Plan
from entitle.engine.rules import crossed_usage_thresholds, due_expiry_thresholds

USAGE_THRESHOLD = "USAGE_THRESHOLD"
QUOTA_EXHAUSTED = "QUOTA_EXHAUSTED"
CONTRACT_ACTIVATED = "CONTRACT_ACTIVATED"
CONTRACT_EXPIRING = "CONTRACT_EXPIRING"
CONTRACT_EXPIRED = "CONTRACT_EXPIRED"
SLA_WARNING = "SLA_WARNING"
SLA_BREACHED = "SLA_BREACHED"
KINDS: tuple[str, ...] = (
    USAGE_THRESHOLD, QUOTA_EXHAUSTED, CONTRACT_ACTIVATED, CONTRACT_EXPIRING, CONTRACT_EXPIRED,
    SLA_WARNING, SLA_BREACHED,
)
USAGE_KINDS = frozenset((USAGE_THRESHOLD, QUOTA_EXHAUSTED))
SLA_KINDS = frozenset((SLA_WARNING, SLA_BREACHED))

EPSILON = 1e-9  # the ledger's slack for hours and days (0.1 + 0.2 > 0.3)
_DAY = timedelta(days=1)
_DAY_SECONDS = 86400.0


@dataclass(frozen=True)
class AlertEvent:
    """One alert as the domain describes it; the runtime stores and streams it."""

    kind: str
    dedupe_key: str
    contract_id: str
    customer_id: str
    plan_id: str
    occurred_at: datetime  # when the condition became true, not when it was noticed
    threshold: int = 0  # percent (USAGE_THRESHOLD) or days (CONTRACT_EXPIRING)
    period_key: str = ""  # usage kinds: the ledger's period key
    period_start: datetime | None = None  # usage kinds
    used: float = 0.0  # usage kinds
    limit: float = 0.0  # usage kinds
    unit: str = ""  # usage kinds
    days_left: float | None = None  # to the contract's end; None when open-ended
    recipients: tuple[str, ...] = ()
    message: str = ""
    ticket_id: str = ""  # SLA kinds
    metric: str = ""  # SLA kinds
    cycle: int = 0  # SLA kinds: next_response cycle from 1
    due_at: datetime | None = None  # SLA kinds: the clock's due time when emitted

    def body(self) -> dict:
        """The figures kept with a stored alert (JSON-safe)."""
        out: dict = {"recipients": list(self.recipients), "message": self.message}
        if self.kind in SLA_KINDS:
            out.update(ticket_id=self.ticket_id, metric=self.metric, cycle=self.cycle)
            if self.due_at is not None:
                out["due_at"] = _iso(self.due_at)
        if self.kind in USAGE_KINDS:
            out.update(used=self.used, limit=self.limit, unit=self.unit)
            if self.period_start is not None:
                out["period_start"] = _iso(self.period_start)
        if self.days_left is not None:
            out["days_left"] = self.days_left
        return out


def recipients(contract: Contract) -> tuple[str, ...]:
    """The contract's owner, then its notify list, each once, in that order."""
    seen: dict[str, None] = {}
    for who in (contract.owner, *contract.notify):
        if who:
            seen.setdefault(who, None)
    return tuple(seen)


def days_left(contract: Contract, at: datetime) -> float | None:
    """Fractional days from `at` to the contract's end (negative after it); None if open."""
    if contract.end_at is None:
        return None
    return (contract.end_at - at).total_seconds() / _DAY_SECONDS


def percent(used: float, limit: float) -> float:
    """100 * used / limit, rounded so 0.1 + 0.2 hours of 0.3 is exactly 100."""
    return round(100.0 * used / limit, 6)


# --- usage -------------------------------------------------------------------------------


def usage_alerts(
    contract: Contract,
    plan: Plan,
    period_key: str,
    before: float,
    after: float,
    at: datetime,
) -> list[AlertEvent]:
    """Alerts one committed usage change raised: every threshold it crossed, and exhaustion.

    Only crossings by this change count (before < t <= after), so a threshold added to the
    plan later never fires for usage already past it. QUOTA_EXHAUSTED fires when nothing is
    left after the change; its dedupe key makes it once per period. Unlimited plans raise
    nothing; neither does a release (after <= before).
    """
    limit = plan.limit
    if limit is None or limit <= 0 or after <= before:
        return []
    crossed = crossed_usage_thresholds(
        percent(before, limit), percent(after, limit), plan.usage_thresholds
    )
    exhausted = after >= limit - EPSILON
    if not crossed and not exhausted:
        return []
    start = period_start(period_key)
    common = dict(
        contract_id=contract.id,
        customer_id=contract.customer,
        plan_id=plan.id,
        occurred_at=at,
        period_key=period_key,
        period_start=start,
        used=float(after),
        limit=limit,
        unit=plan.unit,
        days_left=days_left(contract, at),
        recipients=recipients(contract),
    )
    per_period = plan.type == "per_period"
    quota = f"{_num(limit)} {plan.unit}" + (" this period" if per_period else " (pack)")
    left = " this period" if per_period else " in its pack"
    figures = f"{_num(after)}/{_num(limit)}"
    out = [
        AlertEvent(
            kind=USAGE_THRESHOLD,
            dedupe_key=_key(contract.id, USAGE_THRESHOLD, t, period_key),
            threshold=t,
            message=(
                f"{contract.customer}: contract {contract.id} has used {t}% of "
                f"{quota} ({figures})"
            ),
            **common,
        )
        for t in crossed
    ]
    if exhausted:
        out.append(AlertEvent(
            kind=QUOTA_EXHAUSTED,
            dedupe_key=_key(contract.id, QUOTA_EXHAUSTED, 0, period_key),
            message=(
                f"{contract.customer}: contract {contract.id} has no {plan.unit} left"
                f"{left} ({figures}; "
                + ("further usage is billed as overage)" if plan.when_exhausted == "overage"
                   else "further tickets are not covered)")
            ),
            **common,
        ))
    return out


def period_start(period_key: str) -> datetime | None:
    """The period's start from the ledger's key (`2026-03-01T00:00:00Z`); None if not one."""
    for fmt in ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S.%fZ"):
        try:
            return datetime.strptime(period_key, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


# --- SLA clocks ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TicketParty:
    """Whom a ticket's SLA alerts concern: its contract, customer, plan and recipients."""

    ticket_id: str
    contract_id: str
    customer_id: str
    plan_id: str
    recipients: tuple[str, ...] = ()


def sla_crossing_key(c: Crossing) -> str:
    """A crossing's name within its ticket: metric, cycle and threshold."""
    return f"{c.metric}/{c.cycle}/{c.threshold}"


def sla_alerts(party: TicketParty, crossings: Iterable[Crossing],
               clocks: Iterable[ClockState]) -> list[AlertEvent]:
    """One alert per threshold crossing, at the instant it was crossed: SLA_WARNING for a
    warn_at percent, SLA_BREACHED for 100. The dedupe key names (ticket, metric, cycle,
    threshold), so each is emitted once however often the ticket is assessed."""
    by_clock = {(c.metric, c.cycle): c for c in clocks}
    out = []
    for x in crossings:
        clock = by_clock.get((x.metric, x.cycle))
        kind = SLA_BREACHED if x.is_breach else SLA_WARNING
        what = x.metric + (f" (cycle {x.cycle})" if x.cycle else "")
        target = (f"{format_minutes(clock.minutes)} {clock.clock}" if clock else "")
        due = clock.due_at if clock else None
        due_text = f", due {_iso(due)}" if due else ""
        text = (f"breached its {what} target of {target}{due_text}" if x.is_breach
                else f"reached {x.threshold}% of its {what} target of {target}{due_text}")
        out.append(AlertEvent(
            kind=kind,
            # The id last: whatever it contains, the key names one crossing of one ticket.
            dedupe_key=f"ticket/{kind}/{sla_crossing_key(x)}/{party.ticket_id}",
            contract_id=party.contract_id,
            customer_id=party.customer_id,
            plan_id=party.plan_id,
            occurred_at=x.at,
            threshold=x.threshold,
            recipients=party.recipients,
            message=f"{party.customer_id}: ticket {party.ticket_id} {text}",
            ticket_id=party.ticket_id,
            metric=x.metric,
            cycle=x.cycle,
            due_at=due,
        ))
    return out


# --- time --------------------------------------------------------------------------------


def contract_alerts(
    contract: Contract, plan: Plan, since: datetime, until: datetime
) -> list[AlertEvent]:
    """Date alerts of one contract whose instant lies in (since, until], oldest first.

    CONTRACT_ACTIVATED at start_at; CONTRACT_EXPIRING for each days_before_expiry threshold d
    at end_at - d days (due when days_left <= d, as `rules.due_expiry_thresholds` decides);
    CONTRACT_EXPIRED at end_at. Thresholds already reached when the contract starts (a term
    shorter than the threshold) are not sent one by one: only the tightest of them is, at
    start_at. Keys carry the contract's dates, so a renewal that moves the end date gets
    fresh expiry alerts.
    """
    start, end = contract.start_at, contract.end_at
    if until <= since or until < start or (end is not None and since >= end):
        return []
    out: list[tuple[datetime, str, int]] = []  # (occurred_at, kind, threshold)
    if since < start <= until:
        out.append((start, CONTRACT_ACTIVATED, 0))
    if end is not None:
        thresholds = plan.expiry_days
        if thresholds:
            due_at_start = set(_due(end, start, thresholds))
            due_now = set(_due(end, min(until, end), thresholds))
            if since < start:
                earlier = due_at_start
                if due_at_start:  # reached before the term began: the tightest, at start
                    out.append((start, CONTRACT_EXPIRING, min(due_at_start)))
            else:
                earlier = set(_due(end, since, thresholds))
            for d in sorted(due_now - earlier, reverse=True):
                out.append((end - d * _DAY, CONTRACT_EXPIRING, d))
        if since < end <= until:
            out.append((end, CONTRACT_EXPIRED, 0))
    out.sort(key=lambda e: (e[0], _ORDER[e[1]], -e[2]))
    return [_contract_event(contract, plan, at, kind, t) for at, kind, t in out]


def due_alerts(
    contracts: Iterable[tuple[Contract, Plan]], since: datetime, until: datetime
) -> list[AlertEvent]:
    """Date alerts of many contracts in (since, until], in occurrence order (the sweep)."""
    out: list[AlertEvent] = []
    for contract, plan in contracts:
        # Cheap exclusions first: most contracts have nothing in a one-minute window.
        if until < contract.start_at:
            continue
        if contract.end_at is not None and since >= contract.end_at:
            continue
        if contract.end_at is None and not since < contract.start_at:
            continue
        out.extend(contract_alerts(contract, plan, since, until))
    out.sort(key=lambda e: (e.occurred_at, e.contract_id, _ORDER[e.kind], -e.threshold))
    return out


_ORDER = {CONTRACT_ACTIVATED: 0, CONTRACT_EXPIRING: 1, CONTRACT_EXPIRED: 2}


def _due(end: datetime, at: datetime, thresholds: tuple[int, ...]) -> tuple[int, ...]:
    return due_expiry_thresholds((end - at).total_seconds() / _DAY_SECONDS, thresholds)


def _contract_event(
    contract: Contract, plan: Plan, at: datetime, kind: str, threshold: int
) -> AlertEvent:
    term = f"{contract.start.isoformat()}..{contract.end.isoformat() if contract.end else ''}"
    left = days_left(contract, at)
    if kind == CONTRACT_ACTIVATED:
        until = f"until {contract.end.isoformat()}" if contract.end else "with no end date"
        text = (
            f"contract {contract.id} ({plan.id}) started on {contract.start.isoformat()}, "
            + until
        )
    elif kind == CONTRACT_EXPIRING:
        text = (
            f"contract {contract.id} ({plan.id}) ends on {contract.end.isoformat()}, "
            f"in {_num(round(left or 0.0, 1))} days (threshold {threshold} days)"
        )
    else:
        text = f"contract {contract.id} ({plan.id}) ended on {contract.end.isoformat()}"
    return AlertEvent(
        kind=kind,
        dedupe_key=_key(contract.id, kind, threshold, term),
        contract_id=contract.id,
        customer_id=contract.customer,
        plan_id=plan.id,
        occurred_at=at,
        threshold=threshold,
        days_left=left,
        recipients=recipients(contract),
        message=f"{contract.customer}: {text}",
    )


def _key(contract_id: str, kind: str, threshold: int, scope: str) -> str:
    return f"{contract_id}/{kind}/{threshold}/{scope}"


def _num(x: float) -> str:
    return f"{x:g}" if abs(x) < 1e15 else repr(x)


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")
