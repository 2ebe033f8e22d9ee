"""`entitle alerts`: print a server's alerts, page by page or following the live stream."""

from __future__ import annotations

import argparse
import json
import sys

import grpc
from google.protobuf import json_format

from entitle.cli.connect import add_connection_args, call_metadata, timeout_seconds, with_channel
from entitle.v1 import entitle_pb2 as pb
from entitle.v1 import entitle_pb2_grpc

KIND_PREFIX = "ALERT_KIND_"
MAX_CURSOR = 2**64 - 1  # cursors are uint64 on the wire


def _cursor(text: str) -> int:
    """`--after`, checked when parsing: protobuf refuses what a uint64 cannot hold."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a cursor (a whole number): {text!r}") from None
    if not 0 <= value <= MAX_CURSOR:
        raise argparse.ArgumentTypeError(f"a cursor is 0 or more (at most 2**64-1), not {text}")
    return value


def _kind(text: str) -> int:
    name = text.strip().upper().replace("-", "_")
    if not name.startswith(KIND_PREFIX):
        name = KIND_PREFIX + name
    try:
        value = pb.AlertKind.Value(name)
    except ValueError:
        value = 0
    if not value:
        kinds = ", ".join(n.removeprefix(KIND_PREFIX) for n in pb.AlertKind.keys()[1:])
        raise argparse.ArgumentTypeError(f"unknown alert kind {text!r} (one of {kinds})")
    return value


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "alerts",
        help="print alerts (quotas, contract dates, SLA warnings and breaches) from a server",
        description="Prints the alerts a running server stored after --after, one line each "
        "(or one JSON object per line with --json), oldest first. --follow keeps the stream "
        "open and prints new alerts as they are emitted; pass the last cursor printed as "
        "--after to resume without missing or repeating any.",
    )
    add_connection_args(p)
    p.add_argument("--follow", "-f", action="store_true", help="stream new alerts until Ctrl-C")
    p.add_argument(
        "--after", type=_cursor, default=0, metavar="CURSOR",
        help="only alerts after this cursor (default: 0, every retained alert)",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument(
        "--kind", action="append", type=_kind, default=[], metavar="K",
        help="only this kind (repeatable): usage_threshold, quota_exhausted, "
        "contract_activated, contract_expiring, contract_expired, sla_warning, sla_breached",
    )
    p.add_argument("--customer", default="", metavar="C", help="only this customer's alerts")
    p.add_argument("--contract", default="", metavar="ID", help="only this contract's alerts")
    p.add_argument(
        "--timeout", type=timeout_seconds, default=10.0, metavar="S",
        help="deadline per page in seconds"
    )
    p.set_defaults(run=run)


def format_line(alert: pb.Alert) -> str:
    """`cursor occurred_at KIND[/threshold] contract message`."""
    kind = pb.AlertKind.Name(alert.kind).removeprefix(KIND_PREFIX)
    if alert.threshold:
        kind += f"/{alert.threshold}"
    when = alert.occurred_at.ToJsonString()
    return f"{alert.cursor}\t{when}\t{kind}\t{alert.contract_id}\t{alert.message}"


def as_json(alert: pb.Alert) -> str:
    out = json_format.MessageToDict(
        alert, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    out["cursor"] = int(out["cursor"])  # uint64 is a JSON string by default
    return json.dumps(out, sort_keys=False)


def run(args: argparse.Namespace) -> int:
    return with_channel(args, "alerts", lambda channel: _print_alerts(channel, args))


def _print_alerts(channel: grpc.Channel, args: argparse.Namespace) -> int:
    show = as_json if args.json else format_line
    flt = pb.AlertFilter(kinds=args.kind, customer_id=args.customer, contract_id=args.contract)
    stub = entitle_pb2_grpc.EntitlementServiceStub(channel)
    metadata = call_metadata(args)
    try:
        if args.follow:
            stream = stub.WatchAlerts(
                pb.WatchAlertsRequest(after_cursor=args.after, filter=flt), metadata=metadata
            )
            try:
                for reply in stream:
                    print(show(reply.alert), flush=True)
            finally:
                stream.cancel()
            return 0
        cursor = args.after
        while True:
            page = stub.ListAlerts(
                pb.ListAlertsRequest(after_cursor=cursor, page_size=1000, filter=flt),
                timeout=args.timeout, metadata=metadata,
            )
            for alert in page.alerts:
                print(show(alert))
            cursor = page.next_cursor
            if not page.has_more:
                return 0
    except grpc.RpcError as exc:
        print(f"entitle alerts: {exc.code().name}: {exc.details()}", file=sys.stderr)
        return 1
