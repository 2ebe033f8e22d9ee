"""`entitle health`: a health check for probes and scripts, its answer in the exit code."""

from __future__ import annotations

import argparse
import json
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from entitle.cli.connect import add_connection_args, call_metadata, timeout_seconds, with_channel

EXIT_SERVING = 0
EXIT_NOT_SERVING = 1  # NOT_SERVING, UNKNOWN or a service the server does not know
EXIT_UNREACHABLE = 2  # no answer (nothing listening, TLS mismatch, deadline) or bad flags
RELOAD_ERROR = "entitle-last-reload-error"
WEBHOOK = "entitle-webhook"  # one trailing entry per webhook endpoint (JSON)
DETAILS = ("entitle-details", "webhooks")  # asks the server for those entries
STATUS = health_pb2.HealthCheckResponse.ServingStatus


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "health",
        help="check a server's health: exit 0 only when it is SERVING",
        description="Calls grpc.health.v1.Health/Check and prints the status (and the last "
        "reload refusal, if any). Exit codes: 0 SERVING; 1 NOT_SERVING, UNKNOWN or an unknown "
        "--service; 2 no answer (nothing listening, TLS mismatch, deadline) or bad flags. "
        "Container health checks must map 2 to 1 (`|| exit 1`): Docker reserves 2.",
    )
    add_connection_args(p)
    p.add_argument(
        "--service", default="", metavar="NAME",
        help="the service to check, e.g. entitle.v1.EntitlementService (default: the server)",
    )
    p.add_argument(
        "--timeout", type=timeout_seconds, default=5.0, metavar="S",
        help="deadline in seconds (default: 5)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    return with_channel(args, "health", lambda channel: _check(channel, args))


def _check(channel: grpc.Channel, args: argparse.Namespace) -> int:
    """One Check: the status on stdout, why it cannot be had on stderr."""
    check = health_pb2_grpc.HealthStub(channel).Check
    request = health_pb2.HealthCheckRequest(service=args.service)
    metadata = [*(call_metadata(args) or ()), DETAILS]
    try:
        reply, call = check.with_call(request, timeout=args.timeout, metadata=metadata)
    except grpc.RpcError as exc:
        if exc.code() == grpc.StatusCode.NOT_FOUND:  # the server does not know --service
            print(f"{STATUS.Name(STATUS.SERVICE_UNKNOWN)}: {exc.details()}")
            return EXIT_NOT_SERVING
        print(f"entitle health: {args.server}: {exc.code().name}: {exc.details()}",
              file=sys.stderr)
        return EXIT_UNREACHABLE
    print(STATUS.Name(reply.status))
    trailing = list(call.trailing_metadata() or ())
    error = dict(trailing).get(RELOAD_ERROR)
    if error:
        print(f"last reload error: {error}")
    for key, value in trailing:
        if key == WEBHOOK:
            print(webhook_line(value))
    return EXIT_SERVING if reply.status == STATUS.SERVING else EXIT_NOT_SERVING


def webhook_line(value: str) -> str:
    """One endpoint's delivery state in words, from the server's JSON."""
    try:
        state = json.loads(value)
    except ValueError:
        return f"webhook: {value}"
    if "id" not in state:
        return f"webhooks: state unknown: {state.get('error', value)}"
    if state["cursor"] is None:
        return f"webhook {state['id']}: not started yet"
    dead = state["dead_letters"]
    parts = [
        f"lag {state['lag']} (cursor {state['cursor']} of {state['latest']})",
        f"{state['delivered']} delivered",
        f"{dead} dead letter{'' if dead == 1 else 's'}",
    ]
    if state["attempts"]:
        parts.append(f"{state['attempts']} failed attempts at the next alert, next attempt "
                     f"{state['next_attempt_at']}")
    if state["last_error"]:
        parts.append(f"last error at {state['last_error_at']}: {state['last_error']}")
    return f"webhook {state['id']}: " + ", ".join(parts)
