"""Mapping between the wire messages (entitle.v1) and the engine's tickets and decisions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from google.protobuf.timestamp_pb2 import Timestamp

from entitle.engine.decide import Decision, Due, Quota
from entitle.engine.model import frozen_map
from entitle.engine.ticket import Pause, Ticket, TicketError, TicketEvent
from entitle.v1 import entitle_pb2 as pb

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Instants a client may send: the Timestamp type's own range, years 1 to 9999.
MIN_SECONDS, MAX_SECONDS = -62135596800, 253402300799

LIFECYCLES = {
    "planned": pb.LIFECYCLE_PLANNED,
    "active": pb.LIFECYCLE_ACTIVE,
    "expired": pb.LIFECYCLE_EXPIRED,
    "suspended": pb.LIFECYCLE_SUSPENDED,
}


def timestamp(at: datetime) -> Timestamp:
    delta = at - EPOCH
    return Timestamp(seconds=delta.days * 86400 + delta.seconds, nanos=delta.microseconds * 1000)


def instant(ts: Timestamp, field: str) -> datetime:
    """A client's Timestamp as an aware UTC datetime; absurd values name their field."""
    if not MIN_SECONDS <= ts.seconds <= MAX_SECONDS or not 0 <= ts.nanos < 10**9:
        raise TicketError(field, "is not a valid timestamp (years 1 to 9999)")
    return EPOCH + timedelta(seconds=ts.seconds, microseconds=ts.nanos // 1000)


def ticket_from_proto(msg: pb.Ticket, now: datetime) -> Ticket:
    """The engine's Ticket; check_ticket then validates every field it has. An unset
    created_at is `now` (the server's time at the call): an automation firing on ticket
    creation need not send it."""
    attributes: dict[str, str | float] = {}
    for key, value in msg.attributes.items():
        kind = value.WhichOneof("kind")
        if kind is None:
            raise TicketError(f"attributes.{key}", "must be a string or a number")
        attributes[key] = value.string_value if kind == "string_value" else value.number_value
    return Ticket(
        ticket_id=msg.ticket_id,
        customer_id=msg.customer_id,
        product=msg.product,
        priority=msg.priority,
        created_at=_instant_of(msg, "created_at", "created_at") or now,
        subject=msg.subject if msg.HasField("subject") else None,
        attributes=frozen_map(attributes),
        pauses=tuple(
            Pause(_instant_of(p, "start", f"pauses[{i}].start", required=True),
                  _instant_of(p, "end", f"pauses[{i}].end"))
            for i, p in enumerate(msg.pauses)
        ),
        first_response_at=_instant_of(msg, "first_response_at", "first_response_at"),
        resolved_at=_instant_of(msg, "resolved_at", "resolved_at"),
        events=tuple(
            TicketEvent(e.id, e.type, _instant_of(e, "at", f"events[{i}].at", required=True),
                        status=e.status.lower() or None, priority=e.priority or None)
            for i, e in enumerate(msg.events)
        ),
    )


def _instant_of(msg, name: str, field: str, *, required: bool = False) -> datetime | None:
    """An optional (or required) Timestamp field of `msg`, its errors naming `field`."""
    if msg.HasField(name):
        return instant(getattr(msg, name), field)
    if required:
        raise TicketError(field, "is required")
    return None


def quota_to_proto(q: Quota) -> pb.Quota:
    out = pb.Quota(
        unit=q.unit,
        unlimited=q.limit is None,
        used=q.used,
        period_start=timestamp(q.period_start),
    )
    if q.limit is not None:
        out.limit = q.limit
        out.remaining = q.remaining
        out.percent_used = q.percent_used
    if q.period_end is not None:
        out.period_end.CopyFrom(timestamp(q.period_end))
    return out


def target_to_proto(t: Due) -> pb.Target:
    """A target and its clock; unset instants are absent (due_at while paused)."""
    out = pb.Target(metric=t.metric, minutes=t.minutes, clock=t.clock,
                    calendar_id=t.calendar_id or "")
    if t.due_at is not None:
        out.due_at.CopyFrom(timestamp(t.due_at))
    c = t.state
    if c is not None:
        out.state = pb.ClockState.Value("CLOCK_STATE_" + c.state.upper())
        out.paused, out.cycle, out.priority = c.paused, c.cycle, c.priority
        out.elapsed_minutes = c.elapsed_minutes
        out.remaining_minutes = c.remaining_minutes
        out.percent_elapsed = c.percent_elapsed
        for name in ("started_at", "breached_at", "stopped_at"):
            at = getattr(c, name)
            if at is not None:
                getattr(out, name).CopyFrom(timestamp(at))
        out.crossed.extend(pb.ThresholdCrossing(percent=p, at=timestamp(at))
                           for p, at in c.crossed)
        for begin, end in c.pauses:
            pause = out.pauses.add(start=timestamp(begin))
            if end is not None:
                pause.end.CopyFrom(timestamp(end))
    return out


def decision_to_proto(d: Decision) -> pb.Decision:
    out = pb.Decision(
        ticket_id=d.ticket_id,
        covered=d.covered,
        reason=pb.CoverageReason.Value("COVERAGE_REASON_" + d.reason),
        explanation=d.explanation,
        contract_id=d.contract_id or "",
        plan_id=d.plan_id or "",
        sla_id=d.sla_id or "",
        sla_rule=d.sla_rule or "",
        targets=[target_to_proto(t) for t in d.targets],
        warnings=d.warnings,
        policy_revision=d.policy_revision,
        decided_at=timestamp(d.decided_at),
    )
    if d.quota is not None:
        out.quota.CopyFrom(quota_to_proto(d.quota))
    return out
