"""Shared by the dashboard tests (no tests here): a worker with its dashboard on a real port."""

from __future__ import annotations

import contextlib
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from test_server_harness import InProcess, free_port, in_process, make_bundle, wait_for

from entitle.server.faces.dashboard import build_dashboard

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "dashboard"
VIEWER, CHECKER = "viewer-token-0123456789", "checker-token-0123456789"


def dashboard_bundle(root: Path) -> Path:
    """The server tests' bundle plus the dashboard's contracts (a hostile customer id)."""
    bundle = make_bundle(root)
    shutil.copy(FIXTURES / "contracts.yaml", bundle / "contracts" / "dashboard-tests.yaml")
    return bundle


def tokens_file(root: Path) -> Path:
    path = root / "tokens"
    path.write_text(f"{VIEWER} viewer\n{CHECKER} checker\n")
    return path


@contextlib.contextmanager
def serve_asgi(app) -> Iterator[int]:
    """`app` served by uvicorn on a thread, on a real port; stopped on exit."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="off",
        timeout_graceful_shutdown=1,
    ))
    thread = threading.Thread(target=server.run, name="dashboard-http", daemon=True)
    thread.start()
    wait_for(lambda: server.started, timeout=20)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(10)


@dataclass
class Served:
    worker: InProcess
    url: str  # the dashboard's base URL, e.g. http://127.0.0.1:PORT/dashboard
    bundle: Path


@contextlib.contextmanager
def served_dashboard(root: Path, store_url: str, *, tokens: bool = True,
                     config: dict | None = None) -> Iterator[Served]:
    """A worker (gRPC on a real port, fixed clock) and its dashboard mounted at /dashboard."""
    from starlette.applications import Starlette
    from starlette.routing import Mount

    bundle = dashboard_bundle(root)
    options = dict(config or {})
    if tokens:
        options["tokens_file"] = str(tokens_file(root))
    with in_process(bundle, store_url, config=options) as worker:
        dashboard = build_dashboard(worker.runtime, worker.calls)
        app = Starlette(routes=[Mount("/dashboard", app=dashboard)])
        with serve_asgi(app) as port:
            yield Served(worker, f"http://127.0.0.1:{port}/dashboard", bundle)
