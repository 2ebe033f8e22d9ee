"""The HTTP listener of one worker: uvicorn on a thread beside the gRPC server.

Every worker binds the same address with SO_REUSEPORT (as the gRPC port), so the kernel
spreads HTTP connections across workers too. TLS uses the gRPC listener's files.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import uvicorn

from entitle.server.faces.http.app import build_http_app, default_mounts
from entitle.server.logs import get_logger
from entitle.server.runtime import Runtime
from entitle.server.service.access import TokenFile, TokensError
from entitle.server.service.calls import EntitlementCalls
from entitle.server.supervisor import reserve_port
from entitle.server.tls import TlsError, read_pem

START_TIMEOUT = 30.0
BACKLOG = 1024


def listening_socket(listen: str) -> socket.socket:
    """A listening socket on HOST:PORT shared by the workers (SO_REUSEPORT)."""
    sock, _ = reserve_port(listen)
    try:
        sock.listen(BACKLOG)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(False)
    return sock


class HttpServer:
    """Bound at construction (raises RuntimeError), served from start() until stop()."""

    def __init__(
        self, runtime: Runtime, calls: EntitlementCalls, mounts: Sequence | None = None
    ):
        config = runtime.config
        try:
            tokens = TokenFile(config.tokens_file) if config.tokens_file else None
            tls = _tls_options(runtime)
            self.socket = listening_socket(config.http_listen)
        except (TokensError, TlsError, OSError, ValueError) as exc:
            raise RuntimeError(str(exc)) from None
        self.port = self.socket.getsockname()[1]
        _route_server_logs()
        self.executor = ThreadPoolExecutor(config.threads, thread_name_prefix="http")
        if mounts is None:
            mounts = default_mounts(runtime, calls, self.executor)
        self.app = build_http_app(runtime, calls, self.executor, tokens=tokens, mounts=mounts)
        self.server = uvicorn.Server(uvicorn.Config(
            self.app,
            loop="uvloop",
            http="httptools",
            lifespan="off",
            log_config=None,
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=config.grace,
            limit_concurrency=config.max_concurrent_rpcs,
            **tls,
        ))
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, name="http", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the HTTP listener did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        """Stop accepting, let calls in flight finish within the grace, then return."""
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join()
        with contextlib.suppress(OSError):
            self.socket.close()
        self.executor.shutdown(wait=False)  # queued stream closes still run


def _route_server_logs() -> None:
    """uvicorn's own warnings and errors (an exception in the app, a bad request line) as
    the worker's JSON log lines; its access log stays off (the metrics count calls)."""
    server_log = logging.getLogger("uvicorn")
    server_log.handlers[:] = get_logger().handlers
    server_log.setLevel(logging.WARNING)
    server_log.propagate = False


def _tls_options(runtime: Runtime) -> dict:
    """uvicorn's TLS settings from --tls-cert/--tls-key/--client-ca (checked as PEM first)."""
    config = runtime.config
    if not config.tls_cert:
        return {}
    read_pem(config.tls_cert, "certificate", "--tls-cert")
    read_pem(config.tls_key, "private key", "--tls-key")
    options = {"ssl_certfile": config.tls_cert, "ssl_keyfile": config.tls_key}
    if config.client_ca:
        read_pem(config.client_ca, "certificate", "--client-ca")
        options |= {"ssl_ca_certs": config.client_ca, "ssl_cert_reqs": ssl.CERT_REQUIRED}
    return options
