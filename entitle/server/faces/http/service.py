"""The Connect service of the HTTP face: every RPC calls its one implementation on a thread.

Translation only, as the gRPC face: the request message is the same google.protobuf message,
a Failure becomes a Connect error (the field also in the `entitle-field` header), and the
leading interceptor does what gRPC's interceptors do (request id, token roles, metrics)
before the body is read.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor

from connectrpc.code import Code as ConnectCode
from connectrpc.errors import ConnectError
from connectrpc.request import RequestContext

from entitle.server import metrics
from entitle.server.faces.http import threads
from entitle.server.faces.http.auth import WWW_AUTHENTICATE, http_denial
from entitle.server.faces.http.call import HttpCall
from entitle.server.faces.http.status import FIELD_HEADER, code_name, connect_error
from entitle.server.logs import REQUEST_ID, get_logger
from entitle.server.service.access import SERVICE_PREFIX, TokenFile
from entitle.server.service.calls import SERVICE, EntitlementCalls, implementation_name
from entitle.server.service.failures import Code, Failure


class CallInterceptor:
    """Per call, before the body is read: a request id (echoed in `x-request-id`), the token's
    role, and at the end one latency sample labelled as gRPC labels it."""

    def __init__(self, tokens: TokenFile | None):
        self.tokens = tokens

    async def on_start(self, ctx: RequestContext):
        headers = ctx.request_headers
        rid = metrics.request_id_from(((metrics.REQUEST_ID_METADATA,
                                        headers.get(metrics.REQUEST_ID_METADATA)),))
        ctx.response_headers[metrics.REQUEST_ID_METADATA] = rid
        token = REQUEST_ID.set(rid)
        method = SERVICE_PREFIX + ctx.method.name
        failure = http_denial(self.tokens, method, headers.get("authorization"))
        started = time.perf_counter()
        if failure is not None:
            get_logger().info("rpc refused", extra={"method": method, "code": failure.code.name})
            if failure.code is Code.UNAUTHENTICATED:
                ctx.response_headers["www-authenticate"] = WWW_AUTHENTICATE
            metrics.observe_call(method, failure.code.name, time.perf_counter() - started)
            REQUEST_ID.reset(token)
            raise connect_error(failure)
        return method, token, started

    async def on_end(self, state, ctx: RequestContext, error: Exception | None) -> None:
        method, token, started = state
        field = getattr(error, "field", None)  # a FieldError: from the codec or the call
        if field:
            ctx.response_headers[FIELD_HEADER] = field
        metrics.observe_call(method, code_name(error), time.perf_counter() - started)
        REQUEST_ID.reset(token)


class ConnectService:
    """The object connectrpc's generated application binds: one async method per RPC."""

    def __init__(self, calls: EntitlementCalls, executor: Executor, max_call_seconds: float):
        self.calls = calls
        self.executor = executor
        self.max_call_seconds = max_call_seconds


def _unary(rpc_name: str) -> Callable:
    async def handler(self: ConnectService, request, ctx: RequestContext):
        call = HttpCall(ctx, self.max_call_seconds)
        try:
            async with asyncio.timeout(call.cap_remaining()):
                return await threads.run(self.executor, self.calls.handle, rpc_name, request, call)
        except Failure as failure:
            raise connect_error(failure) from None
        except TimeoutError:
            raise ConnectError(
                ConnectCode.DEADLINE_EXCEEDED,
                f"the call took longer than the server's limit of {self.max_call_seconds:g} s",
            ) from None
        finally:
            call.end()

    return handler


def _stream(rpc_name: str) -> Callable:
    async def handler(self: ConnectService, request, ctx: RequestContext) -> AsyncIterator:
        call = HttpCall(ctx)
        try:
            async for message in threads.iterate(
                self.executor, self.calls.handle_stream(rpc_name, request, call)
            ):
                yield message
        except Failure as failure:
            raise connect_error(failure) from None
        finally:
            call.end()

    return handler


for _method in SERVICE.methods:
    _handler = (_stream if _method.server_streaming else _unary)(_method.name)
    _handler.__name__ = implementation_name(_method.name)
    setattr(ConnectService, _handler.__name__, _handler)
