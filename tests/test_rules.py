"""The durable-rules module: SLA rule selection order, conditions, thresholds, lifecycle."""

from __future__ import annotations

import threading

import pytest

from entitle.engine.model import Band, Condition, Sla, SlaRule, frozen_map
from entitle.engine.rules import (
    RulesError,
    RuleSet,
    crossed_usage_thresholds,
    due_expiry_thresholds,
)

NONE = frozen_map({})


def sla(*conditions: Condition, sla_id: str = "s") -> Sla:
    rules = tuple(SlaRule(f"rule{i}", c, NONE) for i, c in enumerate(conditions))
    return Sla(sla_id, None, rules, NONE)


@pytest.fixture
def ruleset():
    opened = []

    def make(*slas: Sla, cache_size: int = 0) -> RuleSet:
        rs = RuleSet.compile("test-rev", {s.id: s for s in slas}, cache_size=cache_size)
        opened.append(rs)
        return rs

    yield make
    for rs in opened:
        rs.close()


def test_first_matching_rule_wins_in_declared_order(ruleset):
    rs = ruleset(sla(Condition(products=frozenset({"backup"})), Condition(), Condition()))
    assert rs.select_sla_rule("s", "backup", None, {}) == 0
    assert rs.select_sla_rule("s", "sync", None, {}) == 1


def test_no_match_selects_default(ruleset):
    rs = ruleset(sla(Condition(products=frozenset({"backup"}))))
    assert rs.select_sla_rule("s", "sync", None, {}) is None
    assert rs.select_sla_rule("unknown-sla", "backup", None, {}) is None


def test_parts_are_anded_and_lists_ored(ruleset):
    cond = Condition(
        products=frozenset({"backup", "sync"}),
        values=frozen_map({"tier": frozenset({"gold", "platinum"})}),
    )
    rs = ruleset(sla(cond))
    assert rs.select_sla_rule("s", "sync", None, {"tier": "platinum"}) == 0
    assert rs.select_sla_rule("s", "sync", None, {"tier": "silver"}) is None
    assert rs.select_sla_rule("s", "mail", None, {"tier": "gold"}) is None


@pytest.mark.parametrize(
    ("count", "expected"),
    [(49, None), (50, 0), (75, 0), (100, 0), (100.5, None), ("60", 0), ("many", None)],
)
def test_band_bounds_are_inclusive(ruleset, count, expected):
    rs = ruleset(sla(Condition(bands=frozen_map({"license_count": Band(50, 100)}))))
    assert rs.select_sla_rule("s", "p", None, {"license_count": count}) == expected


def test_open_band_and_missing_attribute(ruleset):
    rs = ruleset(sla(Condition(bands=frozen_map({"license_count": Band(min=101)}))))
    assert rs.select_sla_rule("s", "p", None, {"license_count": 5000}) == 0
    assert rs.select_sla_rule("s", "p", None, {}) is None
    rs2 = ruleset(sla(Condition(bands=frozen_map({"seats": Band(max=10)})), sla_id="t"))
    assert rs2.select_sla_rule("t", "p", None, {"seats": -3}) == 0
    assert rs2.select_sla_rule("t", "p", None, {"other": 1}) is None


def test_keywords_are_case_insensitive_substrings(ruleset):
    rs = ruleset(sla(Condition(subject_keywords=("outage", "Data Loss"))))
    assert rs.select_sla_rule("s", "p", "Full OUTAGE in EMEA", {}) == 0
    assert rs.select_sla_rule("s", "p", "possible data loss", {}) == 0
    assert rs.select_sla_rule("s", "p", "question about invoices", {}) is None
    assert rs.select_sla_rule("s", "p", None, {}) is None


def test_numbers_match_string_values(ruleset):
    rs = ruleset(sla(Condition(values=frozen_map({"tier": frozenset({"2"})}))))
    assert rs.select_sla_rule("s", "p", None, {"tier": 2.0}) == 0


def test_slas_with_same_shape_keep_their_own_keywords(ruleset):
    a = sla(Condition(subject_keywords=("alpha",)), sla_id="a")
    b = sla(Condition(subject_keywords=("beta",)), sla_id="b")
    rs = ruleset(a, b)
    assert rs.stats()["rulesets"] == 1
    assert rs.select_sla_rule("a", "p", "alpha", {}) == 0
    assert rs.select_sla_rule("b", "p", "alpha", {}) is None
    assert rs.select_sla_rule("b", "p", "beta", {}) == 0


def test_cache_gives_same_answers_and_counts(ruleset):
    conds = (Condition(bands=frozen_map({"n": Band(10, 20)})), Condition(subject_keywords=("x",)))
    cached = ruleset(sla(*conds), cache_size=100)
    plain = ruleset(sla(*conds, sla_id="u"))
    for n in range(30):
        for subject in ("x", "y"):
            got = cached.select_sla_rule("s", "p", subject, {"n": n})
            assert got == plain.select_sla_rule("u", "p", subject, {"n": n})
            assert got == cached.select_sla_rule("s", "p", subject, {"n": n})
    stats = cached.stats()
    assert stats["cache_misses"] == 60 and stats["cache_hits"] == 60


def test_more_evaluations_than_live_sessions_allowed(ruleset):
    rs = ruleset(sla(Condition(bands=frozen_map({"n": Band(0)}))))
    for n in range(1500):  # durable allows 1024 live session ids per ruleset
        assert rs.select_sla_rule("s", "p", None, {"n": n}) == 0


def test_concurrent_callers_get_correct_answers(ruleset):
    rs = ruleset(sla(Condition(bands=frozen_map({"n": Band(max=49)})), Condition()))
    errors = []

    def work(offset: int) -> None:
        for n in range(offset, offset + 150):
            want = 0 if n <= 49 else 1
            if rs.select_sla_rule("s", "p", None, {"n": n}) != want:
                errors.append(n)

    threads = [threading.Thread(target=work, args=(i * 20,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_close_frees_and_same_revision_compiles_again():
    s = sla(Condition(products=frozenset({"backup"})))
    first = RuleSet.compile("reload-rev", {"s": s})
    first.close()
    first.close()  # idempotent
    with pytest.raises(RulesError):
        first.select_sla_rule("s", "backup", None, {})
    second = RuleSet.compile("reload-rev", {"s": s})
    try:
        assert second.select_sla_rule("s", "backup", None, {}) == 0
    finally:
        second.close()


@pytest.mark.parametrize(
    ("before", "after", "thresholds", "crossed"),
    [
        (70, 100, (80, 100), (80, 100)),
        (79, 80, (80, 100), (80,)),
        (80, 95, (80, 100), ()),
        (0, 79.9, (80,), ()),
        (95, 120, (50, 80, 100), (100,)),
        (10, 20, (), ()),
    ],
)
def test_usage_threshold_crossing(before, after, thresholds, crossed):
    assert crossed_usage_thresholds(before, after, thresholds) == crossed


@pytest.mark.parametrize(
    ("days_left", "thresholds", "due"),
    [(100, (90, 30, 7), ()), (90, (90, 30, 7), (90,)), (6.5, (90, 30, 7), (90, 30, 7))],
)
def test_expiry_thresholds_due(days_left, thresholds, due):
    assert due_expiry_thresholds(days_left, thresholds) == due


def test_too_many_thresholds_is_an_error():
    with pytest.raises(RulesError):
        crossed_usage_thresholds(0, 100, tuple(range(1, 20)))


def test_many_non_matching_evaluations_do_not_crash_or_leak(ruleset):
    # A fact matching nothing used to abort the process in delete_state; and sessions
    # must be freed (durable allows 1024 live ones per ruleset).
    rs = ruleset(sla(Condition(products=frozenset({"backup"}))))
    for i in range(3000):
        assert rs.select_sla_rule("s", f"p{i}", None, {}) is None
    for i in range(1500):
        assert crossed_usage_thresholds(-1.0, i % 50, (80, 100)) == ()
        assert due_expiry_thresholds(1000 + i, (90,)) == ()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1e16, 1), (1e20, 1), (10**400, 1), ("1e300", 1), (float("inf"), 1),  # over 100
        (-1e20, None), (1e-5, None), (1e-7, None), ("nan", None), (float("nan"), None),
        (50.0, 0), (100.0, 0), (99.9999999, 0),
    ],
)
def test_numbers_python_writes_in_exponent_form_are_compared(ruleset, value, expected):
    """durable-rules cannot read `1e+16` or `1e-05`: such values are sent as fixed point."""
    bands = (
        Condition(bands=frozen_map({"license_count": Band(50, 100)})),
        Condition(bands=frozen_map({"license_count": Band(100.000001, None)})),
    )
    rs = ruleset(sla(*bands))
    assert rs.select_sla_rule("s", "p", None, {"license_count": value}) == expected


@pytest.mark.parametrize("after", [1e16, 1e300, float("inf")])
def test_huge_usage_percent_crosses_every_threshold(after):
    assert crossed_usage_thresholds(-1.0, after, (80, 100)) == (80, 100)
    assert crossed_usage_thresholds(1e-7, 1e-5, (80, 100)) == ()


def test_huge_or_tiny_days_left():
    assert due_expiry_thresholds(1e20, (90, 30)) == ()
    assert due_expiry_thresholds(-1e20, (90, 30)) == (90, 30)
