"""`entitle sla`: an admitted ticket's live SLA clocks, from a running server."""

from __future__ import annotations

import argparse
import json
import sys

import grpc
from google.protobuf import json_format

from entitle.cli.connect import add_connection_args, call_metadata, timeout_seconds, with_channel
from entitle.engine.durations import format_minutes
from entitle.engine.ticket import TicketError, parse_instant
from entitle.v1 import entitle_pb2 as pb
from entitle.v1 import entitle_pb2_grpc

STATE_PREFIX = "CLOCK_STATE_"


def _instant(text: str):
    """`--at`, checked when parsing: an ISO 8601 instant with an offset."""
    try:
        return parse_instant("--at", text)
    except TicketError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--at: ")) from None


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sla",
        help="show an admitted ticket's SLA clocks (state, due, remaining) from a server",
        description="Calls GetTicketSla: every clock of the ticket (first_response, each "
        "next_response cycle, resolution) derived from the events the server recorded "
        "(RecordTicketEvents), at server time or --at. Exit codes: 0 shown; 1 the server "
        "refused (e.g. NOT_FOUND: never admitted); 2 bad flags or no connection.",
    )
    p.add_argument("ticket_id", metavar="TICKET_ID", help="a ticket admitted with consume=true")
    p.add_argument(
        "--at", type=_instant, metavar="INSTANT",
        help="evaluate at this instant, e.g. 2026-11-20T17:00:00Z (default: server time)",
    )
    p.add_argument("--json", action="store_true", help="the TicketSla message as JSON")
    add_connection_args(p)
    p.add_argument(
        "--timeout", type=timeout_seconds, default=10.0, metavar="S",
        help="deadline in seconds (default: 10)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    return with_channel(args, "sla", lambda channel: _show(channel, args))


def _show(channel: grpc.Channel, args: argparse.Namespace) -> int:
    request = pb.GetTicketSlaRequest(ticket_id=args.ticket_id)
    if args.at is not None:
        request.at.FromDatetime(args.at)
    stub = entitle_pb2_grpc.EntitlementServiceStub(channel)
    try:
        reply = stub.GetTicketSla(request, timeout=args.timeout, metadata=call_metadata(args))
    except grpc.RpcError as exc:
        print(f"entitle sla: {exc.code().name}: {exc.details()}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(json_format.MessageToDict(
            reply.sla, preserving_proto_field_name=True,
            always_print_fields_with_no_presence=True), indent=2))
    else:
        print(format_sla(reply.sla))
    return 0


def _when(msg, name: str) -> str:
    return getattr(msg, name).ToJsonString() if msg.HasField(name) else "-"


def format_sla(sla: pb.TicketSla) -> str:
    """A header line, then one line per clock."""
    rule = f"rule {sla.sla_rule}" if sla.sla_rule else "default targets"
    lines = [
        f"ticket {sla.ticket_id}  customer {sla.customer_id}  contract {sla.contract_id}  "
        f"SLA {sla.sla_id} ({rule}, revision {sla.policy_revision[:12]})  priority {sla.priority}",
        f"as of {_when(sla, 'as_of')}  events {sla.event_count}  "
        f"next alert {_when(sla, 'next_alert_at')}",
    ]
    rows = [("METRIC", "STATE", "TARGET", "DUE", "ELAPSED", "REMAINING", "%", "BREACHED")]
    for c in sla.clocks:
        state = pb.ClockState.Name(c.state).removeprefix(STATE_PREFIX).lower()
        if c.paused and state != "paused":
            state += " (paused)"
        metric = c.metric + (f" #{c.cycle}" if c.cycle else "")
        rows.append((
            metric, state, f"{format_minutes(c.minutes)} {c.clock}", _when(c, "due_at"),
            format_minutes(c.elapsed_minutes), _signed(c.remaining_minutes),
            f"{c.percent_elapsed:g}", _when(c, "breached_at"),
        ))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip()
              for r in rows]
    return "\n".join(lines)


def _signed(minutes: float) -> str:
    return ("-" if minutes < 0 else "") + format_minutes(abs(minutes))
