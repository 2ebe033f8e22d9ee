"""Semantic checks (engine/checks): overlapping contracts, shadowed SLA rules, `d`/`w` in
business time, alert thresholds. Each case is a YAML file next to a small base bundle."""

from __future__ import annotations

import difflib
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from entitle.engine.checks.contract import ContractSpan, contract_overlaps
from entitle.engine.checks.plan import alert_thresholds
from entitle.engine.hints import Closest, did_you_mean, zone_suggestion
from entitle.engine.load import load_text
from entitle.engine.validate import validate, validate_suite

BASE = """\
kind: Calendar
id: ny
timezone: America/New_York
hours: {mon: ["09:00-17:00"], tue: ["09:00-17:00"], wed: ["09:00-17:00"],
        thu: ["09:00-17:00"], fri: ["09:00-17:00"]}
---
kind: Calendar
id: always
timezone: UTC
hours: {mon: ["00:00-24:00"], tue: ["00:00-24:00"], wed: ["00:00-24:00"],
        thu: ["00:00-24:00"], fri: ["00:00-24:00"], sat: ["00:00-24:00"], sun: ["00:00-24:00"]}
---
kind: Calendar
id: short
timezone: UTC
hours: {mon: ["09:00-16:30"], tue: ["09:00-16:30"], wed: ["09:00-16:30"],
        thu: ["09:00-16:30"], fri: ["09:00-16:30"]}
---
kind: Sla
id: std
calendar: ny
targets:
  low: {first_response: 8h}
---
kind: Plan
id: p
type: unlimited
unit: incidents
sla: std
---
kind: ContractTemplate
id: annual
plan: p
products: [backup]
term_months: 12
"""


def contract(ident: str, *lines: str, customer: str = "acme") -> str:
    return "\n".join(["---", "kind: Contract", f"id: {ident}", f"customer: {customer}",
                      "plan: p", *lines]) + "\n"


def sla(*lines: str, calendar: str = "ny") -> str:
    return "\n".join(["kind: Sla", "id: s2", f"calendar: {calendar}", *lines]) + "\n"


def rules(*whens: str) -> str:
    out = ["targets:", "  low: {first_response: 8h}", "rules:"]
    for i, when in enumerate(whens):
        out += [f"  - name: r{i + 1}", *([f"    when: {when}"] if when else []),
                "    targets: {low: {first_response: 4h}}"]
    return sla(*out)


OVERLAP = "overlaps"
# (case YAML, expected "case.yaml:line" or None for no diagnostic, fragment, severity)
CASES = [
    pytest.param(
        contract("acme-a", "products: [backup, mail]", "start: 2026-01-01", "end: 2027-01-01")
        + contract("acme-b", "products: [sync, backup]", "start: 2026-03-01", "end: 2027-06-01"),
        "case.yaml:13",
        "contract 'acme-b' overlaps 'acme-a' (case.yaml:2) on product 'backup' from 2026-03-01 "
        "to 2026-12-31; give both a different `precedence` or make the dates not overlap",
        "error", id="overlap-at-the-shared-product"),
    pytest.param(
        contract("acme-a", "template: annual", "start: 2026-01-01")
        + contract("acme-b", "products: [backup]", "start: 2026-12-01"),
        "case.yaml:12", "overlaps 'acme-a' (case.yaml:2) on product 'backup' from 2026-12-01 "
        "to 2026-12-31", "error", id="overlap-via-template-term"),
    pytest.param(
        contract("acme-a", "template: annual", "start: 2026-01-01")
        + contract("acme-b", "template: annual", "start: 2027-01-01"),
        None, "", "", id="template-renewal-is-adjacent"),
    pytest.param(
        contract("acme-a", "start: 2026-01-01", "end: 2026-07-01")
        + contract("acme-b", "start: 2026-07-01"),
        None, "", "", id="adjacent-end-is-exclusive"),
    pytest.param(
        contract("acme-a", "start: 2026-01-01", "precedence: 1")
        + contract("acme-b", "start: 2026-03-01", "precedence: 2"),
        None, "", "", id="distinct-precedences"),
    pytest.param(
        contract("acme-a", "start: 2026-01-01", "precedence: 1")
        + contract("acme-b", "start: 2026-03-01", "precedence: 1"),
        "case.yaml:12", "'acme-b' overlaps 'acme-a' (case.yaml:2) on every product from "
        "2026-03-01 on, with no end", "error", id="equal-precedences"),
    pytest.param(
        contract("acme-a", "start: 2026-01-01", "precedence: 1")
        + contract("acme-b", "start: 2026-03-01"),
        "case.yaml:12", OVERLAP, "error", id="one-precedence-is-not-enough"),
    pytest.param(
        contract("acme-a", "products: [backup]", "start: 2026-01-01")
        + contract("acme-b", "products: [mail]", "start: 2026-01-01"),
        None, "", "", id="disjoint-products"),
    pytest.param(
        contract("acme-a", "products: [backup]", "start: 2026-01-01")
        + contract("other", "products: [backup]", "start: 2026-01-01", customer="globex"),
        None, "", "", id="different-customers"),
    pytest.param(
        contract("acme-a", "start: 2020-01-01")
        + contract("acme-b", "products: [backup]", "start: 2030-01-01", "end: 2031-01-01"),
        "case.yaml:11", "on product 'backup' from 2030-01-01 to 2030-12-31", "error",
        id="open-ended-covers-everything-after"),
    pytest.param(
        contract("acme-a", "products: [mail, sync]", "start: 2026-01-01", "end: 2027-01-01")
        + contract("acme-b", 'products: ["*"]', "start: 2026-05-01", "end: 2026-06-01"),
        "case.yaml:13", "on product 'mail' from 2026-05-01 to 2026-05-31", "error",
        id="star-covers-every-product"),
    pytest.param(
        contract("acme-a", "products: [backup]", "start: 2026-01-01", "suspended: true")
        + contract("acme-b", "products: [backup]", "start: 2026-02-01"),
        "case.yaml:13", OVERLAP, "error", id="suspended-still-counts"),
    pytest.param(
        contract("acme-z", "products: [backup]", "start: 2026-01-01")
        + contract("acme-y", "products: [backup]", "start: 2026-01-01"),
        "case.yaml:5", "'acme-z' overlaps 'acme-y' (case.yaml:9)", "error",
        id="same-start-reported-on-the-later-id"),
    pytest.param(
        rules("{products: [a]}", "", "{products: [b]}"),
        "case.yaml:12", "rule 'r3' can never match: rule 'r2' before it matches every ticket; "
        "move it above or remove it", "warning", id="rule-after-no-when"),
    pytest.param(
        rules("{}", "{products: [b]}"),
        "case.yaml:10", "rule 'r2' can never match: rule 'r1' before it matches every ticket",
        "warning", id="rule-after-empty-when"),
    pytest.param(
        rules("{attributes: {}}", "{products: [b]}"),
        "case.yaml:10", "rule 'r1' before it matches every ticket", "warning",
        id="rule-after-when-with-empty-parts"),
    pytest.param(
        rules("{products: [a, b], subject_contains: [Outage]}", "{products: [c]}",
              "{subject_contains: [outage], products: [b, a]}"),
        "case.yaml:13", "rule 'r3' can never match: rule 'r1' before it has the same `when`",
        "warning", id="rule-with-an-earlier-rules-when"),
    pytest.param(
        rules("{products: [a]}", "{products: [b]}", ""),
        None, "", "", id="catch-all-last-is-fine"),
    pytest.param(
        rules("{products: []}", "{products: [b]}"),
        None, "", "", id="empty-list-matches-nothing-so-shadows-nothing"),
    pytest.param(
        sla("targets:", "  low: {first_response: 1d}"),
        "case.yaml:5", "'1d' in business time is 24 working hours (3 working days on 'ny', an "
        "8-hour calendar); write 8h for one 8-hour working day, or use "
        "{within: 1d, clock: calendar}", "warning", id="d-in-business-time"),
    pytest.param(
        sla("targets:", "  low: {resolution: {within: 1w, clock: business}}"),
        "case.yaml:5", "'1w' in business time is 168 working hours (21 working days on 'ny', "
        "an 8-hour calendar); write 40h for 1 working week of 40 hours", "warning",
        id="w-in-business-time"),
    pytest.param(
        sla("clock: calendar", "targets:", "  low: {first_response: 8h, resolution: 2d}",
            "  high: {resolution: {within: 1d1h, clock: business}}"),
        "case.yaml:7", "'1d1h' in business time is 25 working hours", "warning",
        id="d-only-where-the-clock-is-business"),
    pytest.param(
        sla("targets:", "  low: {first_response: 30m}", "rules:", "  - targets:",
            "      low: {first_response: 2d}"),
        "case.yaml:8", "'2d' in business time is 48 working hours", "warning",
        id="d-in-a-rule-target"),
    pytest.param(
        sla("targets:", "  low: {first_response: 1d}", calendar="always"),
        None, "", "", id="d-on-a-24-hour-calendar-is-a-working-day"),
    pytest.param(
        sla("targets:", "  low: {first_response: 1d}", calendar="short"),
        "case.yaml:5", "(3.2 working days on 'short', a 7.5-hour calendar); write 7.5h for one "
        "7.5-hour working day", "warning", id="a-7.5-hour-calendar"),
    pytest.param(
        contract("acme-a", "template: anual", "start: 2026-01-01")
        + contract("acme-b", "products: [backup]", "start: 2026-03-01"),
        "case.yaml:5", "unknown template 'anual'; did you mean 'annual'?", "error",
        id="no-overlap-for-a-contract-whose-template-is-unknown"),
    pytest.param(
        sla("targets:", "  low: {first_response: 8h}", "rules:",
            "  - when: {attributes: {seats: {min: 100, max: 50}}}",
            "    targets: {low: {first_response: 4h}}"),
        "case.yaml:7", "rules[0].when.attributes.seats can never match: min 100 is above max 50; "
        "swap them", "error", id="band-with-min-above-max"),
    pytest.param(
        sla("targets:", "  low: {first_response: 8h}", "rules:",
            "  - when: {attributes: {seats: {min: 50, max: 50}}}",
            "    targets: {low: {first_response: 4h}}"),
        None, "", "", id="band-of-one-value"),
    pytest.param(
        sla("targets:", "  high: {first_response: 1h, resolution: 8h}", "rules:",
            "  - name: big", "    when: {products: [a]}", "    targets:",
            "      high: {first_response: 30m}"),
        "case.yaml:10", "rule 'big' gives high only first_response; resolution from the default "
        "targets does not apply under this rule: repeat it in the rule if meant", "warning",
        id="rule-drops-a-default-metric"),
    pytest.param(
        sla("targets:", "  high: {first_response: 1h, next_response: 2h, resolution: 8h}",
            "rules:", "  - when: {products: [a]}",
            "    targets: {high: {first_response: 30m}}"),
        "case.yaml:8", "rule 'rule-1' gives high only first_response; next_response and "
        "resolution from the default targets do not apply", "warning",
        id="rule-drops-two-default-metrics"),
    pytest.param(
        sla("targets:", "  high: {first_response: 1h}", "  low: {first_response: 8h}", "rules:",
            "  - when: {products: [a]}",
            "    targets: {high: {first_response: 30m, resolution: 4h}, medium: {resolution: 1h},",
            "              low: {}}"),
        None, "", "", id="rule-targets-that-drop-nothing"),
    pytest.param(
        sla("targets: {high: {resolution: 8h}}", "pause_on: [pending, On_Hold]",
            "pause_on_by_metric: {first_response: []}", "warn_at: [50, 75]"),
        None, "", "", id="clock-settings-that-are-fine"),
    pytest.param(
        sla("targets: {high: {resolution: 8h}}", "warn_at: [75, 50]"),
        "case.yaml:5", "warn_at must be ascending: 50 comes after 75; write e.g. [50, 75]",
        "error", id="warn-at-not-ascending"),
    pytest.param(
        sla("targets: {high: {resolution: 8h}}", "warn_at:", "  - 50", "  - 50"),
        "case.yaml:7", "duplicate 50 in warn_at; list each percent once", "error",
        id="warn-at-repeated"),
    pytest.param(
        sla("targets: {high: {resolution: 8h}}", "warn_at: [50, 100]"),
        "case.yaml:5", "100", "error", id="warn-at-100-is-the-breach"),
    pytest.param(
        sla("targets: {high: {resolution: 8h}}", "pause_on:", "  - pending", "  - Pending"),
        "case.yaml:7", "status 'Pending' repeats 'pending' in pause_on (statuses match after "
        "lower-casing); list it once", "error", id="pause-status-repeated-in-other-case"),
    pytest.param(
        sla("targets: {high: {resolution: 8h}}", "pause_on_by_metric:",
            "  resolution: [on_hold, ON_HOLD]"),
        "case.yaml:6", "status 'ON_HOLD' repeats 'on_hold' in pause_on_by_metric.resolution",
        "error", id="pause-status-repeated-per-metric"),
    pytest.param(
        sla("targets: {high: {resolution: 8h}}", "pause_on_by_metric: {resolve: [pending]}"),
        "case.yaml:5", "resolve", "error", id="pause-override-for-an-unknown-metric"),
]


def run(case: str):
    base, problems = load_text(BASE, "base.yaml")
    docs, more = load_text(case.lstrip("-\n"), "case.yaml")
    assert not problems and not more, problems + more
    return validate(base + docs)


@pytest.mark.parametrize(("case", "where", "fragment", "severity"), CASES)
def test_semantic_check(case, where, fragment, severity):
    found = run(case)
    if where is None:
        assert found == []
        return
    assert len(found) == 1, [str(d) for d in found]
    (d,) = found
    assert (f"{d.path}:{d.line}", d.severity) == (where, severity), str(d)
    assert fragment in d.message


@pytest.mark.parametrize(("alerts", "where", "fragment"), [
    ("{usage_percent: [80, 150]}", (6, 30), "150"),
    ("{usage_percent: [0]}", (6, 26), "0"),
    ("{usage_percent: [80, 80]}", (6, 30), "80"),
    ("{days_before_expiry: [30, 0]}", (6, 35), "0"),
    ("{days_before_expiry: [30, 7, 30]}", (6, 38), "30"),
])
def test_alert_thresholds_are_reported_once_at_the_item(alerts, where, fragment):
    """By the schema or the semantic backstop, whichever sees it first: once, at the item."""
    text = f"kind: Plan\nid: p2\ntype: unlimited\nunit: incidents\nsla: std\nalerts: {alerts}\n"
    found = run(text)
    assert len(found) == 1, [str(d) for d in found]
    assert ((found[0].line, found[0].col), found[0].severity) == (where, "error")
    assert fragment in found[0].message
    # The backstop alone (documents the schema no longer checks would reach it):
    (doc,), _ = load_text(text, "case.yaml")
    backstop = alert_thresholds(doc)
    assert [(d.line, d.col) for d in backstop] == [where]


def test_backstop_messages():
    text = ("kind: Plan\nid: p2\ntype: unlimited\nunit: incidents\nsla: std\n"
            "alerts: {usage_percent: [80, 80, 101], days_before_expiry: [0.5, 7]}\n")
    (doc,), _ = load_text(text, "plans.yaml")
    assert [str(d) for d in alert_thresholds(doc)] == [
        "plans.yaml:6:30: duplicate 80 in alerts.usage_percent; list each value once",
        "plans.yaml:6:34: alerts.usage_percent[2] must be a percentage from 1 to 100, got 101; "
        "change or remove it",
        "plans.yaml:6:61: alerts.days_before_expiry[0] must be a whole number >= 1, got 0.5; "
        "change or remove it",
    ]


def test_example_bundle_has_no_findings():
    from pathlib import Path

    from entitle.engine.load import load_bundle_files

    docs, problems, _ = load_bundle_files(Path(__file__).resolve().parent.parent / "policies")
    assert problems == [] and validate(docs) == []


# --- the sweep against all pairs -------------------------------------------------------------

DAY0 = date(2026, 1, 1)


def _conflict(a: ContractSpan, b: ContractSpan) -> bool:
    if a.customer != b.customer:
        return False
    if a.precedence is not None and b.precedence is not None and a.precedence != b.precedence:
        return False
    if a.products is not None and b.products is not None and not a.products & b.products:
        return False
    return (b.end is None or a.start < b.end) and (a.end is None or b.start < a.end)


@st.composite
def spans(draw):
    n = draw(st.integers(0, 12))
    out = []
    for i in range(n):
        start = DAY0 + timedelta(days=draw(st.integers(0, 30)))
        length = draw(st.one_of(st.none(), st.integers(1, 15)))
        products = draw(st.one_of(st.none(), st.frozensets(st.sampled_from("xyz"), min_size=1)))
        out.append(ContractSpan(
            id=f"c{draw(st.integers(0, 99)):02d}-{i}",
            customer=draw(st.sampled_from("ab")),
            start=start,
            end=start + timedelta(days=length) if length is not None else None,
            products=products,
            precedence=draw(st.one_of(st.none(), st.integers(0, 2))),
        ))
    return out


@settings(max_examples=400, deadline=None)
@given(spans())
def test_sweep_finds_what_all_pairs_finds(contracts):
    ordered = sorted(contracts, key=lambda s: (s.start, s.id))
    expected = {
        later.id
        for j, later in enumerate(ordered)
        if any(_conflict(earlier, later) for earlier in ordered[:j])
    }
    found = contract_overlaps(contracts)
    assert {o.later.id for o in found} == expected
    assert len(found) == len(expected)  # one report per contract
    for later, earlier, product in found:
        assert _conflict(earlier, later)
        assert (earlier.start, earlier.id) < (later.start, later.id)
        both = [s.products for s in (earlier, later) if s.products is not None]
        assert product is None if not both else product in frozenset.intersection(*both)


def test_sweep_is_fast_on_a_large_bundle():
    """100,000 open-ended contracts of one customer on distinct products, then one overlap."""
    many = [
        ContractSpan(f"k{i:06d}", "big", DAY0 + timedelta(days=i % 400), None,
                     frozenset({f"p{i}"}), None)
        for i in range(100_000)
    ]
    many.append(ContractSpan("zz", "big", DAY0 + timedelta(days=500), None,
                             frozenset({"p7"}), None))
    found = contract_overlaps(many)
    assert [(o.later.id, o.earlier.id, o.product) for o in found] == [("zz", "k000007", "p7")]


# --- references held back by a file that did not load ----------------------------------------


def plans_on(*slas: str) -> list:
    text = "".join(f"---\nkind: Plan\nid: p-{s}\ntype: unlimited\nunit: hours\nsla: {s}\n"
                   for s in slas)
    base, _ = load_text(BASE, "base.yaml")
    docs, _ = load_text(text, "plans.yaml")
    return base + docs


def test_a_file_that_did_not_load_holds_back_only_the_ids_it_mentions(tmp_path):
    broken = tmp_path / "slas.yaml"
    broken.write_text("kind: Sla\nid: gold\nid: gold\n")  # duplicate key: did not load
    found = validate(plans_on("gold", "silver"), unloaded=[str(broken)])
    assert [d.message for d in found] == ["unknown SLA 'silver'"]


def test_an_unreadable_file_that_did_not_load_holds_back_every_reference(tmp_path):
    assert validate(plans_on("gold", "silver"), unloaded=[str(tmp_path / "gone.yaml")]) == []


# --- did you mean ------------------------------------------------------------------------------

WORDS = st.text(alphabet="abcd-12", max_size=8)


@settings(max_examples=500, deadline=None)
@given(WORDS, st.lists(WORDS, max_size=30))
def test_closest_is_what_difflib_answers(word, choices):
    expected = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    assert Closest(choices)(word) == (expected[0] if expected else None)


@pytest.mark.timeout(120)  # a hang guard; bench/validate_bench.py measures the speed
def test_did_you_mean_with_many_candidates_and_many_mistakes():
    """1,000 plans and 5,000 broken references (difflib alone: ~6 ms each, 30 s)."""
    plans = frozenset(f"plan-{i}" for i in range(1000))
    hints = [did_you_mean(f"xplan-{i % 2500}", plans) for i in range(5000)]
    assert hints[7] == "; did you mean 'plan-7'?"


@pytest.mark.parametrize(("typed", "meant"), [
    ("America/NY", "America/New_York"),
    ("America/LA", "America/Los_Angeles"),
    ("America/NewYork", "America/New_York"),
    ("America/New York", "America/New_York"),
    ("europe/berlin", "Europe/Berlin"),
    ("Europe/Berln", "Europe/Berlin"),
    ("Eurpoe/Berlin", "Europe/Berlin"),
    ("Berlin", "Europe/Berlin"),
    ("Asia/Tokio", "Asia/Tokyo"),
])
def test_zone_suggestions(typed, meant):
    assert zone_suggestion(typed) == meant


# --- test suites: the fixtures their tests name ------------------------------------------------

SUITE = """\
kind: TestSuite
name: s
now: 2026-03-10T09:00:00Z
fixtures:
  usage:
    half: [{contract_id: acme-a, used: 1}]
  tickets:
    base: {customer_id: acme, product: backup, priority: high}
    low: {from: base, priority: low}
  contracts:
    - {id: acme-a, customer: acme, plan: p, start: 2026-01-01}
tests:
  - name: t
    usage: halv
    ticket: {from: bsae}
    expect: {covered: true}
  - name: u
    usage: [{contract_id: acme-aa, used: 1}, {contract_id: acme-c, used: 2}]
    ticket: base
    expect: {covered: true}
"""


def test_suite_fixture_names_are_checked():
    docs, _ = load_text(SUITE, "s_test.yaml")
    assert [str(d) for d in validate_suite(docs)] == [
        "s_test.yaml:9:11: a ticket fixture cannot start `from` another (only a test's ticket "
        "can); write its fields in full",
        "s_test.yaml:14:12: unknown usage fixture 'halv'; did you mean 'half'?",
        "s_test.yaml:15:20: unknown ticket fixture 'bsae'; did you mean 'base'?",
    ]


def test_suite_usage_contracts_are_checked_against_the_bundle_and_the_suite():
    docs, _ = load_text(SUITE, "s_test.yaml")
    bundle, _ = load_text(BASE + contract("acme-c", "start: 2026-01-01"), "base.yaml")
    found = [str(d) for d in validate_suite(docs, bundle) if "contract" in d.message]
    assert found == ["s_test.yaml:18:27: unknown contract 'acme-aa'; did you mean 'acme-a'?"]
    assert not [d for d in validate_suite(docs) if "contract" in d.message]  # no bundle given
