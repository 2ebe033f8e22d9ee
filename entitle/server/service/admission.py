"""CheckCoverage with consume: decide, then admit atomically; a retried ticket gets its original."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from entitle.engine.decide import COVERED_OVERAGE, Decision, decide, quota_with, usage_keys
from entitle.engine.snapshot import Snapshot
from entitle.engine.ticket import Ticket, check_ticket
from entitle.engine.usage import StaticUsage
from entitle.server.service.wire import decision_to_proto, quota_to_proto
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
    # One store read: a retry's original decision, or the usage the first decision reads.
    keys = usage_keys(snapshot, ticket)
    original, used = store.admission_view(ticket.ticket_id, keys)
    if original is not None:
        return Coverage(pb.Decision.FromString(original), duplicate=True)
    usage = StaticUsage(by_period=dict(zip(keys, used, strict=True)))
    for _ in range(MAX_ATTEMPTS):
        decision = decide(snapshot, usage, ticket, now)
        usage = store  # a decision made again (the last unit was lost) reads the ledger anew
        if not decision.covered:
            return Coverage(decision_to_proto(decision))
        admitted = _Admitted(decision)
        result = store.admit(
            ticket.ticket_id,
            decision.contract_id,
            decision.quota.period_key,
            amount=decision.consumes,
            limit=_limit(snapshot, decision),
            # Over the limit only when the decision said so: a plain COVERED that lost the
            # last unit is decided again, and comes back as overage or another contract.
            allow_over=decision.reason == COVERED_OVERAGE,
            answer=admitted.payload,
            at=now,
            on_commit_alerts=on_commit_alerts,
            clock=sla_clocks.new_clock(snapshot, decision, ticket, now) if sla_clocks else None,
        )
        if result.status == "admitted":
            return Coverage(admitted.at(result.used), admitted=True)
        if result.status == "duplicate":
            return Coverage(pb.Decision.FromString(result.payload), duplicate=True)
    raise AdmissionContention(
        f"ticket {ticket.ticket_id}: the quota changed under {MAX_ATTEMPTS} attempts; retry"
    )


def _limit(snapshot: Snapshot, decision: Decision) -> float | None:
    return snapshot.policy.plans[decision.plan_id].limit


class _Admitted:
    """A covered decision as admitted: its quota shows the period's usage with the ticket."""

    def __init__(self, decision: Decision):
        self.decision = decision
        self.message = decision_to_proto(decision)  # built once; only the quota changes
        self._used: float | None = None

    def at(self, used: float) -> pb.Decision:
        if self.decision.quota is not None and used != self._used:
            self.message.quota.CopyFrom(quota_to_proto(quota_with(self.decision.quota, used)))
            self._used = used
        return self.message

    def payload(self, used: float) -> bytes:
        """The decision kept for retries (store.admit's `answer`)."""
        return self.at(used).SerializeToString()

