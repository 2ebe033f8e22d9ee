"""The `entitle` command line (each subcommand is a module of this package)."""

from __future__ import annotations

import argparse
import importlib
import sys

DESCRIPTION = (
    "Support entitlements as code: declare support plans, SLAs, business calendars and "
    "contracts as YAML policy files; validate and test them in CI; answer ticketing systems "
    "over gRPC (is this ticket covered, by which contract and SLA, when is it due, how much "
    "quota is left) with a usage ledger on SQLite or PostgreSQL and alerts."
)

# Each module exposes `add_parser(subparsers)` and `run(args) -> int`.
COMMANDS = (
    "validate", "diff", "test", "check", "serve", "call", "alerts", "sla", "health", "report",
    "completion",
)


class _Version(argparse.Action):
    """`entitle --version`: the program's version and the local bundle's content hash."""

    def __call__(self, parser, namespace, values, option_string=None):
        from pathlib import Path

        from entitle import __version__
        from entitle.engine.bundle import load_policy

        print(f"entitle {__version__}")
        root = Path("policies")
        if root.is_dir():
            policy, diagnostics = load_policy(root)
            if policy is not None:
                print(f"policy revision {policy.revision} ({root}/)")
            else:
                errors = sum(d.severity == "error" for d in diagnostics)
                print(f"policy bundle {root}/ is invalid ({errors} errors: "
                      f"entitle validate {root})")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="entitle", description=DESCRIPTION)
    parser.add_argument(
        "--version", action=_Version, nargs=0,
        help="print the version, and the revision of ./policies when there is one",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"entitle.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"entitle.cli.{name}":
                continue  # command not built yet
            raise
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
