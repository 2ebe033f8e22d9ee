"""Time math at the ends of the instant range: periods, terms and due times never raise.

Requests may carry instants up to 9999-12-31T23:59:59.999999999Z and policies dates from
0001-01-01 to 9999-12-31, in any zone: a period whose next reset would fall in year 10000
is open-ended, a due time past the last instant is the last instant, and nothing reaches
`year 10000 is out of range`.
"""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from entitle.engine import reports
from entitle.engine.bundle import compile_or_raise
from entitle.engine.calendars import (
    FIRST_INSTANT,
    LAST_INSTANT,
    add_business_time,
    business_minutes_between,
    due_at,
    later,
    local_date,
    next_opening,
)
from entitle.engine.decide import quota_for
from entitle.engine.model import Calendar, Contract, Plan, TargetSpec
from entitle.engine.periods import lifecycle, local_midnight, period_at, period_key, periods_between
from entitle.engine.usage import StaticUsage

EXAMPLE_POLICIES = Path(__file__).resolve().parent.parent / "policies"

# The widest offsets there are, both sides of UTC, and a DST zone.
ZONES = ("Pacific/Kiritimati", "Etc/GMT+12", "Asia/Tokyo", "America/New_York", "UTC")
RESETS = ("weekly", "monthly", "quarterly", "yearly")
PROFILE = settings(max_examples=300, deadline=None)


class NoUsage:
    def used(self, contract_id: str, period_key: str) -> float:
        return 0.0

    def used_many(self, keys):
        return [0.0] * len(keys)


def contract(start: date, end: date | None, tz: str) -> Contract:
    return Contract(
        id="c", customer="acme", plan_id="p", products=None, start=start, end=end, tz=tz,
        start_at=local_midnight(start, tz), end_at=local_midnight(end, tz) if end else None,
    )


def plan(kind: str, reset: str | None = None, alignment: str = "calendar") -> Plan:
    return Plan(
        id="p", type=kind, unit="incidents", limit=10, reset=reset, alignment=alignment,
        when_exhausted="reject", sla_id="s",
    )


plans = st.one_of(
    st.builds(plan, st.just("per_period"), st.sampled_from(RESETS),
              st.sampled_from(("calendar", "anniversary"))),
    st.builds(plan, st.sampled_from(("pack", "unlimited"))),
)
dates = st.one_of(
    st.dates(date(9999, 9, 1), date.max), st.dates(date.min, date(1, 3, 1)), st.dates()
)
near_ends = st.one_of(
    st.datetimes(datetime(9999, 12, 1), datetime.max),
    st.datetimes(datetime.min, datetime(1, 1, 20)),
    st.datetimes(),
).map(lambda at: at.replace(tzinfo=UTC))


@st.composite
def contracts(draw) -> Contract:
    start = draw(dates)
    end = draw(st.none() | dates.filter(lambda d: d > start))
    return contract(start, end, draw(st.sampled_from(ZONES)))


@PROFILE
@given(plans, contracts(), near_ends)
def test_periods_hold_to_the_ends_of_time(p, c, at):
    period = period_at(p, c, at)
    assert period.end is None or period.start < period.end
    if at >= FIRST_INSTANT + timedelta(days=1) and p.type == "per_period":
        assert period.contains(at), (period, at)
    period_key(period)
    lifecycle(c, at)
    quota = quota_for(p, c, at, NoUsage())
    assert quota.period_start == period.start
    periods_between(p, c, at, later(at, timedelta(days=100)))


@pytest.mark.parametrize("tz", ZONES)
@pytest.mark.parametrize("reset", RESETS)
@pytest.mark.parametrize("alignment", ["calendar", "anniversary"])
def test_an_open_ended_per_period_contract_late_in_9999(tz, reset, alignment):
    """The issue's case: `at` late in 9999 on an open-ended per-period contract."""
    c = contract(date(2026, 1, 31), None, tz)
    at = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    period = period_at(plan("per_period", reset, alignment), c, at)
    assert period.contains(at) and period.end is None  # the next reset lies in year 10000
    assert local_date(period.start, tz).year == 9999


def test_a_period_that_ends_before_the_last_day_keeps_its_end():
    c = contract(date(2026, 1, 1), None, "UTC")
    period = period_at(plan("per_period", "monthly"), c, datetime(9999, 11, 15, tzinfo=UTC))
    assert period.start == datetime(9999, 11, 1, tzinfo=UTC)
    assert period.end == datetime(9999, 12, 1, tzinfo=UTC)


def test_local_dates_and_midnights_are_clamped_to_the_range():
    assert local_date(LAST_INSTANT, "Pacific/Kiritimati") == date.max
    assert local_date(FIRST_INSTANT, "Etc/GMT+12") == date.min
    assert local_midnight(date.max, "Etc/GMT+12") == datetime(9999, 12, 31, 12, tzinfo=UTC)
    assert local_midnight(date.min, "Asia/Tokyo") == FIRST_INSTANT  # LMT +09:18:59


CALENDAR = Calendar(
    id="office", tz="Etc/GMT+12", week=((((9 * 60), (17 * 60)),),) * 5 + ((), ()),
    holidays=frozenset(), yearly_holidays=frozenset(),
)


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(ZONES), near_ends.filter(lambda at: at.year == 9999),
       st.floats(0, 10**6))
def test_due_times_past_the_last_instant_are_the_last_instant(tz, start, minutes):
    cal = Calendar(id="office", tz=tz, week=CALENDAR.week, holidays=frozenset(),
                   yearly_holidays=frozenset())
    due = add_business_time(cal, start, minutes)
    assert start <= due <= LAST_INSTANT
    assert next_opening(cal, start) <= LAST_INSTANT
    assert business_minutes_between(cal, start, due) >= 0
    target = TargetSpec(metric="resolution", minutes=minutes, clock="calendar")
    assert start <= due_at(target, {}, start) <= LAST_INSTANT


ANCIENT_AND_ENDLESS = """\
kind: Contract
id: initech-ancient
customer: initech
plan: incident-pack-10
products: [edge-ancient]
start: 0001-01-01
end: 0001-01-03
timezone: Asia/Tokyo
---
kind: Contract
id: initech-endless
customer: initech
plan: weekly-100
products: [edge-endless]
start: 9999-12-31
timezone: Etc/GMT+12
"""


def test_a_bundle_with_dates_at_both_ends_compiles_decides_and_reports(tmp_path):
    """Policy dates at 0001-01-01 and 9999-12-31, seen from the zones furthest from UTC."""
    bundle = tmp_path / "policies"
    shutil.copytree(EXAMPLE_POLICIES, bundle)
    (bundle / "contracts" / "ends.yaml").write_text(ANCIENT_AND_ENDLESS)
    policy = compile_or_raise(bundle)
    ancient = policy.contracts["initech-ancient"]
    assert ancient.start_at == FIRST_INSTANT  # local midnight of 0001-01-01 in Tokyo (LMT)
    usage = StaticUsage()
    for at in (LAST_INSTANT, datetime(2026, 6, 15, tzinfo=UTC), FIRST_INSTANT):
        for report in (reports.renewals(policy, usage, at, timedelta(days=90)),
                       reports.usage_report(policy, usage, at),
                       reports.contracts_by(policy, usage, at, "plan")):
            reports.render_text(report)
