"""Shared by the server tests (no tests here): bundles, tickets, in-process and real servers."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from entitle.server.clock import FixedClock
from entitle.server.config import FAKE_NOW_ENV, ServeConfig
from entitle.server.faces.grpc.server import build_server
from entitle.server.runtime import Runtime
from entitle.server.service.calls import EntitlementCalls
from entitle.server.service.wire import timestamp
from entitle.v1 import entitle_pb2 as pb
from entitle.v1 import entitle_pb2_grpc

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_POLICIES = REPO / "policies"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "server"
NOW = datetime(2026, 6, 15, 10, 0, tzinfo=UTC)  # a Monday; see tests/fixtures/server
SERVICE = "entitle.v1.EntitlementService"
READY_TIMEOUT = 60.0


def make_bundle(root: Path) -> Path:
    """A private copy of the example bundle plus the test contracts; returns its directory."""
    bundle = root / "policies"
    shutil.copytree(EXAMPLE_POLICIES, bundle)
    shutil.copy(FIXTURES / "contracts.yaml", bundle / "contracts" / "server-tests.yaml")
    return bundle


def ticket(
    ticket_id: str,
    customer_id: str = "globex",
    product: str = "mail",
    priority: str = "high",
    created_at: datetime = NOW,
    **attributes: str | float,
) -> pb.Ticket:
    msg = pb.Ticket(
        ticket_id=ticket_id,
        customer_id=customer_id,
        product=product,
        priority=priority,
        created_at=timestamp(created_at),
    )
    for key, value in attributes.items():
        if isinstance(value, str):
            msg.attributes[key].string_value = value
        else:
            msg.attributes[key].number_value = value
    return msg


def stub_for(port: int) -> tuple[grpc.Channel, entitle_pb2_grpc.EntitlementServiceStub]:
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    return channel, entitle_pb2_grpc.EntitlementServiceStub(channel)


def health_status(channel: grpc.Channel, service: str = "") -> tuple[int, dict[str, str]]:
    """The health status and its trailing details."""
    check = health_pb2_grpc.HealthStub(channel).Check
    reply, call = check.with_call(health_pb2.HealthCheckRequest(service=service), timeout=5)
    return reply.status, dict(call.trailing_metadata() or ())


def wait_for(predicate, timeout: float = 20.0, interval: float = 0.05):
    """Poll until `predicate()` is truthy; return its value (fails the test on timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


@dataclass
class InProcess:
    runtime: Runtime
    calls: EntitlementCalls
    server: grpc.Server
    port: int
    channel: grpc.Channel
    stub: entitle_pb2_grpc.EntitlementServiceStub
    http: object | None = None  # faces.http.server.HttpServer, with http=True

    @property
    def base_url(self) -> str:
        """The HTTP face's root, e.g. http://127.0.0.1:PORT (with http=True)."""
        return f"http://127.0.0.1:{self.http.port}"


@contextlib.contextmanager
def in_process(
    bundle: Path, store_url: str, *, now: datetime = NOW, reload_interval: float = 0,
    config: dict | None = None, http: bool = False,
) -> Iterator[InProcess]:
    """One worker in this process, on a real port, with a fixed clock; `config` overrides
    ServeConfig fields (e.g. tls_cert, tokens_file, max_message_bytes). With `http`, the
    HTTP face listens too, on a port of its own, answering with the same calls."""
    config = ServeConfig(
        policies=str(bundle),
        store_url=store_url,
        listen="127.0.0.1:0",
        http_listen="127.0.0.1:0" if http else "",
        reload_interval=reload_interval,
        grace=1.0,
        **(config or {}),
    )
    runtime = Runtime.open(config, FixedClock(now))
    calls = EntitlementCalls(runtime)
    server, port = build_server(runtime, calls)
    http_server = None
    if http:
        from entitle.server.faces.http.server import HttpServer

        http_server = HttpServer(runtime, calls)
    runtime.start()
    server.start()
    if http_server is not None:
        http_server.start()
    channel, stub = stub_for(port)
    try:
        yield InProcess(runtime, calls, server, port, channel, stub, http_server)
    finally:
        channel.close()
        runtime.begin_shutdown()
        stopped = server.stop(None)
        if http_server is not None:
            http_server.stop()
        stopped.wait()
        runtime.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """`python -m entitle serve` as a real process group, for crash and signal tests."""

    def __init__(
        self, bundle: Path, store_url: str, log: Path, *, workers: int = 1, port: int = 0,
        reload_interval: float = 0, now: datetime = NOW, extra_args: tuple[str, ...] = (),
    ):
        self.bundle, self.store_url, self.log = bundle, store_url, log
        self.extra_args = tuple(extra_args)  # more `entitle serve` flags
        self.workers, self.reload_interval, self.now = workers, reload_interval, now
        self.port = port or free_port()
        # Its own HTTP port too (never the default 8080: tests run side by side).
        own_http = not {"--http", "--no-http"} & set(self.extra_args)
        self.http_port = free_port() if own_http else None
        self.proc: subprocess.Popen | None = None

    def start(self) -> ServerProcess:
        env = {**os.environ, FAKE_NOW_ENV: self.now.isoformat()}
        cmd = [
            sys.executable, "-m", "entitle", "serve",
            "--policies", str(self.bundle), "--store", self.store_url,
            "--listen", f"127.0.0.1:{self.port}", "--workers", str(self.workers),
            "--reload-interval", str(self.reload_interval), "--grace", "5",
            *(("--http", f"127.0.0.1:{self.http_port}") if self.http_port else ()),
            *self.extra_args,
        ]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                cmd, env=env, stderr=log, stdout=log, start_new_session=True, cwd=REPO
            )
        return self

    def wait_ready(self) -> ServerProcess:
        """Until every worker is serving: health SERVING on as many connections."""
        def ready() -> bool:
            assert self.proc.poll() is None, f"server exited:\n{self.log.read_text()[-3000:]}"
            pids = set()
            for _ in range(self.workers * 4):
                channel, stub = stub_for(self.port)
                with channel:
                    try:
                        status, _ = health_status(channel)
                        if status != health_pb2.HealthCheckResponse.SERVING:
                            return False
                        pids.add(stub.ServerInfo(pb.ServerInfoRequest(), timeout=5).pid)
                    except grpc.RpcError:
                        return False
            return len(pids) >= self.workers

        wait_for(ready, timeout=READY_TIMEOUT, interval=0.2)
        return self

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def kill9(self) -> None:
        """Every process of the server at once, as a machine crash would."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
            raise

    def __enter__(self) -> ServerProcess:
        return self.start().wait_ready()

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            self.kill9()
