"""`entitle check`: decisions for tickets on stdin, without a server (what-if and replay)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from entitle.engine.decide import decide, decision_json
from entitle.engine.diagnostics import PolicyError
from entitle.engine.snapshot import Snapshot
from entitle.engine.ticket import TicketError, parse_instant, ticket_from_json
from entitle.engine.usage import StaticUsage
from entitle.server.clock import SystemClock


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "check",
        help="decide tickets given as JSON on stdin (one object or NDJSON)",
        description=(
            "Reads one ticket JSON object, or one per line (NDJSON), from stdin and writes one "
            "decision JSON object per line to stdout. A line that is not a valid ticket gets "
            '{"line": N, "error": {"field": ..., "message": ...}} and the stream goes on.'
        ),
    )
    p.add_argument("--policies", type=Path, default=Path("policies"), help="bundle directory")
    p.add_argument("--now", help="decide as of this instant (ISO 8601), default: the clock")
    p.add_argument(
        "--usage", type=Path, help="JSON list of {contract_id, used, period_start?} usage entries"
    )
    p.set_defaults(run=run)


def _lines(stream):
    """Yield (line number, decoded object or error) for one JSON document or NDJSON.

    The input is NDJSON unless its first non-blank line is not JSON by itself and the whole
    input is (one pretty-printed document); a bad line, the first included, gets its error
    and the lines after it are still decided.
    """
    numbered = enumerate(stream, start=1)
    for n, line in numbered:
        if line.strip():
            first_n, first = n, line
            break
    else:
        return
    try:
        yield first_n, json.loads(first)
    except json.JSONDecodeError as first_error:
        rest = list(numbered)
        try:
            yield first_n, json.loads(first + "".join(line for _, line in rest))
            return
        except json.JSONDecodeError:
            yield first_n, first_error
        numbered = iter(rest)
    for n, line in numbered:
        if not line.strip():
            continue
        try:
            yield n, json.loads(line)
        except json.JSONDecodeError as exc:
            yield n, exc


def run(args: argparse.Namespace) -> int:
    try:
        snapshot = Snapshot.load(args.policies)
    except PolicyError as exc:
        print(f"entitle check: the bundle {args.policies} is invalid:\n{exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"entitle check: {exc}", file=sys.stderr)
        return 2
    try:
        now = parse_instant("--now", args.now) if args.now else SystemClock().now()
        usage = StaticUsage()
        if args.usage:
            usage = StaticUsage.from_entries(snapshot.policy, json.loads(args.usage.read_text()))
    except (TicketError, OSError, json.JSONDecodeError) as exc:
        print(f"entitle check: {exc}", file=sys.stderr)
        return 2

    failures = 0
    out = sys.stdout
    for n, obj in _lines(sys.stdin):
        try:
            if isinstance(obj, Exception):
                raise TicketError("ticket", f"invalid JSON: {obj.msg} at column {obj.colno}")
            for item in obj if isinstance(obj, list) else [obj]:
                result = decision_json(decide(snapshot, usage, ticket_from_json(item), now))
                out.write(json.dumps(result) + "\n")
        except TicketError as exc:
            failures += 1
            error = {"field": exc.field, "message": str(exc)}
            out.write(json.dumps({"line": n, "error": error}) + "\n")
            print(f"line {n}: {exc}", file=sys.stderr)
        out.flush()
    snapshot.close()
    return 1 if failures else 0
