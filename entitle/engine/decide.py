"""The decision: a pure function of (snapshot, usage, ticket, now)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from entitle.engine.calendars import local_date
from entitle.engine.clocks import ClockState, History, clocks_at, ordered_events
from entitle.engine.durations import format_minutes
from entitle.engine.model import Contract, Plan, Policy, TargetSpec
from entitle.engine.periods import Period, lifecycle, period_at, period_key
from entitle.engine.rules import crossed_usage_thresholds, due_expiry_thresholds
from entitle.engine.snapshot import Snapshot
from entitle.engine.ticket import Ticket, check_ticket

COVERED = "COVERED"
COVERED_OVERAGE = "COVERED_OVERAGE"
NO_CONTRACT = "NO_CONTRACT"
CONTRACT_NOT_STARTED = "CONTRACT_NOT_STARTED"
CONTRACT_EXPIRED = "CONTRACT_EXPIRED"
CONTRACT_SUSPENDED = "CONTRACT_SUSPENDED"
PRODUCT_NOT_COVERED = "PRODUCT_NOT_COVERED"
QUOTA_EXHAUSTED = "QUOTA_EXHAUSTED"
REASONS = (
    COVERED,
    COVERED_OVERAGE,
    NO_CONTRACT,
    CONTRACT_NOT_STARTED,
    CONTRACT_EXPIRED,
    CONTRACT_SUSPENDED,
    PRODUCT_NOT_COVERED,
    QUOTA_EXHAUSTED,
)


class UsageView(Protocol):
    """Read side of the usage ledger: units used by a contract in one period."""

    def used(self, contract_id: str, period_key: str) -> float: ...

    def used_many(self, keys: Sequence[tuple[str, str]]) -> list[float]:
        """used() of each (contract_id, period_key), in order: one store round trip."""
        ...


@dataclass(frozen=True)
class Due:
    """A target in force and its clock at the decision time (the latest next_response cycle)."""

    metric: str
    minutes: float
    clock: str
    calendar_id: str | None
    due_at: datetime | None  # None while paused before the due time, or no cycle open yet
    state: ClockState | None = None


@dataclass(frozen=True)
class Quota:
    unit: str
    limit: float | None  # None: unlimited
    used: float
    remaining: float | None
    percent_used: float | None
    period_start: datetime
    period_end: datetime | None
    period_key: str

    @property
    def exhausted(self) -> bool:
        return self.remaining is not None and self.remaining <= 0


@dataclass(frozen=True)
class Decision:
    ticket_id: str
    covered: bool
    reason: str
    explanation: str
    policy_revision: str
    decided_at: datetime
    contract_id: str | None = None
    plan_id: str | None = None
    sla_id: str | None = None
    sla_rule: str | None = None  # None: the SLA's default targets
    targets: tuple[Due, ...] = ()
    quota: Quota | None = None
    warnings: tuple[str, ...] = ()

    @property
    def consumes(self) -> float:
        """Units an admission of this decision counts: one incident, or nothing for time plans."""
        if not self.covered or self.quota is None or self.quota.unit != "incidents":
            return 0.0
        return 1.0


def quota_for(plan: Plan, contract: Contract, at: datetime, usage: UsageView) -> Quota:
    """Quota figures of the period containing `at`."""
    period: Period = period_at(plan, contract, at)
    key = period_key(period)
    return _quota(plan, period, key, float(usage.used(contract.id, key)))


def quotas_for(live: Sequence[tuple[Contract, Plan]], at: datetime,
               usage: UsageView) -> list[Quota]:
    """quota_for() of several contracts, their usage read at once."""
    periods = [period_at(plan, c, at) for c, plan in live]
    keys = [period_key(p) for p in periods]
    used = usage.used_many([(c.id, key) for (c, _), key in zip(live, keys, strict=True)])
    return [_quota(plan, period, key, float(u))
            for (_, plan), period, key, u in zip(live, periods, keys, used, strict=True)]


def _quota(plan: Plan, period: Period, key: str, used: float) -> Quota:
    remaining, percent = _left(plan.limit, used)
    return Quota(plan.unit, plan.limit, used, remaining, percent, period.start, period.end, key)


def _left(limit: float | None, used: float) -> tuple[float | None, float | None]:
    """Remaining units and percent used; None for an unlimited plan."""
    if limit is None:
        return None, None
    return limit - used, round(100.0 * used / limit, 4) if limit else 100.0


def _needs_quota(plan: Plan, quota: Quota) -> bool:
    """True when the next ticket does not fit: an incident needs one whole unit left."""
    if plan.limit is None:
        return False
    need = 1.0 if plan.unit == "incidents" else 0.0
    return quota.used + need > plan.limit or quota.used >= plan.limit


@dataclass(frozen=True)
class _Candidate:
    contract: Contract
    plan: Plan
    quota: Quota
    over: bool  # quota used up

    def rank(self) -> tuple:
        """Lower is better: see 'Choosing among contracts' in the README."""
        cls = 2 if (self.over and self.plan.when_exhausted == "reject") else int(self.over)
        end = self.contract.end_at.timestamp() if self.contract.end_at else float("inf")
        return (
            cls,
            -(self.contract.precedence or 0),
            self.contract.products is None,
            end,
            self.contract.id,
        )


def _covers_product(contract: Contract, product: str) -> bool:
    return contract.products is None or product in contract.products


def _contracts_for(policy: Policy, ticket: Ticket) -> tuple[Sequence[Contract], ...]:
    """The customer's contracts; those for the product; active then; and not suspended."""
    contracts = policy.by_customer.get(ticket.customer_id, ())
    for_product = [c for c in contracts if _covers_product(c, ticket.product)]
    active = [c for c in for_product if lifecycle(c, ticket.created_at) == "active"]
    return contracts, for_product, active, [c for c in active if not c.suspended]


def usage_keys(snapshot: Snapshot, ticket: Ticket) -> list[tuple[str, str]]:
    """The (contract, period) usage decide() reads for `ticket`, so a caller can fetch it
    ahead together with other data (an admission's ticket lookup: one store round trip)."""
    policy = snapshot.policy
    live = _contracts_for(policy, ticket)[3]
    return [(c.id, period_key(period_at(policy.plans[c.plan_id], c, ticket.created_at)))
            for c in live]


def quota_with(quota: Quota, used: float) -> Quota:
    """The same period's quota figures at another usage (an admission's, once counted)."""
    remaining, percent = _left(quota.limit, used)
    return replace(quota, used=used, remaining=remaining, percent_used=percent)


def decide(snapshot: Snapshot, usage: UsageView, ticket: Ticket, now: datetime) -> Decision:
    """Is the ticket covered, by which contract and SLA, when is it due, what quota remains."""
    check_ticket(ticket, now)
    policy = snapshot.policy
    at = ticket.created_at
    base = {"ticket_id": ticket.ticket_id, "policy_revision": policy.revision, "decided_at": now}

    contracts, for_product, active, live = _contracts_for(policy, ticket)
    if not contracts:
        return Decision(
            covered=False,
            reason=NO_CONTRACT,
            explanation=f"Customer {ticket.customer_id!r} has no contract.",
            **base,
        )
    if not for_product:
        names = ", ".join(c.id for c in contracts)
        return Decision(
            covered=False,
            reason=PRODUCT_NOT_COVERED,
            explanation=(
                f"No contract of customer {ticket.customer_id!r} covers product "
                f"{ticket.product!r} (contracts: {names})."
            ),
            **base,
        )

    if not live:
        return _not_active(policy, for_product, active, ticket, base)

    pairs = [(c, policy.plans[c.plan_id]) for c in live]
    candidates = [
        _Candidate(c, plan, quota, _needs_quota(plan, quota))
        for (c, plan), quota in zip(pairs, quotas_for(pairs, at, usage), strict=True)
    ]
    best = min(candidates, key=_Candidate.rank)
    contract, plan, quota = best.contract, best.plan, best.quota
    warnings = _warnings(plan, contract, quota, at)

    if best.over and plan.when_exhausted == "reject":
        return Decision(
            covered=False,
            reason=QUOTA_EXHAUSTED,
            explanation=(
                f"Contract {contract.id} has used {_figures(quota)} "
                f"{_period_text(quota, contract.tz)}; plan {plan.id} rejects tickets once "
                "the quota is used up, so no SLA applies."
            ),
            contract_id=contract.id,
            plan_id=plan.id,
            quota=quota,
            warnings=warnings,
            **base,
        )

    sla = policy.slas[plan.sla_id]
    index = snapshot.rules.select_sla_rule(
        sla.id, ticket.product, ticket.subject, ticket.attributes
    )
    rule = sla.rules[index] if index is not None else None
    specs: tuple[TargetSpec, ...] = (rule.targets if rule else sla.default).get(ticket.priority, ())
    fallback = ""
    if rule is not None and not specs:
        specs = sla.default.get(ticket.priority, ())
        fallback = f" (rule has no {ticket.priority} targets: default used)"
    clocks = clocks_at(snapshot.clock_terms(sla.id, index), History.of(ticket), now)
    latest = {c.metric: c for c in clocks}  # cycles ascending: the last one wins
    targets = tuple(
        Due(c.metric, c.minutes, c.clock, c.calendar_id, c.due_at, c) for c in latest.values()
    )
    if not specs:
        warnings += (f"SLA {sla.id} sets no targets for priority {ticket.priority}",)

    reason = COVERED_OVERAGE if best.over else COVERED
    chosen = f"rule {rule.name!r}{fallback}" if rule else "default targets"
    usage_text = (
        "unlimited"
        if plan.limit is None
        else f"{_figures(quota)} {_period_text(quota, contract.tz)}"
    )
    overage = "; quota used up: this ticket is billable overage" if best.over else ""
    target_text = ", ".join(f"{t.metric} {format_minutes(t.minutes)} {t.clock}" for t in targets)
    return Decision(
        covered=True,
        reason=reason,
        explanation=(
            f"Covered by contract {contract.id} (plan {plan.id}, {usage_text}){overage}; "
            f"SLA {sla.id}, {chosen}, {_priority_text(ticket, now)}: "
            f"{target_text or 'no targets'}."
        ),
        contract_id=contract.id,
        plan_id=plan.id,
        sla_id=sla.id,
        sla_rule=rule.name if rule else None,
        targets=targets,
        quota=quota,
        warnings=warnings,
        **base,
    )


def _not_active(policy: Policy, for_product, active, ticket: Ticket, base: dict) -> Decision:
    """Reason for a product that is covered, but by no contract active and unsuspended."""
    at = ticket.created_at
    if active:
        c = min(active, key=lambda c: c.id)
        return Decision(
            covered=False,
            reason=CONTRACT_SUSPENDED,
            explanation=f"Contract {c.id} is suspended.",
            contract_id=c.id,
            plan_id=c.plan_id,
            **base,
        )

    def distance(c: Contract) -> float:
        if lifecycle(c, at) == "planned":
            return (c.start_at - at).total_seconds()
        return (at - c.end_at).total_seconds() if c.end_at else float("inf")

    c = min(for_product, key=lambda c: (distance(c), c.id))
    if lifecycle(c, at) == "planned":
        reason = CONTRACT_NOT_STARTED
        text = f"Contract {c.id} starts on {c.start.isoformat()}; it does not cover tickets before."
    else:
        reason = CONTRACT_EXPIRED
        text = f"Contract {c.id} ended on {c.end.isoformat()}; renew it to cover new tickets."
    return Decision(
        covered=False, reason=reason, explanation=text, contract_id=c.id, plan_id=c.plan_id, **base
    )


def _priority_text(ticket: Ticket, now: datetime) -> str:
    """The priority the targets are for: the last priority change by `now`, if any."""
    changes = [e for e in ordered_events(ticket.events)
               if e.type == "priority_changed" and e.at <= now]
    if not changes:
        return ticket.priority
    return f"{changes[-1].priority} (changed from {ticket.priority})"


def _figures(q: Quota) -> str:
    return f"{q.used:g} of {q.limit:g} {q.unit}"


def _period_text(q: Quota, tz: str) -> str:
    """The period in the contract's local dates; its end is exclusive."""
    zone = ZoneInfo(tz)
    start = local_date(q.period_start, zone).isoformat()
    if q.period_end is None:
        return f"since {start}"
    return f"in the period from {start} until {local_date(q.period_end, zone).isoformat()}"


def _warnings(plan: Plan, contract: Contract, quota: Quota, at: datetime) -> tuple[str, ...]:
    """Heads-up for the agent, by the same classifiers as alerts: expiry near, quota low."""
    out = []
    if contract.end_at and plan.expiry_days:
        days = (contract.end_at - at).total_seconds() / 86400
        if due_expiry_thresholds(days, plan.expiry_days):
            out.append(
                f"contract {contract.id} ends on {contract.end.isoformat()} (in {days:.0f} days)"
            )
    if quota.percent_used is not None and plan.usage_thresholds:
        crossed = crossed_usage_thresholds(-1.0, quota.percent_used, plan.usage_thresholds)
        if crossed:
            out.append(
                f"quota {quota.percent_used:g}% used ({_figures(quota)}), "
                f"past the {max(crossed)}% threshold"
            )
    return tuple(out)


def instant_json(t: datetime | None) -> str | None:
    """Wire form of an instant: ISO 8601 in UTC with a Z."""
    if t is None:
        return None
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def target_json(t: Due) -> dict:
    """One target and its clock (docs/sla-clocks.md) as JSON."""
    out = {
        "minutes": t.minutes,
        "clock": t.clock,
        "calendar_id": t.calendar_id,
        "due_at": instant_json(t.due_at),
    }
    c = t.state
    if c is not None:
        out.update(
            state=c.state,
            paused=c.paused,
            cycle=c.cycle,
            priority=c.priority,
            started_at=instant_json(c.started_at),
            elapsed_minutes=c.elapsed_minutes,
            remaining_minutes=c.remaining_minutes,
            percent_elapsed=c.percent_elapsed,
            breached_at=instant_json(c.breached_at),
            stopped_at=instant_json(c.stopped_at),
            crossed=[{"percent": p, "at": instant_json(at)} for p, at in c.crossed],
            pauses=[{"from": instant_json(a), "to": instant_json(b)} for a, b in c.pauses],
        )
    return out


def decision_json(d: Decision) -> dict:
    """The decision as JSON (CLI output, test suites, decision log); mirrors the gRPC message."""
    quota = None
    if d.quota is not None:
        q = d.quota
        quota = {
            "unit": q.unit,
            "limit": q.limit,
            "used": q.used,
            "remaining": q.remaining,
            "percent_used": q.percent_used,
            "period_start": instant_json(q.period_start),
            "period_end": instant_json(q.period_end),
        }
    return {
        "ticket_id": d.ticket_id,
        "covered": d.covered,
        "reason": d.reason,
        "explanation": d.explanation,
        "contract_id": d.contract_id,
        "plan_id": d.plan_id,
        "sla_id": d.sla_id,
        "sla_rule": d.sla_rule,
        "targets": {t.metric: target_json(t) for t in d.targets},
        "quota": quota,
        "warnings": list(d.warnings),
        "policy_revision": d.policy_revision,
        "decided_at": instant_json(d.decided_at),
    }
