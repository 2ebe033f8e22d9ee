"""The HTTP face as one ASGI application: Connect calls, Server-Sent Events, health, mounts.

Paths:
- `POST /entitle.v1.EntitlementService/<Method>` (and `GET` for NO_SIDE_EFFECTS methods):
  every RPC over the Connect protocol, JSON (`application/json`) or binary
  (`application/proto`); WatchAlerts as Connect server streaming (`application/connect+json`).
- `GET /v1/alerts/stream`: WatchAlerts as Server-Sent Events (faces/http/sse.py).
- `GET /healthz`, `GET /readyz`: liveness and readiness (faces/http/health.py).

Mounting more on the listener (the dashboard): pass Starlette routes in `mounts`, e.g.
`Mount("/dashboard", app=...)`. The worker mounts `entitle.server.faces.dashboard` when that
package exists: it must define `mount(runtime, calls, executor) -> starlette.routing.Mount`
(see `default_mounts`). A mounted app authenticates its own way (the dashboard: a session
cookie holding a token) and reads through the same `calls`; to stream alerts it can reuse
`sse.alert_event_stream`.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from concurrent.futures import Executor

from starlette.routing import BaseRoute, Route, Router

from entitle.server.faces.http.codec import codecs
from entitle.server.faces.http.health import Readiness, healthz
from entitle.server.faces.http.service import CallInterceptor, ConnectService
from entitle.server.faces.http.sse import SSE_PATH, sse_endpoint
from entitle.server.runtime import Runtime
from entitle.server.service.access import SERVICE_PREFIX, TokenFile
from entitle.server.service.calls import EntitlementCalls
from entitle.v1.entitle_connect import EntitlementServiceASGIApplication

DASHBOARD_MODULE = "entitle.server.faces.dashboard"


class HttpApp:
    """Dispatches Connect paths straight to connectrpc (the hot path skips routing), the
    rest to a Starlette router."""

    def __init__(self, connect, router: Router, readiness: Readiness):
        self.connect = connect
        self.router = router
        self.readiness = readiness

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(SERVICE_PREFIX):
            await self.connect(scope, receive, send)
        else:
            await self.router(scope, receive, send)


def build_http_app(
    runtime: Runtime,
    calls: EntitlementCalls,
    executor: Executor,
    *,
    tokens: TokenFile | None = None,
    mounts: Sequence[BaseRoute] = (),
) -> HttpApp:
    """The ASGI app of one worker's HTTP listener; `executor` runs the blocking calls."""
    config = runtime.config
    connect = EntitlementServiceASGIApplication(
        ConnectService(calls, executor, config.max_call_seconds),
        interceptors=[CallInterceptor(tokens)],
        read_max_bytes=config.max_message_bytes,
        codecs=codecs(),
    )
    readiness = Readiness(runtime)
    runtime.on_drain.append(readiness.drain)
    routes = [
        Route("/healthz", healthz, methods=["GET", "HEAD"]),
        Route("/readyz", readiness.readyz, methods=["GET", "HEAD"]),
        Route(SSE_PATH, sse_endpoint(calls, tokens, executor), methods=["GET"]),
        *mounts,
    ]
    return HttpApp(connect, Router(routes=routes), readiness)


def default_mounts(runtime: Runtime, calls: EntitlementCalls, executor: Executor) -> list:
    """The dashboard's Mount when its package is installed, else nothing."""
    try:
        module = importlib.import_module(DASHBOARD_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name != DASHBOARD_MODULE:
            raise
        return []
    return [module.mount(runtime, calls, executor)]
