"""WatchAlerts as Server-Sent Events: `GET /v1/alerts/stream`, for browsers and tools that
read `text/event-stream` (EventSource reconnects by itself and resumes with Last-Event-ID).

Each alert is one event: `id:` its cursor, `event: alert`, `data:` the Alert in the JSON form
of every other answer (service/jsonwire). An idle stream sends a comment line every
HEARTBEAT_SECONDS so proxies keep it open and clients notice a dead one. A client resumes
where it stopped by sending `Last-Event-ID` (EventSource does) or `after_cursor`: nothing is
missed, nothing repeated.

`alert_event_stream` is the whole stream as bytes, for any face that authenticates its own
way. The dashboard mounts it behind its session cookie: `call = HttpCall()`, `body = await
alert_event_stream(calls, cursor, filter, call)`, stream `body`, and `call.end()` when the
response ends. `sse_endpoint` is the public route, with the tokens (Bearer or Basic) of
every other HTTP call.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from concurrent.futures import Executor

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from entitle.server import metrics
from entitle.server.faces.http import threads
from entitle.server.faces.http.auth import WWW_AUTHENTICATE, http_denial
from entitle.server.faces.http.call import HttpCall
from entitle.server.faces.http.status import error_response
from entitle.server.service import jsonwire
from entitle.server.service.access import SERVICE_PREFIX, TokenFile
from entitle.server.service.calls import Call, EntitlementCalls
from entitle.server.service.failures import Code, Failure, invalid
from entitle.v1 import entitle_pb2 as pb

SSE_PATH = "/v1/alerts/stream"
HEARTBEAT_SECONDS = 15.0
RETRY_MS = 3000  # how long EventSource waits before it reconnects
MAX_CURSOR = 2**63 - 1  # the store's cursors are signed 64-bit integers
KIND_NAMES = tuple(v.name for v in pb.AlertKind.DESCRIPTOR.values if v.number)
METHOD = SERVICE_PREFIX + "WatchAlerts"  # the role needed, and the metrics label


def event(alert: pb.Alert) -> bytes:
    """One alert as an SSE event: the cursor is its id."""
    return b"id: %d\nevent: alert\ndata: %s\n\n" % (alert.cursor, jsonwire.to_json(alert))


async def alert_event_stream(
    calls: EntitlementCalls,
    after_cursor: int,
    alert_filter: pb.AlertFilter,
    call: Call,
    *,
    executor: Executor | None = None,
    heartbeat: float | None = None,
) -> AsyncIterator[bytes]:
    """The alerts after `after_cursor` matching the filter, then new ones, as SSE bytes.

    Await it, then iterate what it returns: awaiting checks the request and raises Failure
    when it is bad (unknown kind, text too long), so the caller can answer with an error
    status before the first byte of a stream. The stream
    ends when `call.is_active()` turns false (tell it with the call's callbacks) or the
    worker drains. Runs the blocking store reads on `executor` (None: the loop's default);
    a comment line goes out after `heartbeat` idle seconds (default HEARTBEAT_SECONDS).
    """
    request = pb.WatchAlertsRequest(after_cursor=after_cursor, filter=alert_filter)
    messages = await threads.run(executor, calls.open_stream, "WatchAlerts", request, call)
    return _events(messages, executor, heartbeat or HEARTBEAT_SECONDS)


async def _events(messages, executor: Executor | None, heartbeat: float) -> AsyncIterator[bytes]:
    yield b"retry: %d\n\n" % RETRY_MS
    async for item in threads.iterate(executor, messages, tick=heartbeat):
        yield b": heartbeat\n\n" if item is threads.TICK else event(item.alert)


def parse_request(request: Request) -> tuple[int, pb.AlertFilter]:
    """The cursor (Last-Event-ID wins over after_cursor) and filter of a stream request."""
    params = request.query_params
    resume = request.headers.get("last-event-id")
    cursor = _cursor("Last-Event-ID", resume) if resume else _cursor(
        "after_cursor", params.get("after_cursor", "")
    )
    kinds = []
    for value in params.getlist("kinds"):
        for name in filter(None, (part.strip().upper() for part in value.split(","))):
            full = name if name.startswith("ALERT_KIND_") else f"ALERT_KIND_{name}"
            if full not in KIND_NAMES:
                known = ", ".join(k.removeprefix("ALERT_KIND_") for k in KIND_NAMES)
                raise invalid("kinds", f"unknown alert kind {name!r} (one of {known})")
            kinds.append(pb.AlertKind.Value(full))
    return cursor, pb.AlertFilter(
        kinds=kinds,
        customer_id=params.get("customer_id", ""),
        contract_id=params.get("contract_id", ""),
    )


def _cursor(name: str, text: str) -> int:
    if not text:
        return 0
    if not text.isdigit() or int(text) > MAX_CURSOR:
        raise invalid(name, f"must be a cursor (a whole number 0 to {MAX_CURSOR}), got {text!r}")
    return int(text)


def sse_endpoint(calls: EntitlementCalls, tokens: TokenFile | None, executor: Executor):
    """The Starlette endpoint of SSE_PATH: tokens as on every call, a request id, metrics."""

    async def endpoint(request: Request) -> Response:
        rid = metrics.request_id_from(
            ((metrics.REQUEST_ID_METADATA, request.headers.get(metrics.REQUEST_ID_METADATA)),)
        )
        started = time.perf_counter()
        failure = http_denial(tokens, METHOD, request.headers.get("authorization"))
        call = HttpCall()
        try:
            if failure is not None:
                raise failure
            cursor, alert_filter = parse_request(request)
            body = await alert_event_stream(calls, cursor, alert_filter, call, executor=executor)
        except Failure as failure:
            call.end()
            metrics.observe_call(METHOD, failure.code.name, time.perf_counter() - started)
            response = error_response(failure)
            response.headers[metrics.REQUEST_ID_METADATA] = rid
            if failure.code is Code.UNAUTHENTICATED:
                response.headers["www-authenticate"] = WWW_AUTHENTICATE
            return response
        return StreamingResponse(
            _ending(body, call, started),
            media_type="text/event-stream",
            headers={"cache-control": "no-store", "x-accel-buffering": "no",
                     metrics.REQUEST_ID_METADATA: rid},
        )

    return endpoint


async def _ending(body: AsyncIterator[bytes], call: HttpCall, started: float):
    """The body, then the call's end: its stream wakes and closes, its sample is recorded."""
    code = "OK"
    try:
        async for chunk in body:
            yield chunk
    except Failure as failure:  # after the first byte: the stream just ends
        code = failure.code.name
    except BaseException:
        code = "CANCELLED"
        raise
    finally:
        call.end()
        metrics.observe_call(METHOD, code, time.perf_counter() - started)
