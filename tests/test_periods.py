"""Quota periods, period keys and lifecycle against tests/fixtures/timemath/periods.yaml."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from entitle.engine.model import Contract, Plan
from entitle.engine.periods import (
    Period,
    lifecycle,
    local_midnight,
    period_at,
    period_key,
    periods_between,
)

FIXTURE = yaml.safe_load(
    (Path(__file__).parent / "fixtures" / "timemath" / "periods.yaml").read_text()
)


def build_contract(cid: str, spec: dict) -> Contract:
    start = date.fromisoformat(spec["start"])
    end = date.fromisoformat(spec["end"]) if spec.get("end") else None
    tz = spec["timezone"]
    return Contract(
        id=cid,
        customer="acme",
        plan_id="p",
        products=None,
        start=start,
        end=end,
        tz=tz,
        start_at=local_midnight(start, tz),
        end_at=local_midnight(end, tz) if end else None,
    )


def build_plan(pid: str, spec: dict) -> Plan:
    unlimited = spec["type"] == "unlimited"
    return Plan(
        id=pid,
        type=spec["type"],
        unit="incidents",
        limit=None if unlimited else 10,
        reset=spec.get("reset"),
        alignment=spec.get("alignment", "calendar"),
        when_exhausted="reject",
        sla_id="standard",
    )


CONTRACTS = {cid: build_contract(cid, spec) for cid, spec in FIXTURE["contracts"].items()}
PLANS = {pid: build_plan(pid, spec) for pid, spec in FIXTURE["plans"].items()}


def _instant(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _params(section: str):
    return [pytest.param(case, id=f"{section}-{i:02d}") for i, case in enumerate(FIXTURE[section])]


@pytest.mark.parametrize("case", _params("cases"))
def test_period_at(case: dict) -> None:
    plan, contract = PLANS[case["plan"]], CONTRACTS[case["contract"]]
    at = _instant(case["at"])
    got = period_at(plan, contract, at)
    start, end = (_instant(x) for x in case["period"])
    assert (got.start, got.end) == (start, end), case["source"]
    assert got.start.utcoffset() == timedelta(0)
    inside_term = lifecycle(contract, at) == "active"
    if plan.type == "per_period" or inside_term:
        assert got.contains(at)


@pytest.mark.parametrize("case", _params("midnights"))
def test_local_midnight(case: dict) -> None:
    got = local_midnight(date.fromisoformat(case["date"]), case["timezone"])
    assert got == _instant(case["instant"]), case["source"]
    assert got.tzinfo is UTC


@pytest.mark.parametrize("case", _params("keys"))
def test_period_key(case: dict) -> None:
    period = period_at(PLANS[case["plan"]], CONTRACTS[case["contract"]], _instant(case["at"]))
    assert period_key(period) == case["key"], case["source"]


@pytest.mark.parametrize("case", _params("lifecycle"))
def test_lifecycle(case: dict) -> None:
    assert lifecycle(CONTRACTS[case["contract"]], _instant(case["at"])) == case["state"]


def test_every_fixture_case_cites_its_source() -> None:
    for section in ("cases", "midnights", "keys", "lifecycle"):
        for case in FIXTURE[section]:
            assert case.get("source"), f"{section}: {case}"


def test_fixture_covers_every_alignment_and_reset() -> None:
    used = {(PLANS[c["plan"]].alignment, PLANS[c["plan"]].reset) for c in FIXTURE["cases"]}
    for alignment in ("calendar", "anniversary"):
        for reset in ("weekly", "monthly", "quarterly", "yearly"):
            assert (alignment, reset) in used


@pytest.mark.parametrize("plan_id", sorted(PLANS))
@pytest.mark.parametrize("contract_id", sorted(CONTRACTS))
def test_periods_tile_the_term(plan_id: str, contract_id: str) -> None:
    plan, contract = PLANS[plan_id], CONTRACTS[contract_id]
    stop = contract.end_at or contract.start_at + timedelta(days=3 * 366)
    periods = periods_between(plan, contract, contract.start_at, stop)
    assert periods[0].start == contract.start_at
    for before, after in pairwise(periods):
        assert before.end == after.start
        assert before.start < before.end
    last = periods[-1]
    if contract.end_at is not None:
        assert last.end == contract.end_at
    else:
        assert last.end is None or last.end >= stop
    zone = ZoneInfo(contract.tz)
    for period in periods:
        assert period_at(plan, contract, period.start) == period
        # Every boundary is a local midnight (or the first instant of a day without one).
        local_day = period.start.astimezone(zone).date()
        assert period.start == local_midnight(local_day, contract.tz)


def test_periods_between_keeps_only_overlapping_periods() -> None:
    plan, contract = PLANS["monthly-calendar"], CONTRACTS["acme-2026"]
    berlin = ZoneInfo("Europe/Berlin")
    got = periods_between(
        plan, contract, datetime(2026, 3, 15, tzinfo=berlin), datetime(2026, 5, 1, tzinfo=berlin)
    )
    assert [p.start.astimezone(berlin).date() for p in got] == [date(2026, 3, 1), date(2026, 4, 1)]
    assert periods_between(plan, contract, got[0].end, got[0].start) == []


def test_pack_outside_the_term_overlaps_nothing() -> None:
    contract = CONTRACTS["acme-2026"]
    after = contract.end_at + timedelta(days=10)
    assert periods_between(PLANS["pack"], contract, after, after + timedelta(days=1)) == []
    assert periods_between(PLANS["pack"], contract, contract.start_at, after) == [
        Period(contract.start_at, contract.end_at)
    ]


def test_period_key_is_stable_for_sub_second_starts() -> None:
    start = datetime(2026, 3, 1, 0, 0, 0, 250000, tzinfo=UTC)
    assert period_key(Period(start, None)) == "2026-03-01T00:00:00.250000Z"


def test_per_period_plan_without_reset_is_rejected() -> None:
    broken = Plan("broken", "per_period", "incidents", 5, None, "calendar", "reject", "s")
    with pytest.raises(ValueError, match="'broken' is per_period but has no valid reset"):
        period_at(broken, CONTRACTS["acme-2026"], datetime(2026, 6, 1, tzinfo=UTC))


def test_naive_instants_are_rejected() -> None:
    with pytest.raises(ValueError, match="no UTC offset"):
        period_at(PLANS["monthly-calendar"], CONTRACTS["acme-2026"], datetime(2026, 6, 1))
    with pytest.raises(ValueError, match="no UTC offset"):
        lifecycle(CONTRACTS["acme-2026"], datetime(2026, 6, 1))
