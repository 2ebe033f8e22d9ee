"""Why a call failed, in words every face can translate: a code, a message, the field at fault.

The codes are the gRPC status codes by name (Connect uses the same set in snake case), so each
face maps them one to one: the gRPC face to `grpc.StatusCode`, the HTTP face to Connect error
codes and HTTP statuses. Every exception a call raises becomes a Failure here, once:
expected ones with their own code, anything else as INTERNAL with an error id in the logs.
"""

from __future__ import annotations

import enum
import uuid

from entitle.engine.ticket import TicketError
from entitle.server.logs import get_logger
from entitle.server.service.admission import AdmissionContention
from entitle.server.snapshots import NoPolicyLoaded
from entitle.server.store import StoreError, StoreUnavailable, ValueNotStorable

MAX_MESSAGE_CHARS = 2000


class Code(enum.Enum):
    """The status codes a call can end with (gRPC's names; Connect's in lower case)."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


class Failure(Exception):
    """An expected failure with its code; `field` is the request field path at fault."""

    def __init__(self, code: Code, message: str, field: str | None = None):
        self.code = code
        self.field = field
        text = f"{field}: {message}" if field else message
        self.message = text[:MAX_MESSAGE_CHARS]
        super().__init__(self.message)


def invalid(field: str, message: str) -> Failure:
    return Failure(Code.INVALID_ARGUMENT, message, field)


def not_found(field: str, message: str) -> Failure:
    return Failure(Code.NOT_FOUND, message, field)


def ticket_failure(exc: TicketError, prefix: str = "") -> Failure:
    """INVALID_ARGUMENT naming the field as a path in the request (`ticket.priority`)."""
    text = str(exc)
    head = f"{exc.field}: "
    return invalid(prefix + exc.field, text[len(head):] if text.startswith(head) else text)


class WatchersExhausted(RuntimeError):
    """Too many WatchAlerts streams on this worker (RESOURCE_EXHAUSTED)."""


def classify(exc: BaseException) -> Failure:
    """The failure an exception ends a call with; unexpected ones are logged with an id."""
    if isinstance(exc, Failure):
        return exc
    if isinstance(exc, TicketError):
        return ticket_failure(exc)
    if isinstance(exc, NoPolicyLoaded):
        return Failure(
            Code.FAILED_PRECONDITION,
            "no valid policy bundle is loaded; see ServerInfo.last_reload_error",
        )
    if isinstance(exc, StoreUnavailable | StoreError):  # StoreError: e.g. closed on shutdown
        get_logger().error("store unavailable", exc_info=exc)
        return Failure(Code.UNAVAILABLE, "the usage store is unavailable; retry")
    if isinstance(exc, ValueNotStorable):  # the edge lets none through: a gap to close there
        get_logger().warning("request value the store cannot hold", exc_info=exc)
        return Failure(
            Code.INVALID_ARGUMENT, f"the request holds a value the usage store cannot keep ({exc})"
        )
    if isinstance(exc, AdmissionContention):
        return Failure(Code.ABORTED, str(exc))
    if isinstance(exc, WatchersExhausted):
        return Failure(Code.RESOURCE_EXHAUSTED, str(exc))
    error_id = uuid.uuid4().hex[:16]
    get_logger().error("internal error", exc_info=exc, extra={"error_id": error_id})
    return Failure(Code.INTERNAL, f"internal error (error id {error_id}, see logs)")
