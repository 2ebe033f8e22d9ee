"""The per-kind JSON Schemas: valid themselves, accept the example bundle, explain mistakes."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from entitle.engine.durations import DURATION_PATTERN
from entitle.engine.load import load_file, load_text, policy_files
from entitle.engine.schema_errors import schema_validator
from entitle.engine.validate import KINDS, validate

ROOT = Path(__file__).resolve().parent.parent
POLICIES = ROOT / "policies"
SCHEMAS = sorted(set(KINDS.values()) | {"testsuite"})


def schema_of(name: str) -> dict:
    text = resources.files("entitle").joinpath(f"schemas/{name}.schema.json").read_text()
    return json.loads(text)


def nodes(node: object, where: str = ""):
    """Every schema object inside a schema, with a readable location."""
    if isinstance(node, dict):
        yield where, node
        for key, value in node.items():
            yield from nodes(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from nodes(value, f"{where}/{i}")


@pytest.mark.parametrize("name", SCHEMAS)
def test_schema_is_valid_draft_2020_12(name):
    schema = schema_of(name)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].endswith(f"/{name}.schema.json")
    assert schema["title"] and schema["description"]


@pytest.mark.parametrize("name", sorted(set(KINDS.values())))
def test_kind_schema_is_strict_and_described(name):
    schema = schema_of(name)
    kind = next(k for k, v in KINDS.items() if v == name)
    assert schema["properties"]["kind"]["const"] == kind
    for where, node in nodes(schema):
        if "properties" in node and not where.endswith(("/if", "/then")):
            assert node.get("additionalProperties") is False, where
            for prop, spec in node["properties"].items():
                assert spec.get("description"), f"{where}/properties/{prop} has no description"
        if "pattern" in node:  # users never see a regex: every pattern explains itself
            assert node.get("errorMessage"), where


@pytest.mark.parametrize("name", ["sla", "plan"])
def test_durations_use_the_engine_pattern(name):
    defs = schema_of(name)["$defs"]
    if "duration" in defs:
        assert defs["duration"]["pattern"] == DURATION_PATTERN


def test_the_example_bundle_validates():
    docs = []
    for path in [*policy_files(POLICIES), ROOT / "tests/fixtures/server/contracts.yaml"]:
        loaded, diags = load_file(path)
        assert diags == []
        docs += loaded
    for doc in docs:
        errors = list(schema_validator(KINDS[doc.data["kind"]]).iter_errors(doc.data))
        assert errors == [], (doc.path, [e.message for e in errors])
    assert [str(d) for d in validate(docs)] == []


@pytest.mark.parametrize("text", [
    "[{date: 2026-01-01, name: x, yearly: true}]",
    "[]",
])
def test_optional_calendar_parts(text):
    docs, _ = load_text(f"kind: Calendar\nid: c\ntimezone: UTC\nhours: {{sat: []}}\n"
                        f"holidays: {text}\n", "c.yaml")
    assert not [e for e in schema_validator("calendar").iter_errors(docs[0].data)]


@pytest.mark.parametrize(
    "value", ["30m", "4h", "1h30m", "2d", "1w", "90s", "0.5h", ".5h", "1w2d3h4m5s"]
)
def test_durations_the_reference_allows(value):
    docs, _ = load_text(f"kind: Sla\nid: s\ntargets: {{high: {{resolution: {value}}}}}\n", "s.yaml")
    assert not list(schema_validator("sla").iter_errors(docs[0].data))


@pytest.mark.parametrize("value", ["2026-06-30", "true"])
def test_discontinued_is_a_date_or_true(value):
    text = f"kind: Plan\nid: p\ntype: unlimited\nunit: hours\nsla: s\ndiscontinued: {value}\n"
    docs, _ = load_text(text, "p.yaml")
    assert not list(schema_validator("plan").iter_errors(docs[0].data))


PLAN = "kind: Plan\nid: p\ntype: per_period\nunit: incidents\nlimit: 20\nreset: monthly\nsla: s\n"
SLA = "kind: Sla\nid: s\ntargets:\n  high: {first_response: 1h, resolution: 3h}\n"
CALENDAR = "kind: Calendar\nid: c\ntimezone: Europe/Berlin\nhours:\n  mon: [\"09:00-17:00\"]\n"
CONTRACT = "kind: Contract\nid: k\ncustomer: acme\nplan: p\nstart: 2026-01-01\n"
TEMPLATE = "kind: ContractTemplate\nid: t\nplan: p\nterm_months: 12\n"

# (document, line:col, message fragment): what an author gets for a typical mistake.
BROKEN = [
    # Plan
    (PLAN.replace("limit: 20", "limit: ten"), "5:8", "limit must be a number, got 'ten'"),
    (PLAN.replace("limit: 20", "limt: 20"), "5:1", "unknown field 'limt'; did you mean 'limit'?"),
    (PLAN.replace("limit: 20\n", ""), "1:1", "a per_period plan needs `limit`"),
    (PLAN.replace("reset: monthly\n", ""), "1:1",
     "a per_period plan needs `reset` (weekly, monthly, quarterly or yearly)"),
    (PLAN.replace("reset: monthly", "reset: montly"), "6:8",
     "reset 'montly' is not allowed; expected one of weekly, monthly, quarterly, yearly; "
     "did you mean 'monthly'?"),
    (PLAN.replace("type: per_period", "type: unlimited").replace("reset: monthly\n", ""), "5:1",
     "an unlimited plan takes no `limit`; remove it"),
    (PLAN.replace("type: per_period", "type: pack"), "6:1",
     "a pack plan takes no `reset`; remove it"),
    (PLAN.replace("limit: 20", "limit: 2.5"), "5:8",
     "limit must be a whole number, got 2.5 (a plan with unit: incidents)"),
    (PLAN.replace("limit: 20", "limit: 0"), "5:8", "limit must be greater than 0, got 0"),
    (PLAN + "alerts: {usage_percent: [80, 100, 80]}\n", "8:35",
     "duplicate 80 in alerts.usage_percent; list each value once"),
    (PLAN + "alerts: {usage_percent: [80, 120]}\n", "8:30",
     "alerts.usage_percent[1] must be at most 100, got 120"),
    (PLAN + "alerts: {days_before_expiry: [30, 0]}\n", "8:35",
     "alerts.days_before_expiry[1] must be at least 1, got 0"),
    (PLAN + "discontinued: 2026-13-01\n", "8:15",
     "'2026-13-01' is not a date: there is no month 13 (YYYY-MM-DD)"),
    (PLAN + "discontinued: 2026/06/30\n", "8:15",
     "'2026/06/30' is not a date; write YYYY-MM-DD, e.g. 2026-01-01"),
    (PLAN + "discontinued: false\n", "8:15", "false is not allowed for discontinued; write true"),
    (PLAN.replace("type: per_period\n", ""), "1:1",
     "missing required field 'type' (unlimited, per_period or pack)"),
    (PLAN.replace("id: p", "id: 2026"), "2:5",
     'id must be text, got 2026; put it in quotes: "2026"'),
    (PLAN.replace("id: p", "id: -p"), "2:5", "'-p' is not a valid id; use 1-128 letters"),
    (PLAN.replace("id: p", "id:"), "2:4", "id is empty; use 1-128 letters"),
    (PLAN.replace("reset: monthly", "reset:"), "6:7",
     "reset is empty; write one of weekly, monthly, quarterly, yearly"),
    # Sla
    (SLA.replace("resolution: 3h", "resolution: 4 hours"), "4:42",
     "'4 hours' is not a duration; write e.g. 30m, 4h, 1h30m"),
    (SLA.replace("resolution: 3h", "resolution: {within: 3 h, clock: calendar}"), "4:51",
     "'3 h' is not a duration; write e.g. 30m, 4h, 1h30m"),
    (SLA.replace("resolution: 3h", "resolution: {clock: calendar}"), "4:42",
     "missing required field 'within' in targets.high.resolution"),
    (SLA.replace("resolution: 3h", "resolution: 8"), "4:42",
     "8 is not a target; write a duration such as 4h, or {within: 4h, clock: calendar}"),
    (SLA.replace("high:", "critical:"), "4:3",
     "unknown field 'critical' in targets; expected one of urgent, high, medium, low"),
    (SLA.replace("first_response", "first_reponse"), "4:10",
     "unknown field 'first_reponse' in targets.high; did you mean 'first_response'?"),
    (SLA.replace("resolution: 3h", "resolution: {within: 3h, clock: wall}"), "4:62",
     "targets.high.resolution.clock 'wall' is not allowed; expected one of business, calendar"),
    (SLA + "rules:\n  - when: {attributes: {tier: gold}}\n    targets: {}\n", "6:31",
     "'gold' is not an attribute condition; write a band such as {min: 50, max: 100} or a list"),
    (SLA + "rules:\n  - when: {attributes: {seats: {min: fifty}}}\n    targets: {}\n", "6:38",
     "rules[0].when.attributes.seats.min must be a number, got 'fifty'"),
    (SLA + "rules:\n  - when: {attributes: {seats: {}}}\n    targets: {}\n", "6:32",
     "rules[0].when.attributes.seats must not be empty; write min or max"),
    (SLA + "rules:\n  - name: no-targets\n", "6:5", "missing required field 'targets' in rules[0]"),
    (SLA.replace("targets:", "target:"), "3:1", "unknown field 'target'; did you mean 'targets'?"),
    # Calendar
    (CALENDAR.replace("09:00-17:00", "9-17"), "5:9",
     "'9-17' is not a working interval; write \"09:00-17:00\""),
    (CALENDAR.replace("09:00-17:00", "24:00-24:00"), "5:9",
     "'24:00-24:00' is not a working interval"),
    (CALENDAR.replace("mon:", "monday:"), "5:3",
     "unknown field 'monday' in hours; did you mean 'mon'?"),
    (CALENDAR.replace("[\"09:00-17:00\"]", "\"09:00-17:00\""), "5:8",
     "hours.mon must be a list, got '09:00-17:00'; write [09:00-17:00]"),
    (CALENDAR + "holidays:\n  - {date: 2026-02-30}\n", "7:12", "'2026-02-30' is not a date"),
    (CALENDAR + "holidays:\n  - {name: Christmas}\n", "7:5",
     "missing required field 'date' in holidays[0]"),
    (CALENDAR + "holidays:\n  - {date: 2026-12-25, yearly: yes}\n", "7:32",
     "holidays[0].yearly must be true or false, got 'yes'"),
    (CALENDAR.replace("timezone: Europe/Berlin\n", ""), "1:1", "missing required field 'timezone'"),
    # Contract
    (CONTRACT.replace("customer: acme", "customer: 12345"), "3:11",
     'customer must be text, got 12345; put it in quotes: "12345"'),
    (CONTRACT.replace("2026-01-01", "2026/01/01"), "5:8",
     "'2026/01/01' is not a date; write YYYY-MM-DD"),
    (CONTRACT.replace("start: 2026-01-01\n", ""), "1:1", "missing required field 'start'"),
    (CONTRACT + "precedence: high\n", "6:13", "precedence must be a whole number, got 'high'"),
    (CONTRACT + "suspended: yes\n", "6:12", "suspended must be true or false, got 'yes'"),
    (CONTRACT + "products: []\n", "6:11", "products must not be empty"),
    (CONTRACT + "products: all\n", "6:11",
     "products must be a list, got 'all'; leave `products` out to cover every product"),
    (CONTRACT + "products: backup\n", "6:11",
     "products must be a list, got 'backup'; write [backup]"),
    (CONTRACT.replace("2026-01-01", "2026-02-29"), "5:8",
     "'2026-02-29' is not a date: February 2026 has 28 days"),
    (CONTRACT.replace("2026-01-01", "2028-02-30"), "5:8",
     "'2028-02-30' is not a date: February 2028 has 29 days"),
    (CONTRACT + "end:\n", "6:5",
     "end is empty; write YYYY-MM-DD, e.g. 2026-01-01, or leave the field out"),
    (CONTRACT.replace("start: 2026-01-01", "start:"), "5:7",
     "start is empty; write YYYY-MM-DD, e.g. 2026-01-01"),
    (CONTRACT + "notify: [a@b.example, ~]\n", "6:23", "notify[1] is empty; write text, or remove"),
    (CONTRACT + "notify: it@acme.example\n", "6:9",
     "notify must be a list, got 'it@acme.example'; write [it@acme.example]"),
    (CONTRACT + "term_months: 12\n", "6:1",
     "unknown field 'term_months'; expected one of kind, id"),
    # ContractTemplate
    (TEMPLATE.replace("term_months: 12", "term_months: 0"), "4:14",
     "term_months must be at least 1, got 0"),
    (TEMPLATE.replace("term_months: 12", "term_months: 1.5"), "4:14",
     "term_months must be a whole number, got 1.5"),
    (TEMPLATE + "customer: acme\n", "5:1", "unknown field 'customer'; expected one of"),
    (TEMPLATE + "start: 2026-01-01\n", "5:1", "unknown field 'start'"),
    (TEMPLATE.replace("plan: p", "plan: p q"), "3:7", "'p q' is not a valid id"),
]


@pytest.mark.parametrize(("text", "where", "fragment"), BROKEN,
                         ids=[f"{t.split(chr(10))[0][6:]}-{w}" for t, w, _ in BROKEN])
def test_broken_documents_are_explained_where_they_are(text, where, fragment):
    docs, diags = load_text(text, "x.yaml")
    assert diags == []
    found = [str(d) for d in validate(docs)]
    assert any(line.startswith(f"x.yaml:{where}: ") and fragment in line for line in found), found
    for line in found:  # never a raw jsonschema message or a regex
        assert "does not match" not in line and "^" not in line and "is not valid under" not in line


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_kind_has_broken_examples(kind):
    assert sum(t.startswith(f"kind: {kind}\n") for t, _, _ in BROKEN) >= 3


@pytest.mark.parametrize(("written", "quoted"), [("007", '"007"'), ("1e3", '"1e3"'),
                                                 ("12345", '"12345"'), ("-4.50", '"-4.50"')])
def test_a_number_for_text_is_quoted_as_written(tmp_path, written, quoted):
    """The loader keeps the value (7.0); the hint quotes what the author typed (007)."""
    path = tmp_path / "c.yaml"
    path.write_text(CONTRACT.replace("customer: acme", f"customer: {{x: 1}}\nowner: {written}"))
    (doc,), _ = load_file(path, str(path))
    found = [d for d in validate([doc]) if d.line == 4]
    assert [d.message for d in found] == [
        f"owner must be text, got {written}; put it in quotes: {quoted}"]


def test_one_mistake_one_message():
    docs, _ = load_text(PLAN.replace("limit: 20", "limit: ten"), "x.yaml")
    assert [d.message for d in validate(docs)] == ["limit must be a number, got 'ten'"]
    docs, _ = load_text(CALENDAR.replace("09:00-17:00", "2026-1-1"), "x.yaml")
    assert len(validate(docs)) == 1


def test_the_documented_examples_validate():
    """The YAML in README.md and docs/policy-reference.md is what the schemas accept."""
    texts = [(ROOT / name).read_text() for name in ("README.md", "docs/policy-reference.md")]
    blocks = [b for text in texts for b in re.findall(r"```yaml\n(.*?)```", text, re.S)]
    checked = 0
    for block in blocks:
        docs, diags = load_text(block, "example.yaml")
        assert diags == []
        for doc in docs:
            if doc.data.get("kind") in KINDS:
                validator = schema_validator(KINDS[doc.data["kind"]])
                assert [e.message for e in validator.iter_errors(doc.data)] == [], block
                checked += 1
    assert checked >= len(KINDS)
