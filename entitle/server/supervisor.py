"""The parent of `entitle serve`: runs N worker processes on one port (and one HTTP port),
restarts crashed ones.

Threads do not add throughput (the rules engine holds the GIL), processes do: every worker
binds the same address with SO_REUSEPORT and the kernel spreads connections across them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

from entitle.server.config import ServeConfig, split_listen
from entitle.server.logs import get_logger
from entitle.server.store.base import redact

EXIT_CONFIG = 78  # a worker's "your configuration is wrong": restarting will not help
POLL_SECONDS = 0.1
HEALTHY_AFTER = 5.0  # a worker that lived this long resets the restart back-off
MAX_BACKOFF = 5.0
SUPERVISOR_ENV = "ENTITLE_SUPERVISOR_PID"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # where workers write metric samples


@dataclass
class _Worker:
    index: int
    proc: subprocess.Popen
    started: float
    crashes: int = 0


def reserve_port(listen: str) -> tuple[socket.socket, str]:
    """Bind (not listen) the address with SO_REUSEPORT: fails early if it is taken by another
    program, and turns port 0 into a concrete port every worker then shares."""
    host, port = split_listen(listen)
    family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind(addr)
    except OSError:
        sock.close()
        raise
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    return sock, f"{shown}:{bound}"


class Supervisor:
    """Starts the workers, forwards SIGHUP/SIGTERM/SIGINT, restarts a crashed worker."""

    def __init__(self, config: ServeConfig):
        self.config = config
        self.workers: dict[int, _Worker] = {}
        self.stopping = False
        self.exit_code = 0
        self._pending: list[int] = []  # signals to forward, handled on the main loop
        self.metrics_dir: str | None = None  # PROMETHEUS_MULTIPROC_DIR of the workers
        self.metrics_server = None  # serves the workers' metrics on --metrics-listen

    def _spawn(self, index: int, crashes: int = 0) -> None:
        cmd = [sys.executable, "-m", "entitle.server.worker", self.config.to_json(), str(index)]
        env = {**os.environ, SUPERVISOR_ENV: str(os.getpid())}
        if self.metrics_dir:
            env[MULTIPROC_ENV] = self.metrics_dir
        proc = subprocess.Popen(cmd, env=env)
        self.workers[index] = _Worker(index, proc, time.monotonic(), crashes)
        get_logger().info("worker started", extra={"worker": index, "worker_pid": proc.pid})

    def _on_signal(self, signum: int, _frame: object) -> None:
        self._pending.append(signum)

    def _forward(self, signum: int) -> None:
        for w in self.workers.values():
            if w.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    w.proc.send_signal(signum)

    def run(self) -> int:
        try:
            try:
                self._start_metrics()
            except (OSError, ValueError) as exc:
                get_logger().error(
                    "cannot serve metrics",
                    extra={"metrics_listen": self.config.metrics_listen, "error": str(exc)},
                )
                return 2
            return self._run()
        finally:
            self._stop_metrics()

    def _start_metrics(self) -> None:
        """With --metrics-listen: a fresh sample directory for the workers, and /metrics."""
        if not self.config.metrics_listen:
            return
        from entitle.server import metrics

        self.metrics_dir = metrics.prepare_multiproc_dir()
        self.metrics_server, _ = metrics.serve_http(self.config.metrics_listen, self.metrics_dir)
        get_logger().info("metrics served", extra={"metrics_listen": self.config.metrics_listen})

    def _stop_metrics(self) -> None:
        from entitle.server import metrics

        if self.metrics_server is not None:
            self.metrics_server.shutdown()
            self.metrics_server.server_close()
        if self.metrics_dir:
            metrics.clean_multiproc_dir(self.metrics_dir)

    def _worker_gone(self, pid: int) -> None:
        if self.metrics_dir:
            from entitle.server import metrics

            metrics.worker_gone(self.metrics_dir, pid)

    def _run(self) -> int:
        log = get_logger()
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self._on_signal)
        for i in range(self.config.workers):
            self._spawn(i)
        log.info(
            "serving",
            extra={"listen": self.config.listen, "http": self.config.http_listen or "off",
                   "workers": self.config.workers, "store": redact(self.config.store_url),
                   "policies": self.config.policies},
        )
        restart_at: dict[int, float] = {}
        while True:
            while self._pending:
                signum = self._pending.pop(0)
                if signum == signal.SIGHUP:
                    log.info("reload requested: forwarding SIGHUP to workers")
                    self._forward(signal.SIGHUP)
                elif not self.stopping:
                    log.info("shutting down", extra={"signal": signal.Signals(signum).name})
                    self.stopping = True
                    self._forward(signal.SIGTERM)
            if self.stopping:
                return self._drain()
            now = time.monotonic()
            for w in list(self.workers.values()):
                code = w.proc.poll()
                if code is None or w.index in restart_at:
                    continue
                if code == EXIT_CONFIG:
                    log.error("worker refused its configuration", extra={"worker": w.index})
                    self.exit_code, self.stopping = 2, True
                    self._forward(signal.SIGTERM)
                    break
                self._worker_gone(w.proc.pid)
                crashes = 0 if now - w.started >= HEALTHY_AFTER else w.crashes + 1
                delay = min(MAX_BACKOFF, 0.25 * 2**crashes) if crashes else 0.0
                log.error(
                    "worker exited; restarting",
                    extra={"worker": w.index, "exit_code": code, "restart_in_s": delay},
                )
                restart_at[w.index] = now + delay
                w.crashes = crashes
            for index, at in list(restart_at.items()):
                if now >= at and not self.stopping:
                    del restart_at[index]
                    self._spawn(index, self.workers[index].crashes)
            time.sleep(POLL_SECONDS)

    def _drain(self) -> int:
        """Wait for workers to finish in-flight calls; kill those that outlive the grace."""
        deadline = time.monotonic() + self.config.grace + 5.0
        for w in self.workers.values():
            try:
                w.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                get_logger().error("worker outlived the grace; killing", extra={"worker": w.index})
                w.proc.kill()
                w.proc.wait()
        get_logger().info("stopped")
        return self.exit_code

