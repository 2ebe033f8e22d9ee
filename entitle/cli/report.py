"""`entitle report`: renewals, usage and contract counts from the bundle and the usage store."""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta
from pathlib import Path

from entitle.server.config import DEFAULT_STORE


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="renewals, usage and contract counts as tables, CSV or JSON",
        description=(
            "Reports on the policy bundle and the usage store at one instant: a table "
            "(with quota bars on a terminal), --csv for spreadsheets or --json for programs."
        ),
    )
    kinds = p.add_subparsers(dest="report", metavar="REPORT", required=True)
    renewals = kinds.add_parser(
        "renewals", help="contracts ending soon, with their quota used and renewal"
    )
    renewals.add_argument(
        "--within", default="90d", metavar="DURATION",
        help="how far ahead to look, e.g. 30d, 12w (default: 90d)",
    )
    usage = kinds.add_parser("usage", help="each contract's usage in its current period")
    usage.add_argument("--customer", metavar="C", help="only this customer's contracts")
    contracts = kinds.add_parser("contracts", help="contracts counted by product, owner or plan")
    contracts.add_argument(
        "--by", choices=("product", "owner", "plan"), default="plan",
        help="what to group by (default: plan)",
    )
    for k in (renewals, usage, contracts):
        k.add_argument(
            "--policies", default="policies", help="bundle directory (default: policies)"
        )
        k.add_argument(
            "--store", default=DEFAULT_STORE,
            help=f"usage store URL (default: {DEFAULT_STORE})",
        )
        k.add_argument("--now", help="report as of this instant (ISO 8601), default: the clock")
        fmt = k.add_mutually_exclusive_group()
        fmt.add_argument("--csv", action="store_true", help="CSV with a header line")
        fmt.add_argument("--json", action="store_true", help="one JSON document")
        k.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from entitle.engine import reports
    from entitle.engine.bundle import compile_or_raise
    from entitle.engine.diagnostics import PolicyError
    from entitle.engine.durations import parse_duration
    from entitle.engine.ticket import TicketError, parse_instant
    from entitle.server.clock import SystemClock
    from entitle.server.store import StoreError, StoreUnavailable, open_store

    def fail(message: str) -> int:
        print(f"entitle report: {message}", file=sys.stderr)
        return 2

    try:
        now = parse_instant("--now", args.now) if args.now else SystemClock().now()
        within = None
        if args.report == "renewals":
            within = timedelta(minutes=parse_duration(args.within))
    except (TicketError, ValueError) as exc:
        return fail(str(exc))
    try:
        policy = compile_or_raise(Path(args.policies))
    except PolicyError as exc:
        return fail(f"the bundle {args.policies} is invalid:\n{exc}")
    except OSError as exc:
        return fail(str(exc))
    if args.report == "usage" and args.customer and args.customer not in policy.by_customer:
        return fail(f"no contract of customer {args.customer!r} in the bundle")
    try:  # a reader: a wrong --store must fail, not leave a new empty ledger behind
        store = open_store(args.store, max_connections=1, migrate=False)
    except (StoreError, StoreUnavailable, OSError) as exc:
        return fail(f"--store: {exc}")
    try:
        if args.report == "renewals":
            report = reports.renewals(policy, store, now, within)
        elif args.report == "usage":
            report = reports.usage_report(policy, store, now, args.customer)
        else:
            report = reports.contracts_by(policy, store, now, args.by)
    except StoreUnavailable as exc:
        return fail(str(exc))
    finally:
        store.close()
    if args.csv:
        sys.stdout.write(reports.render_csv(report))
    elif args.json:
        sys.stdout.write(reports.render_json(report))
    else:
        sys.stdout.write(reports.render_text(report, bars=sys.stdout.isatty()))
    return 0
