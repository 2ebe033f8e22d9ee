"""One worker process of `entitle serve`: its own store connection, snapshot, gRPC server and
HTTP listener (both faces answer with one EntitlementCalls)."""

from __future__ import annotations

import os
import signal
import sys
import threading

from entitle.server.config import ServeConfig, runtime_clock
from entitle.server.faces.grpc.server import build_server
from entitle.server.logs import setup_logging
from entitle.server.runtime import Runtime
from entitle.server.service.calls import EntitlementCalls
from entitle.server.store import StoreError
from entitle.server.supervisor import EXIT_CONFIG, SUPERVISOR_ENV

PARENT_CHECK_SECONDS = 1.0


def serve_worker(config: ServeConfig, index: int) -> int:
    """Serve until SIGTERM/SIGINT (or the supervisor dies), then drain in-flight calls."""
    log = setup_logging(config.log_level, role="worker", worker=index)
    try:
        clock = runtime_clock()
        runtime = Runtime.open(config, clock, worker=index)
    except (ValueError, StoreError, OSError) as exc:  # OSError: --decision-log
        log.error("bad configuration", extra={"error": str(exc)})
        return EXIT_CONFIG
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGHUP, lambda *_: runtime.request_reload("SIGHUP"))
    calls = EntitlementCalls(runtime)
    try:
        server, port = build_server(runtime, calls)
    except RuntimeError as exc:
        log.error("cannot listen", extra={"listen": config.listen, "error": str(exc)})
        runtime.close()
        return EXIT_CONFIG
    http = None
    if config.http_listen:
        from entitle.server.faces.http.server import HttpServer

        try:
            http = HttpServer(runtime, calls)
        except RuntimeError as exc:
            log.error("cannot listen", extra={"http": config.http_listen, "error": str(exc)})
            server.stop(None)
            runtime.close()
            return EXIT_CONFIG
    runtime.start()
    server.start()
    log.info("listening", extra={"listen": config.listen, "port": port})
    if http is not None:
        http.start()
        log.info("listening", extra={"http": config.http_listen, "port": http.port})
    parent = int(os.environ.get(SUPERVISOR_ENV, "0")) or None
    while not stop.wait(PARENT_CHECK_SECONDS):
        if parent is not None and os.getppid() != parent:
            log.error("supervisor is gone; stopping")
            break
    log.info("draining", extra={"grace_s": config.grace})
    runtime.begin_shutdown()  # health says NOT_SERVING, alert streams end, then calls drain
    stopped = server.stop(config.grace)
    if http is not None:
        http.stop()
    stopped.wait()
    runtime.close()
    log.info("stopped")
    return 0


def main(argv: list[str]) -> int:
    config_json, index = argv
    return serve_worker(ServeConfig.from_json(config_json), int(index))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
