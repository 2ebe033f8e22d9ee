"""`entitle validate`: schema and semantic checks of a bundle, for editors and CI."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from entitle.engine.bundle import load_documents
from entitle.engine.load import load_file, policy_files
from entitle.engine.testsuite import suite_files
from entitle.engine.validate import validate_suite


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "validate",
        help="check a policy bundle: every problem as path:line:col: message",
        description="Exit 0: valid (warnings allowed unless --strict); 1: invalid; 2: usage "
        "error. Test suites (*_test.yaml) are checked against their schema too.",
    )
    p.add_argument("dir", type=Path, help="bundle directory")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("--strict", action="store_true", help="warnings fail too")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if not args.dir.is_dir():
        print(f"entitle validate: {args.dir} is not a directory", file=sys.stderr)
        return 2
    documents, diagnostics = load_documents(args.dir)
    bundle = None if any(d.severity == "error" for d in diagnostics) else documents
    suites = suite_files(args.dir)
    for path in suites:
        docs, diags = load_file(path)
        diagnostics += diags + validate_suite(docs, bundle)
    errors = [d for d in diagnostics if d.severity == "error"]
    warnings = [d for d in diagnostics if d.severity == "warning"]
    files = len(policy_files(args.dir)) + len(suites)
    if args.format == "json":
        print(json.dumps({
            "valid": not errors and not (args.strict and warnings),
            "errors": [d.to_json() for d in errors],
            "warnings": [d.to_json() for d in warnings],
            "files": files,
        }, indent=2))
    else:
        for d in sorted(diagnostics):
            print(d)
        summary = ", ".join(_count(n, word) for n, word in
                            ((len(errors), "error"), (len(warnings), "warning")))
        print(f"{summary} in {_count(files, 'file')}", file=sys.stderr)
    return 1 if errors or (args.strict and warnings) else 0


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
