"""`entitle serve`: the gRPC service and its HTTP/JSON face, as a supervisor of worker
processes sharing the ports."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from entitle.server.config import (
    DEFAULT_HTTP_LISTEN,
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
        help="serve coverage decisions and the usage ledger over gRPC and HTTP/JSON",
        description=(
            "Serves the bundle over gRPC with health checks and reflection, and over HTTP/JSON "
            "(the Connect protocol, docs/api.md#http). Several worker processes share the "
            "ports (SO_REUSEPORT); file changes under --policies and SIGHUP "
            "reload the bundle, keeping the last good one when the new one is invalid or "
            f"breaking. Testing aid: {FAKE_NOW_ENV}=<ISO instant> fixes the server's clock."
        ),
    )
    p.add_argument("--policies", default="policies", help="bundle directory (default: policies)")
    p.add_argument(
        "--store", default=DEFAULT_STORE,
        help="usage store: a SQLite file path (entitle.db), sqlite:///PATH or "
        f"postgresql://... (default: {DEFAULT_STORE})",
    )
    p.add_argument(
        "--listen", default=DEFAULT_LISTEN,
        help=f"HOST:PORT of the gRPC service (default: {DEFAULT_LISTEN})",
    )
    http = p.add_mutually_exclusive_group()
    http.add_argument(
        "--http", default=DEFAULT_HTTP_LISTEN, metavar="HOST:PORT",
        help=f"HOST:PORT of the HTTP/JSON face (default: {DEFAULT_HTTP_LISTEN})",
    )
    http.add_argument("--no-http", action="store_true", help="serve gRPC only")
    p.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1,
        help="worker processes (default: the number of CPUs)",
    )
    p.add_argument(
        "--reload-interval", type=float, default=1.0, metavar="S",
        help="seconds between checks of the bundle for changes; 0 disables (default: 1)",
    )
    p.add_argument(
        "--accept-breaking", action="store_true",
        help="start on the bundle on disk even when it breaks the bundle last accepted by the "
        "store's workers (a plan in use changed on purpose); reloads still refuse breaking "
        "changes",
    )
    p.add_argument(
        "--grace", type=float, default=10.0, metavar="S",
        help="seconds in-flight calls get to finish on shutdown (default: 10)",
    )
    p.add_argument(
        "--threads", type=int, default=16,
        help="handler threads per worker, to overlap store I/O (default: 16)",
    )
    sec = p.add_argument_group("security and limits (docs/operations.md#security)")
    sec.add_argument("--tls-cert", default="", metavar="FILE", help="PEM certificate chain")
    sec.add_argument("--tls-key", default="", metavar="FILE", help="PEM private key")
    sec.add_argument(
        "--client-ca", default="", metavar="FILE",
        help="PEM CA bundle: require client certificates signed by it (mutual TLS)",
    )
    sec.add_argument(
        "--allow-insecure", action="store_true",
        help="allow plaintext on a non-loopback --listen (behind a TLS-terminating proxy)",
    )
    sec.add_argument(
        "--tokens", default="", metavar="FILE",
        help="bearer tokens, one `TOKEN ROLE` per line (roles: checker, admin); "
        "without it, no authentication (loopback/dev only)",
    )
    sec.add_argument(
        "--max-message-bytes", type=int, default=MAX_MESSAGE_BYTES, metavar="N",
        help=f"largest request accepted; larger gets RESOURCE_EXHAUSTED "
        f"(default: {MAX_MESSAGE_BYTES})",
    )
    sec.add_argument(
        "--max-call-seconds", type=float, default=30.0, metavar="S",
        help="deadline cap for unary calls without a deadline or with a longer one; "
        "0 disables (default: 30)",
    )
    sec.add_argument(
        "--max-streams", type=int, default=100, metavar="N",
        help="concurrent streams (calls) per HTTP/2 connection (default: 100)",
    )
    sec.add_argument(
        "--max-concurrent-rpcs", type=int, default=1000, metavar="N",
        help="calls per worker, running or queued; more get RESOURCE_EXHAUSTED (default: 1000)",
    )
    p.add_argument(
        "--metrics-listen", default="", metavar="HOST:PORT",
        help="serve Prometheus metrics of all workers on http://HOST:PORT/metrics (default: off)",
    )
    p.add_argument(
        "--decision-log", default="", metavar="FILE",
        help="append one JSON line per CheckCoverage decision to FILE (default: off)",
    )
    p.add_argument(
        "--mask-attribute", action="append", default=[], metavar="NAME",
        help="show this ticket attribute as *** in the decision log (repeatable)",
    )
    p.add_argument(
        "--mask-subject", action="store_true",
        help="show ticket subjects as *** in the decision log",
    )
    p.add_argument(
        "--sweep-interval", type=float, default=60.0, metavar="S",
        help="seconds between alert sweeps (contract activated, expiring, expired) and "
        "retention purges; one replica sweeps at a time; 0 disables (default: 60)",
    )
    p.add_argument(
        "--sla-sweep-interval", type=float, default=5.0, metavar="S",
        help="seconds between sweeps of live tickets' SLA clocks (warnings, breaches: each "
        "at its true instant, noticed at most S late); one replica sweeps at a time; "
        "0 disables (default: 5)",
    )
    p.add_argument(
        "--alert-retention-days", type=float, default=90.0, metavar="DAYS",
        help="purge alerts emitted more than DAYS ago (they are never emitted again); "
        "0 keeps them forever (default: 90)",
    )
    p.add_argument(
        "--webhooks", default="", metavar="FILE",
        help="push alerts to the HTTP endpoints in this YAML file, signed, at least once, "
        "in cursor order (docs/webhooks.md; default: off)",
    )
    p.add_argument(
        "--log-level", default="info", choices=("debug", "info", "warning", "error"),
        help="log level of the JSON lines on stderr (default: info)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from entitle.server.logs import setup_logging
    from entitle.server.store import store_url
    from entitle.server.supervisor import Supervisor, reserve_port

    problems = []
    if args.workers < 1:
        problems.append("--workers must be at least 1")
    if args.threads < 1:
        problems.append("--threads must be at least 1")
    if args.reload_interval < 0 or args.grace < 0:
        problems.append("--reload-interval and --grace must not be negative")
    if args.sweep_interval < 0 or args.alert_retention_days < 0 or args.sla_sweep_interval < 0:
        problems.append("--sweep-interval, --sla-sweep-interval and --alert-retention-days "
                        "must not be negative")
    try:
        runtime_clock()
    except ValueError as exc:
        problems.append(str(exc))
    if args.metrics_listen:
        from entitle.server.config import split_listen

        try:
            split_listen(args.metrics_listen)
        except ValueError as exc:
            problems.append(str(exc).replace("--listen", "--metrics-listen", 1))
    if (args.mask_attribute or args.mask_subject) and not args.decision_log:
        problems.append("--mask-attribute and --mask-subject need --decision-log")
    if args.decision_log:
        problems.extend(_decision_log_problems(args.decision_log))
    problems.extend(_security_problems(args))
    if args.webhooks:
        problems.extend(_webhook_problems(args.webhooks))
    if not problems:  # the slowest check (a bounded wait for PostgreSQL) last
        problems.extend(_store_problems(args.store))
    if problems:
        for problem in problems:
            print(f"entitle serve: {problem}", file=sys.stderr)
        return 2
    setup_logging(args.log_level, role="supervisor")
    reservations, bound = [], {}
    wanted = {"--listen": args.listen} if args.no_http else {
        "--listen": args.listen, "--http": args.http}
    for flag, address in wanted.items():
        try:
            reservation, bound[flag] = reserve_port(address)
        except (OSError, ValueError) as exc:
            for taken in reservations:
                taken.close()
            print(f"entitle serve: cannot listen on {address}: {exc}", file=sys.stderr)
            return 2
        reservations.append(reservation)
    listen, http_listen = bound["--listen"], bound.get("--http", "")
    print(
        f"entitle serve: gRPC on {listen}"
        + (f", HTTP on http{'s' if args.tls_cert else ''}://{http_listen}" if http_listen else "")
        + f" ({args.workers} worker{'s' if args.workers != 1 else ''})",
        file=sys.stderr,
    )
    config = ServeConfig(
        policies=str(Path(args.policies).absolute()),
        store_url=store_url(args.store),
        listen=listen,
        http_listen=http_listen,
        workers=args.workers,
        reload_interval=args.reload_interval,
        accept_breaking=args.accept_breaking,
        grace=args.grace,
        threads=args.threads,
        max_message_bytes=args.max_message_bytes,
        log_level=args.log_level,
        tls_cert=_absolute(args.tls_cert),
        tls_key=_absolute(args.tls_key),
        client_ca=_absolute(args.client_ca),
        tokens_file=_absolute(args.tokens),
        max_call_seconds=args.max_call_seconds,
        max_streams=args.max_streams,
        max_concurrent_rpcs=args.max_concurrent_rpcs,
        metrics_listen=args.metrics_listen,
        decision_log=str(Path(args.decision_log).absolute()) if args.decision_log else "",
        mask_attributes=tuple(args.mask_attribute),
        mask_subject=args.mask_subject,
        sweep_interval=args.sweep_interval,
        sla_sweep_interval=args.sla_sweep_interval,
        alert_retention_days=args.alert_retention_days,
        webhooks_file=_absolute(args.webhooks),
    )
    try:
        return Supervisor(config).run()
    finally:
        for reservation in reservations:
            reservation.close()


def _store_problems(store: str) -> list[str]:
    """The store checked before `serving` is logged: a bad one is one line and exit 2, not
    workers refusing it one by one after the supervisor said it serves."""
    from entitle.server.store import StoreError, check_store

    try:
        check_store(store)
    except StoreError as exc:
        return [f"--store {store}: {exc}"]
    return []


def _absolute(path: str) -> str:
    return str(Path(path).absolute()) if path else ""


def _decision_log_problems(path: str) -> list[str]:
    """Create the log now (mode 0640), so an unwritable path fails at start, not in workers."""
    from entitle.server.decisionlog import open_log

    try:
        os.close(open_log(path))
    except OSError as exc:
        return [f"--decision-log {path}: {exc.strerror}"]
    return []


def _webhook_problems(path: str) -> list[str]:
    """The webhooks file checked now, secrets included: one line, at the first problem."""
    from entitle.server.webhooks import WebhookConfigError, load_webhooks

    try:
        load_webhooks(path)
    except WebhookConfigError as exc:
        return [f"--webhooks: {exc}"]
    return []


def _security_problems(args: argparse.Namespace) -> list[str]:
    """TLS files, the plaintext-on-loopback rule, the tokens file, the limits."""
    from entitle.server.service.access import TokensError, load_tokens
    from entitle.server.tls import check_tls_flags, is_loopback

    problems = check_tls_flags(
        ServeConfig(tls_cert=args.tls_cert, tls_key=args.tls_key, client_ca=args.client_ca)
    )
    listens = [args.listen] if args.no_http else [args.listen, args.http]
    for listen in listens if not args.tls_cert and not args.allow_insecure else ():
        try:
            loopback = is_loopback(listen)
        except ValueError:
            loopback = True  # reported when the port is reserved
        if not loopback:
            problems.append(
                f"refusing plaintext on {listen}: not a loopback address; give "
                "--tls-cert and --tls-key, or --allow-insecure (e.g. behind a TLS proxy)"
            )
    if args.tokens:
        try:
            load_tokens(args.tokens)
        except TokensError as exc:
            problems.append(f"--tokens: {exc}")
    if args.max_message_bytes < 1 or args.max_streams < 1 or args.max_concurrent_rpcs < 1:
        problems.append(
            "--max-message-bytes, --max-streams and --max-concurrent-rpcs must be at least 1"
        )
    if args.max_call_seconds < 0:
        problems.append("--max-call-seconds must not be negative")
    return problems
