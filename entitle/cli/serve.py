"""`entitle serve`: the gRPC service, as a supervisor of worker processes sharing one port."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from entitle.server.config import (
    DEFAULT_LISTEN,
    DEFAULT_STORE,
    FAKE_NOW_ENV,
    MAX_MESSAGE_BYTES,
    ServeConfig,
    runtime_clock,
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="serve coverage decisions and the usage ledger over gRPC",
        description=(
            "Serves the bundle over gRPC with health checks and reflection. Several worker "
            "processes share the port (SO_REUSEPORT); file changes under --policies and SIGHUP "
            "reload the bundle, keeping the last good one when the new one is invalid or "
            f"breaking. Testing aid: {FAKE_NOW_ENV}=<ISO instant> fixes the server's clock."
        ),
    )
    p.add_argument("--policies", default="policies", help="bundle directory (default: policies)")
    p.add_argument(
        "--store", default=DEFAULT_STORE,
        help=f"usage store URL: sqlite:///PATH or postgresql://... (default: {DEFAULT_STORE})",
    )
    p.add_argument(
        "--listen", default=DEFAULT_LISTEN, help=f"HOST:PORT (default: {DEFAULT_LISTEN})"
    )
    p.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1,
        help="worker processes (default: the number of CPUs)",
    )
    p.add_argument(
        "--reload-interval", type=float, default=1.0, metavar="S",
        help="seconds between checks of the bundle for changes; 0 disables (default: 1)",
    )
    p.add_argument(
        "--grace", type=float, default=10.0, metavar="S",
        help="seconds in-flight calls get to finish on shutdown (default: 10)",
    )
    p.add_argument(
        "--threads", type=int, default=16,
        help="handler threads per worker, to overlap store I/O (default: 16)",
    )
    p.add_argument(
        "--max-message-bytes", type=int, default=MAX_MESSAGE_BYTES, help=argparse.SUPPRESS
    )
    p.add_argument(
        "--log-level", default="info", choices=("debug", "info", "warning", "error"),
        help="log level of the JSON lines on stderr (default: info)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from entitle.server.logs import setup_logging
    from entitle.server.supervisor import Supervisor, reserve_port

    problems = []
    if args.workers < 1:
        problems.append("--workers must be at least 1")
    if args.threads < 1:
        problems.append("--threads must be at least 1")
    if args.reload_interval < 0 or args.grace < 0:
        problems.append("--reload-interval and --grace must not be negative")
    try:
        runtime_clock()
    except ValueError as exc:
        problems.append(str(exc))
    if problems:
        for problem in problems:
            print(f"entitle serve: {problem}", file=sys.stderr)
        return 2
    setup_logging(args.log_level, role="supervisor")
    try:
        reservation, listen = reserve_port(args.listen)
    except (OSError, ValueError) as exc:
        print(f"entitle serve: cannot listen on {args.listen}: {exc}", file=sys.stderr)
        return 2
    config = ServeConfig(
        policies=str(Path(args.policies).absolute()),
        store_url=args.store,
        listen=listen,
        workers=args.workers,
        reload_interval=args.reload_interval,
        grace=args.grace,
        threads=args.threads,
        max_message_bytes=args.max_message_bytes,
        log_level=args.log_level,
    )
    try:
        return Supervisor(config).run()
    finally:
        reservation.close()
