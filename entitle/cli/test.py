"""`entitle test`: run the policy test suites (`*_test.yaml`) of a bundle, JUnit for CI."""

from __future__ import annotations

import argparse
import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from entitle.engine.testsuite import SuiteRun, run_suites


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "test",
        help="run the policy test suites (*_test.yaml) of a bundle",
        description="Exit 0: all tests pass; 1: a test failed; 2: the bundle, a suite or a "
        "test could not be run.",
    )
    p.add_argument("dir", type=Path, nargs="?", default=Path("policies"), help="bundle directory")
    p.add_argument("--junit", type=Path, help="also write a JUnit XML report to this file")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("-v", "--verbose", action="store_true", help="list passing tests too")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if not args.dir.is_dir():
        print(f"entitle test: {args.dir} is not a directory", file=sys.stderr)
        return 2
    result = run_suites(args.dir)
    if args.junit:
        write_junit(result, args.junit)
    statuses = ("pass", "fail", "error", "skip")
    counts = {s: sum(r.status == s for r in result.results) for s in statuses}
    if args.format == "json":
        print(json.dumps({
            "diagnostics": [d.to_json() for d in result.diagnostics],
            "results": [
                {"suite": r.suite, "name": r.name, "status": r.status, "where": r.where,
                 "problems": list(r.problems)}
                for r in result.results
            ],
            "counts": counts,
        }, indent=2))
    else:
        for d in result.diagnostics:
            print(d)
        for r in result.results:
            if r.status == "pass" and not args.verbose:
                continue
            print(f"{r.status.upper():5} {r.suite} › {r.name}  ({r.where})")
            for problem in r.problems:
                print(f"        {problem}")
        print(
            f"{counts['pass']} passed, {counts['fail']} failed, {counts['error']} errors, "
            f"{counts['skip']} skipped in {result.suites} suites",
            file=sys.stderr,
        )
    if result.errors or counts["error"]:
        return 2
    return 1 if counts["fail"] else 0


def write_junit(result: SuiteRun, path: Path) -> None:
    """One <testsuite> per suite; bundle problems become an errored pseudo-suite."""
    root = ET.Element("testsuites", name="entitle")
    suites: dict[str, ET.Element] = {}
    if result.errors:
        el = ET.SubElement(root, "testsuite", name="bundle", tests="1", failures="0", errors="1")
        case = ET.SubElement(el, "testcase", classname="bundle", name="load and validate")
        ET.SubElement(case, "error", message="invalid bundle or suite").text = "\n".join(
            str(d) for d in result.errors
        )
    for r in result.results:
        el = suites.get(r.suite)
        if el is None:
            el = suites[r.suite] = ET.SubElement(root, "testsuite", name=r.suite)
        case = ET.SubElement(el, "testcase", classname=r.suite, name=r.name, file=r.where)
        text = "\n".join(r.problems)
        if r.status == "fail":
            ET.SubElement(case, "failure", message=r.problems[0]).text = text
        elif r.status == "error":
            ET.SubElement(case, "error", message=r.problems[0]).text = text
        elif r.status == "skip":
            ET.SubElement(case, "skipped")
    for name, el in suites.items():
        mine = [r for r in result.results if r.suite == name]
        el.set("tests", str(len(mine)))
        el.set("failures", str(sum(r.status == "fail" for r in mine)))
        el.set("errors", str(sum(r.status == "error" for r in mine)))
        el.set("skipped", str(sum(r.status == "skip" for r in mine)))
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
