"""Policy test suites (`*_test.yaml`): fixtures and tickets in, expected decision fields out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from entitle.engine.bundle import load_documents, policy_from_documents
from entitle.engine.decide import decide, decision_json
from entitle.engine.diagnostics import Diagnostic
from entitle.engine.expect import mismatches
from entitle.engine.load import Document, bundle_files, load_file
from entitle.engine.snapshot import Snapshot
from entitle.engine.ticket import TicketError, parse_instant, ticket_from_json
from entitle.engine.usage import StaticUsage
from entitle.engine.validate import validate_suite

SUITE_SUFFIXES = ("_test.yaml", "_test.yml")


@dataclass(frozen=True)
class CaseResult:
    suite: str
    name: str
    status: str  # pass | fail | error | skip
    where: str  # path:line of the test
    problems: tuple[str, ...] = ()
    actual: Mapping | None = None


@dataclass
class SuiteRun:
    diagnostics: list[Diagnostic] = field(default_factory=list)
    results: list[CaseResult] = field(default_factory=list)
    suites: int = 0

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]


def suite_files(root: Path) -> list[Path]:
    return sorted(p for p in bundle_files(root) if p.name.endswith(SUITE_SUFFIXES))


def run_suites(root: Path) -> SuiteRun:
    """Run every suite under `root` against the bundle in `root`."""
    run = SuiteRun()
    documents, diagnostics = load_documents(root)
    run.diagnostics += diagnostics
    if run.errors:
        return run
    base: Snapshot | None = None
    try:
        for path in suite_files(root):
            suites, diags = load_file(path, _display(path))
            diags = diags + validate_suite(suites, references=False)  # errors per test
            run.diagnostics += diags
            if any(d.severity == "error" for d in diags):
                continue
            for suite in suites:
                run.suites += 1
                extra = _fixture_contracts(suite)
                if extra:
                    snapshot, diags = _snapshot(documents + extra)
                    run.diagnostics += diags
                    if snapshot is None:
                        continue
                else:
                    if base is None:
                        base, diags = _snapshot(documents)
                        run.diagnostics += diags
                    snapshot = base
                if snapshot is None:
                    continue
                try:
                    run.results += _run_suite(suite, snapshot)
                finally:
                    if snapshot is not base:
                        snapshot.close()
    finally:
        if base is not None:
            base.close()
    return run


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _snapshot(documents: list[Document]) -> tuple[Snapshot | None, list[Diagnostic]]:
    policy, diagnostics = policy_from_documents(documents)
    return (Snapshot.build(policy) if policy else None), diagnostics


def _fixture_contracts(suite: Document) -> list[Document]:
    """Suite-only contracts as Contract documents, located inside the suite file."""
    contracts = (suite.data.get("fixtures") or {}).get("contracts") or []
    out = []
    for i, data in enumerate(contracts):
        prefix = ("fixtures", "contracts", i)
        out.append(suite.subdocument(prefix, {"kind": "Contract", **data}, index=i))
    return out


def _run_suite(suite: Document, snapshot: Snapshot) -> list[CaseResult]:
    data = suite.data
    name = data["name"]
    fixtures = data.get("fixtures") or {}
    named_usage = fixtures.get("usage") or {}
    named_tickets = fixtures.get("tickets") or {}
    results = []
    for i, test in enumerate(data["tests"]):
        line, _ = suite.locate(("tests", i))
        where = f"{suite.path}:{line}"
        base = CaseResult(name, test["name"], "pass", where)
        if test.get("skip"):
            results.append(replace(base, status="skip"))
            continue
        try:
            now_text = test.get("now", data.get("now"))
            if now_text is None:
                raise TicketError("now", "no `now` in the test or the suite")
            now = parse_instant("now", now_text)
            usage_spec = test.get("usage", [])
            if isinstance(usage_spec, str):
                if usage_spec not in named_usage:
                    raise TicketError("usage", f"no usage fixture named {usage_spec!r}")
                usage_spec = named_usage[usage_spec]
            usage = StaticUsage.from_entries(snapshot.policy, usage_spec)
            ticket_data = test["ticket"]
            if isinstance(ticket_data, str):
                ticket_data = {"from": ticket_data}
            ticket_data = dict(ticket_data)
            parent = ticket_data.pop("from", None)
            if parent is not None:
                if parent not in named_tickets:
                    raise TicketError("ticket", f"no ticket fixture named {parent!r}")
                ticket_data = {**named_tickets[parent], **ticket_data}
                ticket_data.pop("from", None)
            ticket_data.setdefault("ticket_id", f"{name}/{test['name']}")
            actual = decision_json(decide(snapshot, usage, ticket_from_json(ticket_data), now))
        except TicketError as exc:
            results.append(replace(base, status="error", problems=(str(exc),)))
            continue
        problems = tuple(mismatches(test["expect"], actual))
        results.append(replace(base, status="fail" if problems else "pass", problems=problems,
                               actual=actual))
    return results
