"""gRPC status for every failure: named fields for bad input, an error id instead of a traceback."""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Callable

import grpc

from entitle.engine.ticket import TicketError
from entitle.server.admission import AdmissionContention
from entitle.server.logs import get_logger
from entitle.server.snapshots import NoPolicyLoaded
from entitle.server.store import StoreUnavailable

FIELD_METADATA = "entitle-field"  # trailing metadata naming the offending request field
MAX_MESSAGE_CHARS = 2000
MAX_METADATA_CHARS = 1024
_UNPRINTABLE = re.compile(r"[^\x20-\x7e]")


def metadata_text(text: str) -> str:
    """Text fit for an ASCII metadata value: one line, printable, bounded."""
    one_line = " | ".join(part.strip() for part in text.splitlines() if part.strip())
    return _UNPRINTABLE.sub("?", one_line)[:MAX_METADATA_CHARS]


class RpcFailure(Exception):
    """An expected failure with its status; `field` is the request field path at fault."""

    def __init__(self, code: grpc.StatusCode, message: str, field: str | None = None):
        self.code = code
        self.field = field
        text = f"{field}: {message}" if field else message
        self.message = text[:MAX_MESSAGE_CHARS]
        super().__init__(self.message)


def invalid(field: str, message: str) -> RpcFailure:
    return RpcFailure(grpc.StatusCode.INVALID_ARGUMENT, message, field)


def not_found(field: str, message: str) -> RpcFailure:
    return RpcFailure(grpc.StatusCode.NOT_FOUND, message, field)


def ticket_failure(exc: TicketError, prefix: str = "") -> RpcFailure:
    """INVALID_ARGUMENT naming the field as a path in the request (`ticket.priority`)."""
    text = str(exc)
    head = f"{exc.field}: "
    return invalid(prefix + exc.field, text[len(head):] if text.startswith(head) else text)


def _classify(exc: Exception) -> RpcFailure:
    if isinstance(exc, RpcFailure):
        return exc
    if isinstance(exc, TicketError):
        return ticket_failure(exc)
    if isinstance(exc, NoPolicyLoaded):
        return RpcFailure(
            grpc.StatusCode.FAILED_PRECONDITION,
            "no valid policy bundle is loaded; see ServerInfo.last_reload_error",
        )
    if isinstance(exc, StoreUnavailable):
        get_logger().error("store unavailable", exc_info=exc)
        return RpcFailure(grpc.StatusCode.UNAVAILABLE, "the usage store is unavailable; retry")
    if isinstance(exc, AdmissionContention):
        return RpcFailure(grpc.StatusCode.ABORTED, str(exc))
    error_id = uuid.uuid4().hex[:16]
    get_logger().error("internal error", exc_info=exc, extra={"error_id": error_id})
    return RpcFailure(grpc.StatusCode.INTERNAL, f"internal error (error id {error_id}, see logs)")


def classify(exc: Exception) -> RpcFailure:
    """The status an exception ends a call with (streams map their failures with it)."""
    return _classify(exc)


def rpc(method: Callable) -> Callable:
    """Servicer method wrapper: skips expired calls, turns every exception into a status."""

    @functools.wraps(method)
    def handler(self, request, context: grpc.ServicerContext):
        remaining = context.time_remaining()
        if remaining is not None and remaining <= 0:
            failure = RpcFailure(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline expired before start")
        else:
            try:
                return method(self, request, context)
            except Exception as exc:
                failure = _classify(exc)
        if failure.field:
            context.set_trailing_metadata(((FIELD_METADATA, metadata_text(failure.field)),))
        context.abort(failure.code, failure.message)

    return handler
