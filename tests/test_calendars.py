"""Business-time math against cases from Zammad, Znuny, GLPI, RT and our own calendar rules."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from entitle.engine.calendars import (
    add_business_time,
    business_minutes_between,
    due_at,
    local_to_utc,
    next_opening,
)
from entitle.engine.model import WEEKDAYS, Calendar, TargetSpec

FIXTURES = Path(__file__).parent / "fixtures" / "timemath"
BUSINESS_FILES = ("zammad.yaml", "znuny.yaml", "glpi.yaml", "rt.yaml", "entitle.yaml")
BERLIN = ZoneInfo("Europe/Berlin")


def _minute_of_day(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def build_calendar(cal_id: str, spec: dict) -> Calendar:
    """A compiled Calendar from the fixture shape (policy-like hours, holidays, yearly MM-DD)."""
    hours = spec.get("hours", {})
    week = tuple(
        tuple(
            (_minute_of_day(a), _minute_of_day(b))
            for a, b in (interval.split("-") for interval in hours.get(day, []))
        )
        for day in WEEKDAYS
    )
    return Calendar(
        id=cal_id,
        tz=spec["timezone"],
        week=week,
        holidays=frozenset(date.fromisoformat(d) for d in spec.get("holidays", [])),
        yearly_holidays=frozenset((int(md[:2]), int(md[3:])) for md in spec.get("yearly", [])),
    )


def _load_documents() -> dict[str, dict]:
    return {name: yaml.safe_load((FIXTURES / name).read_text()) for name in BUSINESS_FILES}


DOCUMENTS = _load_documents()


def _cases():
    for name, doc in DOCUMENTS.items():
        calendars = {cid: build_calendar(cid, spec) for cid, spec in doc["calendars"].items()}
        for i, case in enumerate(doc["cases"]):
            yield pytest.param(calendars[case["calendar"]], case, id=f"{name[:-5]}-{i:02d}")


def _instant(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    assert value.tzinfo is not None, f"fixture instant {text!r} needs an offset"
    return value


def _amount(case: dict) -> float:
    """Minutes given as `minutes` or, for second-precise sources, as `seconds`."""
    return case["minutes"] if "minutes" in case else case["seconds"] / 60


@pytest.mark.parametrize(("cal", "case"), list(_cases()))
def test_fixture_case(cal: Calendar, case: dict) -> None:
    op = case["op"]
    where = f"{case['source']}"
    if op == "add":
        got = add_business_time(cal, _instant(case["start"]), _amount(case))
        assert got == _instant(case["due"]), where
        assert got.tzinfo is UTC
    elif op == "between":
        got = business_minutes_between(cal, _instant(case["start"]), _instant(case["end"]))
        assert got == pytest.approx(_amount(case), abs=1e-6), where
    elif op == "next_opening":
        got = next_opening(cal, _instant(case["at"]))
        assert got == _instant(case["opening"]), where
        assert got.tzinfo is UTC
    elif op == "due_at":
        target = TargetSpec("resolution", _amount(case), case["clock"], cal.id)
        got = due_at(target, {cal.id: cal}, _instant(case["start"]))
        assert got == _instant(case["due"]), where
        assert got.tzinfo is UTC
    else:  # pragma: no cover - a typo in a fixture must not pass silently
        pytest.fail(f"unknown op {op!r}")


def test_every_fixture_case_cites_its_source() -> None:
    for name, doc in DOCUMENTS.items():
        assert doc["cases"], name
        for case in doc["cases"]:
            assert case.get("source"), f"{name}: case without source: {case}"


# ---- local wall time to UTC -------------------------------------------------------------


def test_local_time_in_gap_maps_to_the_transition() -> None:
    assert local_to_utc(datetime(2026, 3, 29, 2, 30), "Europe/Berlin") == datetime(
        2026, 3, 29, 1, 0, tzinfo=UTC
    )


def test_repeated_local_time_maps_to_first_or_last_occurrence() -> None:
    local = datetime(2026, 10, 25, 2, 30)
    assert local_to_utc(local, "Europe/Berlin") == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert local_to_utc(local, "Europe/Berlin", last=True) == datetime(
        2026, 10, 25, 1, 30, tzinfo=UTC
    )


def test_skipped_day_maps_to_the_next_existing_instant() -> None:
    # Samoa skipped 2011-12-30 entirely: its midnight is the same instant as Dec 31's.
    expected = datetime(2011, 12, 30, 10, 0, tzinfo=UTC)
    assert local_to_utc(datetime(2011, 12, 30), "Pacific/Apia") == expected
    assert local_to_utc(datetime(2011, 12, 31), "Pacific/Apia") == expected


# ---- behaviour beyond the fixtures ------------------------------------------------------


def _office(**kw) -> Calendar:
    week = tuple(((540, 1020),) if i < 5 else () for i in range(7))
    return Calendar(id=kw.pop("id", "office"), tz="Europe/Berlin", week=week, **kw)


def test_start_in_any_zone_returns_utc() -> None:
    start = datetime(2026, 3, 10, 4, 0, tzinfo=timezone(timedelta(hours=-5)))  # 10:00 Berlin
    got = add_business_time(_office(), start, 30)
    assert got == datetime(2026, 3, 10, 9, 30, tzinfo=UTC)
    assert got.tzinfo is UTC


def test_zero_minutes_keep_a_closed_start_but_any_positive_amount_waits_for_opening() -> None:
    saturday = datetime(2026, 3, 14, 10, 0, tzinfo=BERLIN)
    assert add_business_time(_office(), saturday, 0) == saturday
    assert add_business_time(_office(), saturday, 1 / 60) == datetime(
        2026, 3, 16, 8, 0, 1, tzinfo=UTC
    )


def test_calendars_differing_only_in_hours_do_not_share_cached_days() -> None:
    early = Calendar(id="same", tz="UTC", week=tuple(((480, 960),) for _ in range(7)))
    late = Calendar(id="same", tz="UTC", week=tuple(((600, 1080),) for _ in range(7)))
    at = datetime(2026, 3, 10, 0, 0, tzinfo=UTC)
    assert next_opening(early, at) == datetime(2026, 3, 10, 8, 0, tzinfo=UTC)
    assert next_opening(late, at) == datetime(2026, 3, 10, 10, 0, tzinfo=UTC)


def test_long_horizon_matches_whole_weeks() -> None:
    # 52 weeks of a 40-hour week, no holidays: exactly 364 days later, same local time.
    start = datetime(2026, 1, 5, 10, 0, tzinfo=BERLIN)
    due = add_business_time(_office(), start, 52 * 40 * 60)
    assert due == datetime(2027, 1, 4, 10, 0, tzinfo=BERLIN)


def test_calendar_without_working_hours_is_rejected() -> None:
    closed = Calendar(id="closed", tz="UTC", week=((),) * 7)
    with pytest.raises(ValueError, match="'closed' has no working hours"):
        add_business_time(closed, datetime(2026, 1, 1, tzinfo=UTC), 60)
    with pytest.raises(ValueError, match="no working hours"):
        next_opening(closed, datetime(2026, 1, 1, tzinfo=UTC))
    assert (
        business_minutes_between(
            closed, datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)
        )
        == 0.0
    )


def test_calendar_whose_every_day_is_a_holiday_is_rejected() -> None:
    every_day = frozenset(
        (d.month, d.day) for d in (date(2024, 1, 1) + timedelta(days=i) for i in range(366))
    )
    cal = _office(id="always-off", yearly_holidays=every_day)
    with pytest.raises(ValueError, match="'always-off' has no working time within"):
        add_business_time(cal, datetime(2026, 1, 1, tzinfo=UTC), 60)
    assert (
        business_minutes_between(
            cal, datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC)
        )
        == 0.0
    )


def test_holidays_for_years_still_find_the_next_opening() -> None:
    holidays = frozenset(date(2026, 1, 1) + timedelta(days=i) for i in range(3 * 365))
    cal = _office(holidays=holidays)
    opening = next_opening(cal, datetime(2026, 1, 1, tzinfo=UTC))
    assert opening == datetime(2029, 1, 1, 8, 0, tzinfo=UTC)  # Monday 09:00 Berlin


@pytest.mark.parametrize("minutes", [-1, math.nan, math.inf])
def test_invalid_minutes_are_rejected(minutes: float) -> None:
    with pytest.raises(ValueError, match="finite number >= 0"):
        add_business_time(_office(), datetime(2026, 1, 5, tzinfo=UTC), minutes)


def test_naive_datetimes_are_rejected() -> None:
    with pytest.raises(ValueError, match="no UTC offset"):
        add_business_time(_office(), datetime(2026, 1, 5, 10, 0), 60)
    with pytest.raises(ValueError, match="no UTC offset"):
        business_minutes_between(_office(), datetime(2026, 1, 5), datetime(2026, 1, 6, tzinfo=UTC))


def test_between_is_zero_for_empty_or_reversed_ranges() -> None:
    at = datetime(2026, 3, 10, 10, 0, tzinfo=BERLIN)
    assert business_minutes_between(_office(), at, at) == 0.0
    assert business_minutes_between(_office(), at, at - timedelta(hours=1)) == 0.0


def test_due_at_requires_a_known_calendar_for_business_targets() -> None:
    created = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="names no calendar"):
        due_at(TargetSpec("resolution", 60, "business"), {}, created)
    with pytest.raises(ValueError, match="unknown calendar 'nope'"):
        due_at(TargetSpec("resolution", 60, "business", "nope"), {}, created)
    # The calendar clock needs no calendar at all.
    assert due_at(TargetSpec("resolution", 90, "calendar"), {}, created) == created + timedelta(
        minutes=90
    )
