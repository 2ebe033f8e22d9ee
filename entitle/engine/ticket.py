"""The ticket a decision is asked about, and the one place its fields are checked."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from entitle.engine.model import PRIORITIES, frozen_map
from entitle.engine.text import TextKind, text_problem

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
MAX_FUTURE_SKEW = timedelta(days=1)
MAX_TEXT = 1024
MAX_SUBJECT = 16 * 1024
MAX_ATTRIBUTES = 64
MAX_ATTRIBUTE_KEY = 128
MAX_EVENTS = 10_000  # history entries (events or pauses) one ticket may carry
HISTORY_FIELDS = ("pauses", "first_response_at", "resolved_at", "events")
TICKET_FIELDS = (
    "ticket_id", "customer_id", "product", "priority", "created_at", "subject", "attributes",
    *HISTORY_FIELDS,
)
# Event types in the order events at one instant apply (see docs/sla-clocks.md).
EVENT_TYPES = (
    "reopened", "status_changed", "agent_reply", "customer_message", "priority_changed", "resolved"
)
EVENT_FIELDS = ("id", "type", "at", "status", "priority")


class TicketError(ValueError):
    """A ticket field is missing or wrong; `field` names it for the caller's error status."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(f"{field}: {message}")


@dataclass(frozen=True)
class TicketEvent:
    """One thing that happened to a ticket; `id` makes a redelivery idempotent."""

    id: str
    type: str  # one of EVENT_TYPES
    at: datetime
    status: str | None = None  # status_changed: the new status, lower-cased
    priority: str | None = None  # priority_changed: the new priority


@dataclass(frozen=True)
class Pause:
    """An interval in which the ticket's clocks were stopped; `end` None: still stopped."""

    start: datetime
    end: datetime | None = None


@dataclass(frozen=True)
class Ticket:
    ticket_id: str
    customer_id: str
    product: str
    priority: str
    created_at: datetime
    subject: str | None = None
    attributes: Mapping[str, str | float] = field(default_factory=frozen_map)
    # History so far, in one of two forms: pauses (+ first_response_at, resolved_at), or
    # the events the server records. `priority` is the priority the ticket was created with.
    pauses: tuple[Pause, ...] = ()
    first_response_at: datetime | None = None
    resolved_at: datetime | None = None
    events: tuple[TicketEvent, ...] = ()

    @property
    def has_history(self) -> bool:
        return bool(self.pauses or self.events or self.first_response_at or self.resolved_at)


def _text(name: str, value: object, limit: int = MAX_TEXT) -> str:
    if value is None or value == "":
        raise TicketError(name, "is required")
    if not isinstance(value, str):
        raise TicketError(name, f"must be a string, got {type(value).__name__}")
    _check_text(name, value, TextKind.IDENTIFIER, limit)
    return value


def _check_text(name: str, value: str, kind: TextKind, limit: int = MAX_TEXT) -> None:
    """Length and characters (engine.text): the same rule for every interface and store."""
    problem = text_problem(value, kind, limit)
    if problem is not None:
        raise TicketError(name, problem)


def parse_instant(name: str, value: object) -> datetime:
    """ISO 8601 instant with an offset (a trailing Z is UTC), as UTC."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise TicketError(
                name, f"{value!r} is not an ISO 8601 instant, e.g. 2026-03-10T09:30:00Z"
            ) from None
    else:
        raise TicketError(name, "is required (ISO 8601 instant, e.g. 2026-03-10T09:30:00Z)")
    if parsed.tzinfo is None:
        raise TicketError(name, f"{value!r} has no UTC offset; add Z or +01:00")
    return parsed.astimezone(UTC)


def check_ticket(ticket: Ticket, now: datetime) -> Ticket:
    """Reject tickets no decision should be made on; returns the ticket for chaining."""
    _text("ticket_id", ticket.ticket_id)
    _text("customer_id", ticket.customer_id)
    _text("product", ticket.product)
    if not ticket.priority:
        raise TicketError("priority", f"is required: one of {', '.join(PRIORITIES)}")
    if ticket.priority not in PRIORITIES:
        raise TicketError(
            "priority",
            f"unknown priority {ticket.priority!r}; expected one of {', '.join(PRIORITIES)}",
        )
    created = ticket.created_at
    if created.tzinfo is None:
        raise TicketError("created_at", "has no UTC offset")
    if created < EARLIEST:
        raise TicketError("created_at", f"{created.isoformat()} is before {EARLIEST.date()}")
    if created > now + MAX_FUTURE_SKEW:
        raise TicketError(
            "created_at", f"{created.isoformat()} is more than a day after now ({now.isoformat()})"
        )
    if ticket.subject is not None:
        _check_text("subject", ticket.subject, TextKind.FREE_TEXT, MAX_SUBJECT)
    if len(ticket.attributes) > MAX_ATTRIBUTES:
        raise TicketError("attributes", f"has more than {MAX_ATTRIBUTES} entries")
    for key, value in ticket.attributes.items():
        where = f"attributes.{key}"
        if not key or len(key) > MAX_ATTRIBUTE_KEY:
            raise TicketError("attributes", f"keys must be 1-{MAX_ATTRIBUTE_KEY} characters")
        if (problem := text_problem(key, TextKind.IDENTIFIER, MAX_ATTRIBUTE_KEY)) is not None:
            raise TicketError("attributes", f"key {key[:40]!a} {problem}")
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise TicketError(where, "must be a string or a number")
        if isinstance(value, float) and not math.isfinite(value):
            raise TicketError(where, "must be a finite number")
        if isinstance(value, str):
            _check_text(where, value, TextKind.FREE_TEXT)
    _check_history(ticket)
    return ticket


def _check_history(ticket: Ticket) -> None:
    """One form of history, bounded. An instant before created_at counts from created_at (a
    pause before the start changes nothing); one after now is not seen yet (replay at any
    `now` of a whole history)."""
    if ticket.events and (ticket.pauses or ticket.first_response_at or ticket.resolved_at):
        raise TicketError(
            "events", "give the history either as events or as pauses (+ first_response_at, "
            "resolved_at), not both")
    for name, items in (("pauses", ticket.pauses), ("events", ticket.events)):
        if len(items) > MAX_EVENTS:
            raise TicketError(name, f"has more than {MAX_EVENTS} entries")
    instants = [("first_response_at", ticket.first_response_at),
                ("resolved_at", ticket.resolved_at)]
    for i, p in enumerate(ticket.pauses):
        instants += [(f"pauses[{i}].from", p.start), (f"pauses[{i}].to", p.end)]
        if p.end is not None and p.end < p.start:
            raise TicketError(f"pauses[{i}].to", "is before its `from`")
    for i, e in enumerate(ticket.events):
        instants.append((f"events[{i}].at", e.at))
        _check_event(f"events[{i}]", e)
    for name, at in instants:
        if at is not None and at.tzinfo is None:
            raise TicketError(name, "has no UTC offset")


def _check_event(where: str, e: TicketEvent) -> None:
    _text(f"{where}.id", e.id)
    if e.type not in EVENT_TYPES:
        raise TicketError(
            f"{where}.type", f"unknown event type {e.type!r}; expected one of "
            f"{', '.join(EVENT_TYPES)}")
    if e.type == "status_changed":
        _text(f"{where}.status", e.status)
    elif e.status is not None:
        raise TicketError(f"{where}.status", "is only for status_changed events")
    if e.type == "priority_changed":
        if e.priority not in PRIORITIES:
            problem = f"unknown priority {e.priority!r}" if e.priority else "is required"
            raise TicketError(
                f"{where}.priority", f"{problem}; expected one of {', '.join(PRIORITIES)}")
    elif e.priority is not None:
        raise TicketError(f"{where}.priority", "is only for priority_changed events")


def _object(name: str, value: object, fields: tuple[str, ...]) -> Mapping:
    if not isinstance(value, Mapping):
        raise TicketError(name, "must be a JSON object")
    unknown = sorted(set(value) - set(fields))
    if unknown:
        raise TicketError(f"{name}.{unknown[0]}",
                          f"unknown field; expected {', '.join(sorted(fields))}")
    return value


def _list(name: str, value: object) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise TicketError(name, "must be a list")
    if len(value) > MAX_EVENTS:
        raise TicketError(name, f"has more than {MAX_EVENTS} entries")
    return value


def _optional_instant(name: str, value: object) -> datetime | None:
    return None if value is None else parse_instant(name, value)


def parse_pauses(value: object, name: str = "pauses") -> tuple[Pause, ...]:
    """`[{"from": instant, "to": instant or absent}]` as Pauses; errors name e.g. pauses[2].to."""
    out = []
    for i, item in enumerate(_list(name, value)):
        where = f"{name}[{i}]"
        item = _object(where, item, ("from", "to"))
        out.append(Pause(parse_instant(f"{where}.from", item.get("from")),
                         _optional_instant(f"{where}.to", item.get("to"))))
    return tuple(out)


def parse_events(value: object, name: str = "events") -> tuple[TicketEvent, ...]:
    """Event JSON (`{"id", "type", "at", "status"?, "priority"?}`) as TicketEvents, in the
    order given; errors name the field, e.g. events[3].at."""
    out = []
    for i, item in enumerate(_list(name, value)):
        where = f"{name}[{i}]"
        item = _object(where, item, EVENT_FIELDS)
        status = item.get("status")
        if status is not None and not isinstance(status, str):
            raise TicketError(f"{where}.status", "must be a string")
        priority = item.get("priority")
        if priority is not None and not isinstance(priority, str):
            raise TicketError(f"{where}.priority", "must be a string")
        event = TicketEvent(
            id=_text(f"{where}.id", item.get("id")),
            type=_text(f"{where}.type", item.get("type")),
            at=parse_instant(f"{where}.at", item.get("at")),
            status=status.lower() if status else status,
            priority=priority,
        )
        _check_event(where, event)
        out.append(event)
    return tuple(out)


def ticket_from_json(obj: object) -> Ticket:
    """Build a Ticket from a decoded JSON object (CLI input, test suites)."""
    if not isinstance(obj, Mapping):
        raise TicketError("ticket", "must be a JSON object")
    known = set(TICKET_FIELDS)
    unknown = sorted(set(obj) - known)
    if unknown:
        raise TicketError(unknown[0], f"unknown field; expected {', '.join(sorted(known))}")
    attributes = obj.get("attributes") or {}
    if not isinstance(attributes, Mapping):
        raise TicketError("attributes", "must be an object of strings and numbers")
    subject = obj.get("subject")
    if subject is not None and not isinstance(subject, str):
        raise TicketError("subject", "must be a string")
    return Ticket(
        ticket_id=_text("ticket_id", obj.get("ticket_id")),
        customer_id=_text("customer_id", obj.get("customer_id")),
        product=_text("product", obj.get("product")),
        priority=_text("priority", obj.get("priority")),
        created_at=parse_instant("created_at", obj.get("created_at")),
        subject=subject,
        attributes=frozen_map(attributes),
        pauses=parse_pauses(obj.get("pauses")),
        first_response_at=_optional_instant("first_response_at", obj.get("first_response_at")),
        resolved_at=_optional_instant("resolved_at", obj.get("resolved_at")),
        events=parse_events(obj.get("events")),
    )
