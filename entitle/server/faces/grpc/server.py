"""The gRPC server of one worker: the service, health, reflection, and bounded resources."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import grpc
from grpc_health.v1 import health_pb2_grpc
from grpc_health.v1.health import SERVICE_NAME as HEALTH_SERVICE
from grpc_reflection.v1alpha import reflection

from entitle.server.faces.grpc.health import PolicyHealth
from entitle.server.faces.grpc.interceptors import SecurityInterceptor, ServerInterceptor
from entitle.server.faces.grpc.servicer import EntitlementServicer
from entitle.server.runtime import Runtime
from entitle.server.service.access import TokenFile, TokensError
from entitle.server.service.calls import SERVICE, EntitlementCalls
from entitle.server.tls import TlsError, server_credentials
from entitle.server.webhooks import webhooks_of
from entitle.v1 import entitle_pb2_grpc

MIN_SEND_BYTES = 4 * 1024 * 1024  # a full ListContracts page fits


def build_server(
    runtime: Runtime, calls: EntitlementCalls | None = None
) -> tuple[grpc.Server, int]:
    """A bound, not yet started server answering with `calls` (made here when None: tests);
    raises RuntimeError when the address cannot be bound."""
    config = runtime.config
    options = [
        ("grpc.so_reuseport", 1),
        ("grpc.max_receive_message_length", config.max_message_bytes),
        ("grpc.max_send_message_length", max(config.max_message_bytes, MIN_SEND_BYTES)),
        ("grpc.max_concurrent_streams", config.max_streams),
    ]
    try:
        tokens = TokenFile(config.tokens_file) if config.tokens_file else None
        credentials = server_credentials(config)
    except (TokensError, TlsError) as exc:
        raise RuntimeError(str(exc)) from None
    server = grpc.server(
        ThreadPoolExecutor(max_workers=config.threads, thread_name_prefix="rpc"),
        options=options,
        maximum_concurrent_rpcs=config.max_concurrent_rpcs,  # beyond: RESOURCE_EXHAUSTED
        interceptors=[
            ServerInterceptor(),  # request ids, latency metrics
            SecurityInterceptor(tokens, config.max_call_seconds),  # tokens, deadline cap
        ],
    )
    calls = calls or EntitlementCalls(runtime)
    entitle_pb2_grpc.add_EntitlementServiceServicer_to_server(EntitlementServicer(calls), server)
    webhooks = webhooks_of(runtime)
    health = PolicyHealth((SERVICE.full_name,), webhooks.status if webhooks else None)
    reloader = runtime.reloader
    reloader.subscribe(lambda _outcome: health.update(runtime.holder.serving(), reloader.status))
    health.update(runtime.holder.serving(), reloader.status)
    runtime.on_drain.append(health.shutdown)
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    names = (SERVICE.full_name, HEALTH_SERVICE, reflection.SERVICE_NAME)
    reflection.enable_server_reflection(names, server)
    if credentials is None:
        port = server.add_insecure_port(config.listen)
    else:
        port = server.add_secure_port(config.listen, credentials)
    return server, port
