"""gRPC interceptors: request ids and latency metrics, bearer-token roles, the deadline cap."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

import grpc

from entitle.server import metrics
from entitle.server.faces.grpc.status import GRPC_CODES
from entitle.server.logs import REQUEST_ID, get_logger
from entitle.server.service.access import TokenFile, bearer, denial


def _code_of(context: grpc.ServicerContext, failed: bool) -> str:
    code = context.code()
    if code is None:
        return "UNKNOWN" if failed else "OK"
    if isinstance(code, grpc.StatusCode):
        return code.name
    return str(code)


def _stream_code_of(context: grpc.ServicerContext, failed: bool, closed: bool) -> str:
    """A stream the client ended (cancel, deadline, closed channel) is not a server error.

    Clients end streams that way routinely (`entitle call` after its reflection lookups,
    `entitle alerts --follow` on Ctrl-C); the handler then returns, raises, or is closed at
    its `yield` (GeneratorExit), without a status of its own.
    """
    if context.code() is None and (closed or not context.is_active()):
        left = context.time_remaining()
        expired = left is not None and left <= metrics.DEADLINE_SLACK
        return "DEADLINE_EXCEEDED" if expired else "CANCELLED"
    return _code_of(context, failed)


class ServerInterceptor(grpc.ServerInterceptor):
    """Per RPC: a request id (metadata and logs) and a latency sample by method and code.

    Unary calls return the id in trailing metadata, merged with the handler's: sending
    initial metadata early costs the server an extra completion-queue round (a third of an
    empty call's throughput, measured). Streams send it in initial metadata, when they open.
    """

    def __init__(self) -> None:
        # method -> (the inner handler, its wrapping): rebuilt only when the inner handler
        # changes (a refused call gets a one-off handler from the security interceptor).
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    def intercept_service(self, continuation, handler_call_details):
        # The interceptors after this one choose the handler, and log refusals (`rpc refused`)
        # while they do: on gRPC's polling thread, before any handler runs.
        rid = metrics.request_id_from(handler_call_details.invocation_metadata)
        token = REQUEST_ID.set(rid)
        try:
            handler = continuation(handler_call_details)
        finally:
            REQUEST_ID.reset(token)
        if handler is None:
            return None
        method = handler_call_details.method
        hit = self._wrapped.get(method)
        if hit is not None and hit[0] is handler:
            return hit[1]
        self._wrapped[method] = (handler, self._wrap(method, handler))
        # A handler not seen before may be a refusal's one-off: this call answers with the id
        # its refusal was logged with.
        return self._wrap(method, handler, rid)

    def _wrap(self, method: str, handler: grpc.RpcMethodHandler,
              rid: str | None = None) -> grpc.RpcMethodHandler:
        """`handler` timed and given a request id: `rid`, or else one per call."""
        if handler.unary_unary is not None:
            return handler._replace(unary_unary=self._unary(method, handler.unary_unary, rid))
        if handler.unary_stream is not None:
            return handler._replace(unary_stream=self._stream(method, handler.unary_stream, rid))
        if handler.stream_unary is not None:
            return handler._replace(stream_unary=self._unary(method, handler.stream_unary, rid))
        return handler._replace(stream_stream=self._stream(method, handler.stream_stream, rid))

    @staticmethod
    def _end(method: str, code: str, token, started: float) -> None:
        metrics.observe_call(method, code, time.perf_counter() - started)
        REQUEST_ID.reset(token)

    def _unary(self, method: str, behavior: Callable, fixed_rid: str | None) -> Callable:
        def wrapped(request, context):
            rid = fixed_rid or metrics.request_id_from(context.invocation_metadata())
            token, started = REQUEST_ID.set(rid), time.perf_counter()
            failed = True
            try:
                response = behavior(request, context)
                failed = False
                return response
            finally:
                with contextlib.suppress(Exception):
                    trailers = context.trailing_metadata() or ()
                    context.set_trailing_metadata((*trailers, (metrics.REQUEST_ID_METADATA, rid)))
                self._end(method, _code_of(context, failed), token, started)

        return wrapped

    def _stream(self, method: str, behavior: Callable, fixed_rid: str | None) -> Callable:
        def wrapped(request, context):
            rid = fixed_rid or metrics.request_id_from(context.invocation_metadata())
            with contextlib.suppress(Exception):  # a handler may already have sent it
                context.send_initial_metadata(((metrics.REQUEST_ID_METADATA, rid),))
            token, started = REQUEST_ID.set(rid), time.perf_counter()
            failed, closed = True, False
            try:
                yield from behavior(request, context)
                failed = False
            except GeneratorExit:  # gRPC dropped the stream: the client is gone
                closed = True
                raise
            finally:
                self._end(method, _stream_code_of(context, failed, closed), token, started)

        return wrapped


class CappedContext:
    """A ServicerContext whose time_remaining() never exceeds the server's per-call cap."""

    def __init__(self, context: grpc.ServicerContext, deadline: float):
        self._context = context
        self._deadline = deadline  # time.monotonic() by which the call should be done

    def time_remaining(self) -> float:
        cap = self._deadline - time.monotonic()
        remaining = self._context.time_remaining()
        return cap if remaining is None else min(remaining, cap)

    def __getattr__(self, name: str):
        return getattr(self._context, name)


class SecurityInterceptor(grpc.ServerInterceptor):
    """Bearer-token roles (when `tokens` is given) and the per-call deadline cap.

    The cap applies to unary-response methods: their handlers see a time_remaining() of at
    most `max_call_seconds`, so the `rpc` wrapper and the store give up by then, and a reply
    that is ready only after the cap is replaced by DEADLINE_EXCEEDED. Server streams
    (WatchAlerts) are subscriptions and end with the client's own deadline or cancellation.
    """

    def __init__(self, tokens: TokenFile | None = None, max_call_seconds: float = 0):
        self.tokens = tokens
        self.max_call_seconds = max_call_seconds
        # Interceptors run on every call: the wrapped handler of an allowed call depends only
        # on the method, so it is built once per method.
        self._allowed: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        denial = self._denial(method, handler_call_details.invocation_metadata)
        if denial is not None:
            code, message = denial
            get_logger().info("rpc refused", extra={"method": method, "code": code.name})
            return self._wrap(handler, method, _deny(code, message))
        hit = self._allowed.get(method)
        if hit is not None and hit[0] is handler:
            return hit[1]
        behavior = next(getattr(handler, k) for k in _KINDS if getattr(handler, k) is not None)
        if self.max_call_seconds > 0 and not handler.response_streaming:
            behavior = self._capped(behavior)
        wrapped = self._wrap(handler, method, behavior)
        self._allowed[method] = (handler, wrapped)
        return wrapped

    @staticmethod
    def _wrap(handler: grpc.RpcMethodHandler, method: str,
              behavior: Callable) -> grpc.RpcMethodHandler:
        kind = next(k for k in _KINDS if getattr(handler, k) is not None)
        if handler.request_deserializer is None:
            return handler._replace(**{kind: behavior})
        return handler._replace(
            **{kind: _checked(behavior, method, handler.request_streaming)},
            request_deserializer=_lenient(handler.request_deserializer),
        )

    def _denial(self, method: str, metadata) -> tuple[grpc.StatusCode, str] | None:
        failure = denial(self.tokens, method, bearer(metadata))
        return None if failure is None else (GRPC_CODES[failure.code], failure.message)

    def _capped(self, behavior: Callable) -> Callable:
        cap = self.max_call_seconds

        def wrapped(request, context):
            deadline = time.monotonic() + cap
            reply = behavior(request, CappedContext(context, deadline))
            if time.monotonic() > deadline:
                context.abort(
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                    f"the call took longer than the server's limit of {cap:g} s",
                )
            return reply

        return wrapped


def _deny(code: grpc.StatusCode, message: str) -> Callable:
    def deny(request, context):
        context.abort(code, message)

    return deny


_KINDS = ("unary_unary", "unary_stream", "stream_unary", "stream_stream")


class _Undecodable:
    """Stands for a request that did not parse (see _lenient)."""


_UNDECODABLE = _Undecodable()


def _lenient(deserialize: Callable) -> Callable:
    """A request deserializer that returns _UNDECODABLE instead of raising.

    When grpcio's own deserialization fails it answers INTERNAL but leaves the HTTP/2 stream
    counted as open (grpcio 1.85): with grpc.max_concurrent_streams set, a client sending
    that many malformed requests would wedge its connection. Handled here, the call ends
    through the handler like any other refusal, as INVALID_ARGUMENT.
    """

    def lenient(data: bytes):
        try:
            return deserialize(data)
        except Exception:
            return _UNDECODABLE

    return lenient


def _undecodable(context: grpc.ServicerContext, method: str) -> None:
    context.abort(
        grpc.StatusCode.INVALID_ARGUMENT,
        f"the request is not a valid protobuf message for {method.rsplit('/', 1)[-1]}",
    )


def _checked(behavior: Callable, method: str, request_streaming: bool) -> Callable:
    if request_streaming:
        def streamed(requests, context):
            def each():
                for request in requests:
                    if request is _UNDECODABLE:
                        _undecodable(context, method)
                    yield request

            return behavior(each(), context)

        return streamed

    def unary(request, context):
        if request is _UNDECODABLE:
            _undecodable(context, method)
        return behavior(request, context)

    return unary
