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
TICKET_FIELDS = (
    "ticket_id", "customer_id", "product", "priority", "created_at", "subject", "attributes"
)


class TicketError(ValueError):
    """A ticket field is missing or wrong; `field` names it for the caller's error status."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(f"{field}: {message}")


@dataclass(frozen=True)
class Ticket:
    ticket_id: str
    customer_id: str
    product: str
    priority: str
    created_at: datetime
    subject: str | None = None
    attributes: Mapping[str, str | float] = field(default_factory=frozen_map)


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
    return ticket


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
    )
