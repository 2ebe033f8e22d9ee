"""Stage 2: every problem in a bundle, each located at the YAML that causes it."""

from __future__ import annotations

import difflib
import itertools
import json
import zoneinfo
from collections.abc import Iterable
from datetime import date
from functools import cache
from importlib import resources

import jsonschema

from entitle.engine.compile import interval, merged_contract
from entitle.engine.diagnostics import Diagnostic
from entitle.engine.durations import parse_duration
from entitle.engine.load import Document
from entitle.engine.model import WEEKDAYS

KINDS = {
    "Calendar": "calendar",
    "Sla": "sla",
    "Plan": "plan",
    "Contract": "contract",
    "ContractTemplate": "contract-template",
}


@cache
def schema_validator(name: str) -> jsonschema.Draft202012Validator | None:
    """The kind's JSON Schema from entitle/schemas, or None when it has none."""
    try:
        text = resources.files("entitle").joinpath(f"schemas/{name}.schema.json").read_text()
    except FileNotFoundError:
        return None
    return jsonschema.Draft202012Validator(
        json.loads(text), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


@cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def did_you_mean(word: object, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _schema_errors(doc: Document, name: str) -> list[Diagnostic]:
    validator = schema_validator(name)
    if validator is None:
        return []
    out = []
    for error in validator.iter_errors(doc.data):
        pointer = tuple(error.absolute_path)
        message = error.message
        if error.validator == "additionalProperties":
            allowed = list((error.schema.get("properties") or {}).keys())
            extra = [k for k in error.instance if k not in allowed]
            for key in extra:
                out.append(doc.diagnostic(
                    (*pointer, key),
                    f"unknown field {key!r}{did_you_mean(key, allowed)}",
                    key=True,
                ))
            continue
        if error.validator == "required":
            message = f"missing required field: {error.message.split(' is a required')[0]}"
        elif error.validator == "enum":
            allowed = ", ".join(map(str, error.validator_value))
            hint = did_you_mean(error.instance, map(str, error.validator_value))
            message = f"{error.instance!r} is not allowed; expected one of {allowed}{hint}"
        out.append(doc.diagnostic(pointer, message))
    return out


def validate(documents: Iterable[Document]) -> list[Diagnostic]:
    """Schema errors, then the semantic checks no schema can express."""
    docs = list(documents)
    out: list[Diagnostic] = []
    valid: dict[str, list[Document]] = {kind: [] for kind in KINDS}
    for doc in docs:
        kind = doc.data.get("kind")
        if kind not in KINDS:
            out.append(doc.diagnostic(
                ("kind",),
                f"unknown kind {kind!r}{did_you_mean(kind, KINDS)}; "
                f"expected one of {', '.join(KINDS)}",
            ))
            continue
        errors = _schema_errors(doc, KINDS[kind]) + _required(doc, kind)
        out += errors
        if not errors:
            valid[kind].append(doc)
    out += _semantic(valid)
    return sorted(set(out))


_REQUIRED = {
    "Calendar": ("id", "timezone"),
    "Sla": ("id", "targets"),
    "Plan": ("id", "type", "unit", "sla"),
    "Contract": ("id", "customer", "start"),
    "ContractTemplate": ("id",),
}


def _required(doc: Document, kind: str) -> list[Diagnostic]:
    return [
        doc.diagnostic((), f"missing required field {name!r} in {kind}")
        for name in _REQUIRED[kind]
        if doc.data.get(name) in (None, "")
    ]


def _semantic(valid: dict[str, list[Document]]) -> list[Diagnostic]:
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

    def ref(doc: Document, field: str, kind: str) -> None:
        value = doc.data.get(field)
        if value is not None and value not in ids[kind]:
            noun = {"ContractTemplate": "template", "Sla": "SLA"}.get(kind, kind.lower())
            out.append(doc.diagnostic(
                (field,), f"unknown {noun} {value!r}{did_you_mean(value, ids[kind])}"
            ))

    def zone(doc: Document, field: str = "timezone") -> None:
        value = doc.data.get(field)
        if value is not None and value not in _zones():
            out.append(doc.diagnostic(
                (field,), f"unknown IANA time zone {value!r}{did_you_mean(value, _zones())}"
            ))

    for doc in valid["Calendar"]:
        zone(doc)
        out += _calendar_hours(doc)
    for doc in valid["Sla"]:
        ref(doc, "calendar", "Calendar")
        out += _sla_targets(doc)
    for doc in valid["Plan"]:
        ref(doc, "sla", "Sla")
    for doc in valid["ContractTemplate"]:
        ref(doc, "plan", "Plan")
        zone(doc)
    for doc in valid["Contract"]:
        ref(doc, "template", "ContractTemplate")
        zone(doc)
        merged = merged_contract(doc, ids["ContractTemplate"])
        if merged.get("plan") is None:
            out.append(doc.diagnostic((), "missing required field 'plan' (or a template with one)"))
        elif "plan" in doc.data:
            ref(doc, "plan", "Plan")
        out += _contract_dates(doc, merged, ids["Plan"])
    return out


def _calendar_hours(doc: Document) -> list[Diagnostic]:
    out = []
    hours = doc.data.get("hours") or {}
    total = 0
    for day, intervals in hours.items():
        if day not in WEEKDAYS:
            out.append(doc.diagnostic(
                ("hours", day), f"unknown weekday {day!r}; use {', '.join(WEEKDAYS)}", key=True
            ))
            continue
        spans = []
        for i, text in enumerate(intervals or ()):
            try:
                start, end = interval(str(text))
                if not (0 <= start < 1440 and 0 < end <= 1440 and start < end):
                    raise ValueError
            except ValueError:
                out.append(doc.diagnostic(
                    ("hours", day, i),
                    f"{text!r} is not a working interval; write \"09:00-17:00\" (start before "
                    "end, 24:00 only as an end)",
                ))
                continue
            spans.append((start, end, i))
        spans.sort()
        for (_s1, e1, _), (s2, _e2, i2) in itertools.pairwise(spans):
            if s2 < e1:
                out.append(doc.diagnostic(
                    ("hours", day, i2), f"working intervals on {day} overlap"
                ))
        total += sum(e - s for s, e, _ in spans)
    if not out and total == 0:
        out.append(doc.diagnostic(
            ("hours",), "the calendar has no working time; business-time targets would never "
            "come due (add intervals such as mon: [\"09:00-17:00\"])"
        ))
    return out


def _sla_targets(doc: Document) -> list[Diagnostic]:
    out = []
    data = doc.data
    default_clock = data.get("clock") or ("business" if data.get("calendar") else "calendar")
    blocks = [(("targets",), data.get("targets") or {})]
    blocks += [
        (("rules", i, "targets"), r.get("targets") or {})
        for i, r in enumerate(data.get("rules") or ())
    ]
    for prefix, targets in blocks:
        for priority, metrics in targets.items():
            for metric, value in (metrics or {}).items():
                pointer = (*prefix, priority, metric)
                clock = default_clock
                if isinstance(value, dict):
                    clock = value.get("clock", clock)
                    pointer, value = (*pointer, "within"), value.get("within")
                try:
                    parse_duration(str(value))
                except ValueError as exc:
                    out.append(doc.diagnostic(pointer, str(exc)))
                    continue
                if clock == "business" and not data.get("calendar"):
                    out.append(doc.diagnostic(
                        pointer, "a business-time target needs the SLA's `calendar`; add one "
                        "or use {within: ..., clock: calendar}",
                    ))
    return out


def _contract_dates(doc: Document, merged: dict, plans: dict[str, Document]) -> list[Diagnostic]:
    out = []
    try:
        start = date.fromisoformat(str(merged.get("start")))
    except ValueError:
        return [doc.diagnostic(("start",), f"{merged.get('start')!r} is not a date (YYYY-MM-DD)")]
    end_text = merged.get("end")
    if end_text is not None:
        try:
            end = date.fromisoformat(str(end_text))
        except ValueError:
            return [doc.diagnostic(("end",), f"{end_text!r} is not a date (YYYY-MM-DD)")]
        if end <= start:
            out.append(doc.diagnostic(
                ("end",), f"end {end} is not after start {start}; `end` is exclusive"
            ))
    plan = plans.get(merged.get("plan", ""))
    discontinued = plan.data.get("discontinued") if plan else None
    if isinstance(discontinued, str) and start >= date.fromisoformat(discontinued):
        out.append(doc.diagnostic(
            ("start",),
            f"plan {plan.data['id']!r} is discontinued since {discontinued}; a contract "
            "starting after that needs another plan",
        ))
    return out


def validate_suite(documents: Iterable[Document]) -> list[Diagnostic]:
    """Test suites against testsuite.schema.json."""
    out: list[Diagnostic] = []
    for doc in documents:
        out += _schema_errors(doc, "testsuite")
    return sorted(out)
