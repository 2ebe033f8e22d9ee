"""The `entitle` command: one subcommand per module in this package."""

from __future__ import annotations

import argparse
import importlib
import sys

# Each module exposes `add_parser(subparsers)` and `run(args) -> int`.
COMMANDS = ("validate", "diff", "test", "check", "serve", "call", "alerts", "report")


def build_parser() -> argparse.ArgumentParser:
    from entitle import __version__

    parser = argparse.ArgumentParser(prog="entitle", description=__doc__)
    parser.add_argument("--version", action="version", version=f"entitle {__version__}")
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
