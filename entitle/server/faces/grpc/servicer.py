"""The gRPC face of EntitlementService: each RPC calls its implementation and maps failures."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import grpc

from entitle.server.faces.grpc.status import abort
from entitle.server.service.calls import SERVICE, EntitlementCalls, implementation_name
from entitle.server.service.failures import Code, Failure, classify
from entitle.v1 import entitle_pb2_grpc


class EntitlementServicer(entitle_pb2_grpc.EntitlementServiceServicer):
    """Translation only: the ServicerContext is the call, a Failure is a status."""

    def __init__(self, calls: EntitlementCalls):
        self.calls = calls


def _unary(name: str) -> Callable:
    def handler(self: EntitlementServicer, request, context: grpc.ServicerContext):
        remaining = context.time_remaining()
        if remaining is not None and remaining <= 0:
            failure = Failure(Code.DEADLINE_EXCEEDED, "deadline expired before start")
        else:
            try:
                return getattr(self.calls, name)(request, context)
            except Exception as exc:
                failure = classify(exc)
        abort(context, failure)

    return handler


def _stream(name: str) -> Callable:
    def handler(self: EntitlementServicer, request, context: grpc.ServicerContext) -> Iterator:
        try:
            yield from getattr(self.calls, name)(request, context)
        except Exception as exc:  # mapped to a status like every unary call's failure
            abort(context, classify(exc))

    return handler


for _method in SERVICE.methods:
    _make = _stream if _method.server_streaming else _unary
    _handler = _make(implementation_name(_method.name))
    _handler.__name__ = _method.name
    setattr(EntitlementServicer, _method.name, _handler)
