"""Properties of business time and quota periods over generated calendars and contracts.

Composition law, and the exact condition under which it holds: for every instant t and
amounts a >= 0, b >= 0,

    add(add(t, a), b) == add(t, a + b)

because a positive amount always stops inside working time or exactly at the end of a
working interval (never strictly inside a closed stretch), and resuming from there spends
the same intervals as not stopping; with a == 0 both sides are add(t, b). Equality is up
to float-minute rounding (timedelta keeps microseconds), hence a 1 ms tolerance.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import pairwise

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from entitle.engine.calendars import add_business_time, business_minutes_between, next_opening
from entitle.engine.model import Calendar, Contract, Plan
from entitle.engine.periods import lifecycle, local_midnight, period_at, periods_between

ZONES = (
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Sydney",
    "America/Sao_Paulo",
    "Asia/Tehran",
    "America/Havana",
)
TOLERANCE = timedelta(milliseconds=1)
PROFILE = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _day_intervals(points: list[int]) -> tuple[tuple[int, int], ...]:
    cuts = sorted(points)[: len(points) // 2 * 2]
    return tuple((cuts[i] * 30, cuts[i + 1] * 30) for i in range(0, len(cuts), 2))


day_hours = st.lists(st.integers(0, 48), unique=True, max_size=6).map(_day_intervals)


@st.composite
def calendars(draw) -> Calendar:
    week = tuple(draw(day_hours) for _ in range(7))
    if not any(week):  # a calendar that never opens is a configuration error, tested elsewhere
        week = ((((9 * 60), (17 * 60)),), *week[1:])
    return Calendar(
        id="generated",
        tz=draw(st.sampled_from(ZONES)),
        week=week,
        holidays=draw(st.frozensets(st.dates(date(2024, 1, 1), date(2026, 12, 31)), max_size=12)),
        yearly_holidays=draw(
            st.frozensets(st.tuples(st.integers(1, 12), st.integers(1, 28)), max_size=6)
        ),
    )


instants = st.datetimes(datetime(2024, 1, 1), datetime(2026, 12, 31)).map(
    lambda d: d.replace(microsecond=0, tzinfo=UTC)
)
amounts = st.one_of(
    st.just(0.0),
    st.integers(1, 3000).map(float),
    st.floats(0.001, 3000, allow_nan=False, allow_infinity=False),
)


@PROFILE
@given(calendars(), instants, amounts, amounts)
def test_adding_in_two_steps_equals_adding_once(cal, t, a, b) -> None:
    stepwise = add_business_time(cal, add_business_time(cal, t, a), b)
    at_once = add_business_time(cal, t, a + b)
    assert abs(stepwise - at_once) <= TOLERANCE


@PROFILE
@given(calendars(), instants, amounts)
def test_minutes_between_start_and_due_are_the_minutes_added(cal, t, m) -> None:
    due = add_business_time(cal, t, m)
    assert abs(business_minutes_between(cal, t, due) - m) <= 1e-4


@PROFILE
@given(calendars(), instants, amounts)
def test_due_is_never_strictly_inside_closed_time(cal, t, m) -> None:
    due = add_business_time(cal, t, m)
    if m == 0:
        assert due == t
        return
    open_at_due = next_opening(cal, due) == due
    ends_an_interval = business_minutes_between(cal, due - timedelta(microseconds=1), due) > 0
    assert open_at_due or ends_an_interval


@PROFILE
@given(calendars(), instants, amounts, amounts)
def test_adding_is_monotonic_in_minutes(cal, t, a, b) -> None:
    low, high = sorted((a, b))
    assert add_business_time(cal, t, low) <= add_business_time(cal, t, high)


@PROFILE
@given(calendars(), instants)
def test_next_opening_is_the_first_working_instant(cal, t) -> None:
    opening = next_opening(cal, t)
    assert opening >= t
    assert business_minutes_between(cal, t, opening) == 0
    assert business_minutes_between(cal, opening, opening + timedelta(microseconds=1)) > 0


@PROFILE
@given(calendars(), instants, st.integers(0, 20 * 24 * 60), st.integers(0, 20 * 24 * 60))
def test_minutes_between_adds_up_over_adjacent_ranges(cal, a, x, y) -> None:
    b, c = a + timedelta(minutes=x), a + timedelta(minutes=x + y)
    whole = business_minutes_between(cal, a, c)
    parts = business_minutes_between(cal, a, b) + business_minutes_between(cal, b, c)
    assert abs(whole - parts) <= 1e-6


# ---- quota periods ----------------------------------------------------------------------


@st.composite
def contracts(draw) -> Contract:
    tz = draw(st.sampled_from(ZONES))
    start = draw(st.dates(date(2020, 1, 1), date(2030, 12, 31)))
    end = draw(st.one_of(st.none(), st.integers(1, 4 * 366).map(lambda n: start + timedelta(n))))
    return Contract(
        id="c",
        customer="initech",
        plan_id="p",
        products=None,
        start=start,
        end=end,
        tz=tz,
        start_at=local_midnight(start, tz),
        end_at=local_midnight(end, tz) if end else None,
    )


@st.composite
def plans(draw) -> Plan:
    kind = draw(st.sampled_from(("per_period", "per_period", "per_period", "pack", "unlimited")))
    per_period = kind == "per_period"
    return Plan(
        id="p",
        type=kind,
        unit="incidents",
        limit=None if kind == "unlimited" else 10,
        reset=draw(st.sampled_from(("weekly", "monthly", "quarterly", "yearly")))
        if per_period
        else None,
        alignment=draw(st.sampled_from(("calendar", "anniversary"))),
        when_exhausted="reject",
        sla_id="s",
    )


@PROFILE
@given(plans(), contracts(), st.integers(-400 * 24 * 3600, 5 * 366 * 24 * 3600))
def test_period_holds_its_instant_and_lies_within_the_term(plan, contract, offset) -> None:
    at = contract.start_at + timedelta(seconds=offset)
    period = period_at(plan, contract, at)
    if lifecycle(contract, at) != "active":
        if plan.type == "per_period":  # outside the term: the clipped natural period
            assert period.contains(at)
        return
    assert period.contains(at)
    assert period.start >= contract.start_at
    if contract.end_at is not None:
        assert period.end is not None and period.end <= contract.end_at


@PROFILE
@given(plans(), contracts())
def test_periods_tile_the_term_without_gaps_or_overlaps(plan, contract) -> None:
    stop = contract.end_at or contract.start_at + timedelta(days=800)
    periods = periods_between(plan, contract, contract.start_at, stop)
    assert periods[0].start == contract.start_at
    for before, after in pairwise(periods):
        assert before.start < before.end == after.start
    if contract.end_at is not None:
        assert periods[-1].end == contract.end_at
    else:
        assert periods[-1].end is None or periods[-1].end >= stop
