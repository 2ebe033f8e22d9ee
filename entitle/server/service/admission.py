"""CheckCoverage with consume: decide, then admit atomically; a retried ticket gets its original."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from entitle.engine.decide import COVERED_OVERAGE, Decision, decide, quota_for
from entitle.engine.snapshot import Snapshot
from entitle.engine.ticket import Ticket, check_ticket
from entitle.engine.usage import StaticUsage
from entitle.server.service.wire import decision_to_proto
from entitle.v1 import entitle_pb2 as pb

MAX_ATTEMPTS = 5  # re-decisions after losing a race for the last unit; then ABORTED


class AdmissionContention(RuntimeError):
    """Every attempt lost a race for the quota: the client may retry (the call is idempotent)."""


@dataclass(frozen=True)
class Coverage:
    """A CheckCoverage answer, and whether it is a retry's original decision."""

    decision: pb.Decision
    duplicate: bool = False
    admitted: bool = False


def check_coverage(
    snapshot: Snapshot,
    store,
    ticket: Ticket,
    now: datetime,
    *,
    consume: bool,
    on_commit_alerts: Callable | None = None,
    sla_clocks=None,
) -> Coverage:
    """The decision for `ticket`; with `consume`, a covered ticket is admitted exactly once
    (with its SLA clock row when `sla_clocks`, server/slaclocks.py, is given)."""
    if not consume:
        return Coverage(decision_to_proto(decide(snapshot, store, ticket, now)))
    check_ticket(ticket, now)  # before the ledger is asked about the ticket
    original = admitted_payload(store, ticket.ticket_id)
    if original is not None:
        return Coverage(pb.Decision.FromString(original), duplicate=True)
    for _ in range(MAX_ATTEMPTS):
        decision = decide(snapshot, store, ticket, now)
        if not decision.covered:
            return Coverage(decision_to_proto(decision))
        result = store.admit(
            ticket.ticket_id,
            decision.contract_id,
            decision.quota.period_key,
            amount=decision.consumes,
            limit=_limit(snapshot, decision),
            # Over the limit only when the decision said so: a plain COVERED that lost the
            # last unit is decided again, and comes back as overage or another contract.
            allow_over=decision.reason == COVERED_OVERAGE,
            answer=lambda used, d=decision: _admitted(snapshot, d, used).SerializeToString(),
            at=now,
            on_commit_alerts=on_commit_alerts,
            clock=sla_clocks.new_clock(snapshot, decision, ticket, now) if sla_clocks else None,
        )
        if result.status == "admitted":
            return Coverage(pb.Decision.FromString(result.payload), admitted=True)
        if result.status == "duplicate":
            return Coverage(pb.Decision.FromString(result.payload), duplicate=True)
    raise AdmissionContention(
        f"ticket {ticket.ticket_id}: the quota changed under {MAX_ATTEMPTS} attempts; retry"
    )


def _limit(snapshot: Snapshot, decision: Decision) -> float | None:
    return snapshot.policy.plans[decision.plan_id].limit


def _admitted(snapshot: Snapshot, decision: Decision, used: float) -> pb.Decision:
    """The decision as admitted: its quota shows the period's usage including this ticket."""
    if decision.quota is None:
        return decision_to_proto(decision)
    contract = snapshot.policy.contracts[decision.contract_id]
    plan = snapshot.policy.plans[decision.plan_id]
    usage = StaticUsage(by_contract={contract.id: used})
    quota = quota_for(plan, contract, decision.quota.period_start, usage)
    return decision_to_proto(replace(decision, quota=quota))


def admitted_payload(store, ticket_id: str) -> bytes | None:
    """The decision stored with a ticket's admission, if it was admitted."""
    usage = store.ticket_usage(ticket_id)
    return None if usage is None else usage.payload
