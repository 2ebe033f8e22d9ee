"""Stage 2: every problem in a bundle, each located at the YAML that causes it."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cached_property
from pathlib import Path

from entitle.engine.checks.calendar import calendar_hours
from entitle.engine.checks.contract import (
    ContractSpan,
    contract_dates,
    contract_span,
    overlap_diagnostics,
)
from entitle.engine.checks.plan import alert_thresholds
from entitle.engine.checks.sla import (
    empty_bands,
    partial_rule_targets,
    shadowed_rules,
    sla_clock_settings,
    sla_targets,
)
from entitle.engine.checks.suite import suite_references
from entitle.engine.compile import merged_contract
from entitle.engine.diagnostics import Diagnostic
from entitle.engine.hints import (
    Meant,
    did_you_mean,
    iana_zones,
    suggestion,
    zone_abbreviation,
    zone_suggestion,
)
from entitle.engine.load import MAX_FILE_BYTES, Document
from entitle.engine.schema_errors import (
    schema_diagnostics,
)
from entitle.engine.wording import shown

KINDS = {
    "Calendar": "calendar",
    "Sla": "sla",
    "Plan": "plan",
    "Contract": "contract",
    "ContractTemplate": "contract-template",
}


class UnloadedFiles:
    """The files that did not load: a reference is held back (not reported as unknown) only
    when its id is a word of one of them, as that file may define it."""

    def __init__(self, paths: Iterable[str]):
        self._paths = sorted(set(paths))

    def may_define(self, ident: str) -> bool:
        return bool(self._paths) and (self._words is None or ident in self._words)

    @cached_property
    def _words(self) -> frozenset[str] | None:
        """Every word of those files; None when one cannot be read (it may define anything)."""
        words: set[str] = set()
        for path in map(Path, self._paths):
            try:
                if path.stat().st_size > MAX_FILE_BYTES:
                    return None
                words.update(_WORD.findall(path.read_bytes().decode("utf-8", errors="replace")))
            except OSError:
                return None
        return frozenset(words)


_WORD = re.compile(r"[A-Za-z0-9._:-]+")


def validate(documents: Iterable[Document], *, unloaded: Iterable[str] = ()) -> list[Diagnostic]:
    """Schema errors, then the semantic checks no schema can express. `unloaded`: paths of the
    bundle's files that did not load; a reference that one of them may define is not checked."""
    docs = list(documents)
    out: list[Diagnostic] = []
    valid: dict[str, list[Document]] = {kind: [] for kind in KINDS}
    invalid: dict[str, set[str]] = {kind: set() for kind in KINDS}
    unkinded: set[str] = set()  # ids of documents whose kind is wrong: any kind may refer to them
    for doc in docs:
        kind = doc.data.get("kind")
        if kind not in KINDS and isinstance(doc.data.get("id"), str):
            unkinded.add(doc.data["id"])
        if kind is None:
            out.append(doc.diagnostic(
                (), f"missing required field 'kind'; start the document with one of "
                f"{', '.join(f'`kind: {k}`' for k in KINDS)}",
            ))
            continue
        if kind not in KINDS:
            out.append(doc.diagnostic(
                ("kind",),
                f"unknown kind {shown(kind)}; expected one of {', '.join(KINDS)}"
                f"{did_you_mean(kind, KINDS)}",
            ))
            continue
        errors = schema_diagnostics(doc, KINDS[kind])
        out += errors
        if not errors:
            valid[kind].append(doc)
        elif isinstance(doc.data.get("id"), str):
            invalid[kind].add(doc.data["id"])
    known_bad = {kind: ids | unkinded for kind, ids in invalid.items()}
    out += _semantic(valid, known_bad, UnloadedFiles(unloaded))
    return sorted(set(out))


def _semantic(valid: dict[str, list[Document]], invalid: dict[str, set[str]],
              unloaded: UnloadedFiles) -> list[Diagnostic]:
    """Cross-document checks over the documents that passed their schema; a reference to a
    document that failed its schema (or may be in a file that did not load) is not reported."""
    out: list[Diagnostic] = []
    ids: dict[str, dict[str, Document]] = {}
    for kind, docs in valid.items():
        seen: dict[str, Document] = {}
        for doc in docs:
            ident = str(doc.data["id"])
            if ident in seen:
                first = seen[ident]
                line, _ = first.locate(("id",))
                out.append(doc.diagnostic(
                    ("id",), f"duplicate {kind} id {ident!r} (first defined at {first.path}:{line})"
                ))
            else:
                seen[ident] = doc
        ids[kind] = seen

    closest: dict[str, Meant] = {}

    def ref(doc: Document, field: str, kind: str) -> None:
        value = doc.data.get(field)
        if value is None or value in ids[kind] or value in invalid[kind] or \
                unloaded.may_define(value):
            return
        if kind not in closest:
            closest[kind] = Meant(ids[kind])
        noun = {"ContractTemplate": "template", "Sla": "SLA"}.get(kind, kind.lower())
        out.append(doc.diagnostic(
            (field,), f"unknown {noun} {value!r}{suggestion(closest[kind](value))}"
        ))

    def zone(doc: Document, field: str = "timezone") -> None:
        value = doc.data.get(field)
        if value is not None and value not in iana_zones():
            abbreviation = zone_abbreviation(str(value))
            fix = f": {abbreviation}" if abbreviation else suggestion(zone_suggestion(value))
            out.append(doc.diagnostic((field,), f"unknown IANA time zone {value!r}{fix}"))

    for doc in valid["Calendar"]:
        zone(doc)
        out += calendar_hours(doc)
    for doc in valid["Sla"]:
        ref(doc, "calendar", "Calendar")
        out += sla_targets(doc, ids["Calendar"])
        out += shadowed_rules(doc)
        out += empty_bands(doc)
        out += partial_rule_targets(doc)
        out += sla_clock_settings(doc)
    for doc in valid["Plan"]:
        ref(doc, "sla", "Sla")
        out += alert_thresholds(doc)
    for doc in valid["ContractTemplate"]:
        ref(doc, "plan", "Plan")
        zone(doc)
    spans: list[ContractSpan] = []
    for doc in valid["Contract"]:
        ref(doc, "template", "ContractTemplate")
        zone(doc)
        merged = merged_contract(doc, ids["ContractTemplate"])
        template = doc.data.get("template")
        resolved = template is None or template in ids["ContractTemplate"]
        if merged.get("plan") is None and resolved:
            out.append(doc.diagnostic((), "missing required field 'plan' (or a template with one)"))
        elif "plan" in doc.data:
            ref(doc, "plan", "Plan")
        out += contract_dates(doc, merged, ids["Plan"])
        span = contract_span(doc, merged) if resolved else None  # else products, term unknown
        spans += [span] if span is not None else []
    out += overlap_diagnostics(spans)
    return out


def validate_suite(documents: Iterable[Document], bundle: Iterable[Document] | None = None,
                   *, references: bool = True) -> list[Diagnostic]:
    """Test suites against testsuite.schema.json, then the fixtures their tests name (the
    runner reports those per test instead). `bundle`: the valid bundle they run against, for
    the contract ids in usage (None: not checked)."""
    contracts = None if bundle is None else frozenset(
        str(d.data.get("id")) for d in bundle if d.data.get("kind") == "Contract")
    out: list[Diagnostic] = []
    for doc in documents:
        out += schema_diagnostics(doc, "testsuite")
        out += suite_references(doc, contracts) if references else []
    return sorted(out)
