"""The gRPC server of one worker: the service, health, reflection, and bounded resources."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import grpc
from grpc_health.v1 import health_pb2_grpc
from grpc_health.v1.health import SERVICE_NAME as HEALTH_SERVICE
from grpc_reflection.v1alpha import reflection

from entitle.server.runtime import SERVICE_NAME, Runtime
from entitle.server.servicer import EntitlementServicer
from entitle.v1 import entitle_pb2_grpc

MAX_CONCURRENT_RPCS = 1000  # queued beyond the threads; more get RESOURCE_EXHAUSTED
MIN_SEND_BYTES = 4 * 1024 * 1024  # a full ListContracts page fits


def build_server(runtime: Runtime) -> tuple[grpc.Server, int]:
    """A bound, not yet started server; raises RuntimeError when the address cannot be bound."""
    config = runtime.config
    options = [
        ("grpc.so_reuseport", 1),
        ("grpc.max_receive_message_length", config.max_message_bytes),
        ("grpc.max_send_message_length", max(config.max_message_bytes, MIN_SEND_BYTES)),
    ]
    server = grpc.server(
        ThreadPoolExecutor(max_workers=config.threads, thread_name_prefix="rpc"),
        options=options,
        maximum_concurrent_rpcs=MAX_CONCURRENT_RPCS,
    )
    entitle_pb2_grpc.add_EntitlementServiceServicer_to_server(EntitlementServicer(runtime), server)
    health_pb2_grpc.add_HealthServicer_to_server(runtime.health, server)
    names = (SERVICE_NAME, HEALTH_SERVICE, reflection.SERVICE_NAME)
    reflection.enable_server_reflection(names, server)
    port = server.add_insecure_port(config.listen)
    return server, port
