"""The HTTP face's half of failures: our codes as Connect codes (and back, for metrics)."""

from __future__ import annotations

from connectrpc.code import Code as ConnectCode
from connectrpc.errors import ConnectError
from starlette.responses import JSONResponse, Response

from entitle.server.service.failures import Code, Failure

FIELD_HEADER = "entitle-field"  # response header naming the offending request field
CONNECT_CODES = {
    code: ConnectCode.CANCELED if code is Code.CANCELLED else ConnectCode[code.name]
    for code in Code
    if code is not Code.OK
}
CODE_NAMES = {connect: code.name for code, connect in CONNECT_CODES.items()}
# The Connect protocol's HTTP status of each code (what connectrpc answers unary calls with);
# the routes outside Connect (Server-Sent Events) answer the same.
HTTP_STATUS = {
    Code.CANCELLED: 499, Code.UNKNOWN: 500, Code.INVALID_ARGUMENT: 400,
    Code.DEADLINE_EXCEEDED: 504, Code.NOT_FOUND: 404, Code.ALREADY_EXISTS: 409,
    Code.PERMISSION_DENIED: 403, Code.RESOURCE_EXHAUSTED: 429, Code.FAILED_PRECONDITION: 400,
    Code.ABORTED: 409, Code.OUT_OF_RANGE: 400, Code.UNIMPLEMENTED: 501, Code.INTERNAL: 500,
    Code.UNAVAILABLE: 503, Code.DATA_LOSS: 500, Code.UNAUTHENTICATED: 401,
}


class FieldError(ConnectError):
    """A Connect error that remembers the request field at fault (sent as FIELD_HEADER)."""

    def __init__(self, failure: Failure):
        super().__init__(CONNECT_CODES[failure.code], failure.message)
        self.field = failure.field


def connect_error(failure: Failure) -> FieldError:
    return FieldError(failure)


def error_response(failure: Failure) -> Response:
    """A Connect error body with its HTTP status, for routes outside connectrpc."""
    body = {"code": CONNECT_CODES[failure.code].value, "message": failure.message}
    headers = {FIELD_HEADER: failure.field} if failure.field else None
    return JSONResponse(body, status_code=HTTP_STATUS[failure.code], headers=headers)


def code_name(error: BaseException | None) -> str:
    """The metrics label of a call's outcome: gRPC's code names, as the gRPC face records."""
    if error is None:
        return "OK"
    if isinstance(error, ConnectError):
        return CODE_NAMES[error.code]
    if isinstance(error, Failure):
        return error.code.name
    return "UNKNOWN"
