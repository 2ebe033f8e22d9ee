"""RecordTicketEvents and GetTicketSla: an admitted ticket's events in, its SLA clocks out."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from entitle.engine.decide import Due
from entitle.engine.ticket import EARLIEST, MAX_FUTURE_SKEW, TicketError, TicketEvent, parse_events
from entitle.server.service.failures import Code, Failure, invalid, not_found, ticket_failure
from entitle.server.service.wire import instant, target_to_proto, timestamp
from entitle.server.slaclocks import (
    MAX_EVENTS_PER_CALL,
    MAX_TICKET_EVENTS,
    Assessment,
    SlaClocks,
    to_stored,
)
from entitle.server.store.clocks import TicketHistoryFull, TicketReleased
from entitle.v1 import entitle_pb2 as pb

MAX_LOOK_AHEAD = timedelta(days=3650)  # GetTicketSla.at: how far after server time one may ask


def events_from_proto(msgs: Sequence[pb.TicketEvent], now: datetime,
                      name: str = "events") -> tuple[TicketEvent, ...]:
    """Checked events of a request; errors name the field, e.g. events[2].type."""
    items = []
    for i, e in enumerate(msgs):
        where = f"{name}[{i}].at"
        if not e.HasField("at"):
            raise invalid(where, "is required")
        try:
            at = instant(e.at, where)
        except TicketError as exc:
            raise ticket_failure(exc) from None
        if at < EARLIEST:
            raise invalid(where, f"{at.isoformat()} is before {EARLIEST.date()}")
        if at > now + MAX_FUTURE_SKEW:
            raise invalid(where, f"{at.isoformat()} is more than a day after server time "
                          f"({now.isoformat()})")
        items.append({"id": e.id, "type": e.type, "at": at, "status": e.status or None,
                      "priority": e.priority or None})
    try:
        return parse_events(items, name)
    except TicketError as exc:
        raise ticket_failure(exc) from None


def record_events(sla: SlaClocks, store, ticket_id: str, events: Sequence[TicketEvent],
                  now: datetime, bus=None) -> pb.RecordTicketEventsResponse:
    """Record `events` of an admitted ticket and answer with its clocks at `now`; thresholds
    they show crossed are emitted at once (`bus` wakes this worker's alert streams)."""
    try:
        recorded = store.record_ticket_events(
            ticket_id, to_stored(events), max_events=MAX_TICKET_EVENTS, now=now,
            assess=lambda clock, history: sla.assess(clock, history, now),
        )
    except TicketHistoryFull as exc:
        raise Failure(Code.FAILED_PRECONDITION, str(exc), "events") from None
    except TicketReleased as exc:
        raise Failure(Code.FAILED_PRECONDITION, str(exc), "ticket_id") from None
    if recorded is None:
        raise _no_clock(store, ticket_id)
    if recorded.appended and bus is not None:
        bus.notify()
    update = recorded.update
    return pb.RecordTicketEventsResponse(
        events=[pb.RecordedEvent(id=o.event_id, duplicate=o.duplicate,
                                 conflicting=o.conflicting) for o in recorded.outcomes],
        sla=ticket_sla(update.report, event_count=len(recorded.events),
                       next_alert_at=update.next_alert_at, at=now),
    )


def record_ticket_events(sla: SlaClocks, store, request, now: datetime, ticket_id: str,
                         bus=None) -> pb.RecordTicketEventsResponse:
    if not request.events:
        raise invalid("events", "is required: at least one event")
    if len(request.events) > MAX_EVENTS_PER_CALL:
        raise invalid("events", f"has more than {MAX_EVENTS_PER_CALL} events; send them in "
                      "several calls")
    events = events_from_proto(request.events, now)
    return record_events(sla, store, ticket_id, events, now, bus)


def get_ticket_sla(sla: SlaClocks, store, ticket_id: str, at: datetime, now: datetime
                   ) -> pb.GetTicketSlaResponse:
    if at > now + MAX_LOOK_AHEAD:
        raise invalid("at", f"{at.isoformat()} is more than {MAX_LOOK_AHEAD.days} days after "
                      "server time")
    found = store.ticket_clock(ticket_id)
    if found is None:
        raise _no_clock(store, ticket_id)
    clock, events = found
    if at < clock.created_at:
        raise invalid("at", f"{at.isoformat()} is before the ticket's created_at "
                      f"({clock.created_at.isoformat()})")
    return pb.GetTicketSlaResponse(sla=ticket_sla(
        sla.evaluate(clock, events, at), event_count=len(events),
        next_alert_at=clock.next_alert_at, at=at,
    ))


def ticket_sla(seen: Assessment, *, event_count: int, next_alert_at: datetime | None,
               at: datetime) -> pb.TicketSla:
    clock, terms = seen.clock, seen.terms
    out = pb.TicketSla(
        ticket_id=clock.ticket_id,
        contract_id=clock.contract_id,
        customer_id=clock.customer_id,
        plan_id=clock.plan_id,
        sla_id=terms.sla_id,
        sla_rule=terms.rule or "",
        policy_revision=terms.revision,
        created_at=timestamp(clock.created_at),
        priority=seen.priority,
        clocks=[target_to_proto(Due(c.metric, c.minutes, c.clock, c.calendar_id, c.due_at, c))
                for c in seen.report.clocks],
        event_count=event_count,
        as_of=timestamp(at),
    )
    if next_alert_at is not None:
        out.next_alert_at.CopyFrom(timestamp(next_alert_at))
    return out


def _no_clock(store, ticket_id: str) -> Failure:
    """Why a ticket has no clock: never admitted (NOT_FOUND), or admitted before clocks."""
    usage = store.ticket_usage(ticket_id)
    if usage is not None and usage.admitted:
        return Failure(
            Code.FAILED_PRECONDITION,
            f"ticket {ticket_id!r} was admitted before this server kept SLA clocks; its "
            "clocks can only be replayed offline (entitle check with events)",
            "ticket_id",
        )
    return not_found("ticket_id", f"no admitted ticket {ticket_id!r}: SLA clocks follow "
                     "tickets admitted with CheckCoverage consume=true")
