"""Quota periods and contract lifecycle: the term math behind usage counters.

Semantics (the decision engine relies on them):

- Periods are half-open ``[start, end)`` UTC instants; ``end`` None is open-ended.
- Boundaries are local midnights in the contract's zone (see `local_midnight`).
- ``calendar`` alignment: weeks start Monday, months on the 1st, quarters on Jan/Apr/Jul/Oct
  1st, years on Jan 1st. ``anniversary`` alignment: anchored at the contract's start date;
  weekly = every 7 days; monthly/quarterly/yearly = every 1/3/12 months on the anchor day,
  clamped to the month's last day when the month is shorter (31 Jan -> 28/29 Feb -> 31 Mar
  -> 30 Apr; a Feb 29 anchor resets on Feb 28 in common years).
- The contract's start_at and end_at cut the natural periods, so time is partitioned
  into: natural periods before the term (clipped to end at start_at), the term's periods
  (first and last cut by start_at/end_at), and natural periods after the term (clipped
  to start at end_at). `period_at` always returns the piece containing its instant.
- Time ends where datetime does (9999-12-31T23:59:59.999999Z): a boundary past it is never
  reached, so the period containing such an instant is open-ended (``end`` None), and a
  boundary before the first instant is the first instant. Nothing raises near the ends.
- ``pack`` and ``unlimited`` plans have one period, the whole term ``[start_at, end_at)``,
  whatever instant is asked about (it does not contain instants outside the term).
"""

from __future__ import annotations

import calendar as _gregorian
import functools
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from entitle.engine.calendars import (
    FIRST_INSTANT,
    local_date,
    local_to_utc,
    to_utc,
)
from entitle.engine.model import Contract, Plan

_RESET_MONTHS = {"monthly": 1, "quarterly": 3, "yearly": 12}
_WEEK = timedelta(days=7)


@dataclass(frozen=True)
class Period:
    """One quota period: usage counters reset at `start`; `end` None never ends."""

    start: datetime
    end: datetime | None

    def contains(self, at: datetime) -> bool:
        return self.start <= at and (self.end is None or at < self.end)


def local_midnight(d: date, tz: str) -> datetime:
    """UTC instant at which local date `d` begins in `tz` (after the gap if midnight is skipped).

    The first instant there is when that lies before it (0001-01-01 east of UTC); no
    midnight lies past the last instant (9999-12-31 begins by 12:00Z everywhere).
    """
    try:
        return local_to_utc(datetime(d.year, d.month, d.day), tz)
    except OverflowError:
        return FIRST_INSTANT


def _end(d: date | None, tz: str) -> datetime | None:
    """A period's end at the local midnight of `d`; None (never) for a date past the last."""
    return None if d is None else local_midnight(d, tz)


_RESETS = frozenset(("weekly", "monthly", "quarterly", "yearly"))


def _add_months(anchor: date, months: int) -> date | None:
    """`anchor` moved by whole months, its day clamped to the target month's length; the
    first date for a month before it, None for one past the last (year 9999)."""
    years, month0 = divmod(anchor.month - 1 + months, 12)
    year = anchor.year + years
    if year < date.min.year:
        return date.min
    if year > date.max.year:
        return None
    last = _gregorian.monthrange(year, month0 + 1)[1]
    return date(year, month0 + 1, min(anchor.day, last))


def _plus_days(d: date, days: int) -> date | None:
    """`d` moved by `days`: the first date before the first, None past the last."""
    ordinal = d.toordinal() + days
    if ordinal < 1:
        return date.min
    return None if ordinal > date.max.toordinal() else date.fromordinal(ordinal)


def _later_than(d: date | None, day: date) -> bool:
    return d is None or d > day  # None: past the last date


def _calendar_bounds(reset: str, day: date) -> tuple[date, date | None]:
    if reset == "weekly":
        monday = day - timedelta(days=day.weekday())  # 0001-01-01 was a Monday: no underflow
        return monday, _plus_days(monday, 7)
    step = _RESET_MONTHS[reset]
    index = day.year * 12 + day.month - 1
    first = index - index % step
    start = date(first // 12, first % 12 + 1, 1)
    return start, _add_months(start, step)


def _anniversary_bounds(reset: str, anchor: date, day: date) -> tuple[date, date | None]:
    if reset == "weekly":
        start = _plus_days(anchor, 7 * ((day - anchor).days // 7)) or date.max
        return start, _plus_days(start, 7)
    step = _RESET_MONTHS[reset]
    k = ((day.year - anchor.year) * 12 + day.month - anchor.month) // step
    while _later_than(_add_months(anchor, k * step), day):
        k -= 1
    while not _later_than(_add_months(anchor, (k + 1) * step), day):
        k += 1
    return _add_months(anchor, k * step) or date.min, _add_months(anchor, (k + 1) * step)


@functools.lru_cache(maxsize=65536)
def _period_instants(
    reset: str, anchor: date | None, tz: str, day: date
) -> tuple[datetime, datetime | None]:
    """Cached: the uncut period's UTC bounds depend only on these values, not on the instant."""
    if anchor is not None:
        first, following = _anniversary_bounds(reset, anchor, day)
    else:
        first, following = _calendar_bounds(reset, day)
    return local_midnight(first, tz), _end(following, tz)


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    """The earlier of two ends, None being never."""
    if a is None:
        return b
    return a if b is None else min(a, b)


def period_at(plan: Plan, contract: Contract, at: datetime) -> Period:
    """The quota period of `contract` under `plan` that contains instant `at`."""
    at = to_utc(at, "at")
    if plan.type != "per_period":
        return Period(contract.start_at, contract.end_at)
    if plan.reset not in _RESETS:
        raise ValueError(f"plan {plan.id!r} is per_period but has no valid reset ({plan.reset!r})")
    if plan.alignment not in ("calendar", "anniversary"):
        raise ValueError(f"plan {plan.id!r} has unknown alignment {plan.alignment!r}")
    day = local_date(at, contract.tz)
    anchor = contract.start if plan.alignment == "anniversary" else None
    start, end = _period_instants(plan.reset, anchor, contract.tz, day)
    if at < contract.start_at:
        return Period(start, _earliest(end, contract.start_at))
    if contract.end_at is not None and at >= contract.end_at:
        return Period(max(start, contract.end_at), end)
    return Period(max(start, contract.start_at), _earliest(end, contract.end_at))


def periods_between(plan: Plan, contract: Contract, a: datetime, b: datetime) -> list[Period]:
    """Consecutive periods overlapping [a, b), in order (for reports and tiling checks)."""
    a, b = to_utc(a, "a"), to_utc(b, "b")
    out: list[Period] = []
    if b <= a:
        return out
    period = period_at(plan, contract, a)
    while True:
        if period.start < b and (period.end is None or period.end > a):
            out.append(period)
        if plan.type != "per_period" or period.end is None or period.end >= b:
            return out
        period = period_at(plan, contract, period.end)


@functools.lru_cache(maxsize=65536)
def period_key(period: Period) -> str:
    """Stable storage key of a period: its start as ISO 8601 UTC (`2026-03-01T00:00:00Z`)."""
    start = period.start.astimezone(UTC)
    text = start.replace(microsecond=0, tzinfo=None).isoformat()  # 4-digit years, unlike %Y
    if start.microsecond:
        text += f".{start.microsecond:06d}"
    return text + "Z"


def lifecycle(contract: Contract, at: datetime) -> str:
    """`planned`, `active` or `expired` at `at` (the caller layers `suspended` on top)."""
    at = to_utc(at, "at")
    if at < contract.start_at:
        return "planned"
    if contract.end_at is not None and at >= contract.end_at:
        return "expired"
    return "active"
