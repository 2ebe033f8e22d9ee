"""The gRPC face of EntitlementService: each RPC calls its implementation and maps failures."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import grpc

from entitle.server.faces.grpc.status import abort
from entitle.server.service.calls import SERVICE, EntitlementCalls
from entitle.server.service.failures import Failure
from entitle.v1 import entitle_pb2_grpc


class EntitlementServicer(entitle_pb2_grpc.EntitlementServiceServicer):
    """Translation only: the ServicerContext is the call, a Failure is a status."""

    def __init__(self, calls: EntitlementCalls):
        self.calls = calls


def _unary(rpc_name: str) -> Callable:
    def handler(self: EntitlementServicer, request, context: grpc.ServicerContext):
        try:
            return self.calls.handle(rpc_name, request, context)
        except Failure as failure:
            abort(context, failure)

    return handler


def _stream(rpc_name: str) -> Callable:
    def handler(self: EntitlementServicer, request, context: grpc.ServicerContext) -> Iterator:
        try:
            yield from self.calls.handle_stream(rpc_name, request, context)
        except Failure as failure:
            abort(context, failure)

    return handler


for _method in SERVICE.methods:
    _make = _stream if _method.server_streaming else _unary
    _handler = _make(_method.name)
    _handler.__name__ = _method.name
    setattr(EntitlementServicer, _method.name, _handler)
