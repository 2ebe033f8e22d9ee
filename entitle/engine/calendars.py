"""Business time: SLA clocks that only run during a calendar's local working hours.

Semantics (the decision engine relies on them):

- Working intervals are half-open ``[start, end)`` in the calendar's IANA zone. A due
  time that lands exactly on the end of an interval *is* that end (17:00, not the next
  morning), as Zammad and Znuny report it.
- Business time is real elapsed time: an interval spanning a DST change is an hour
  shorter or longer (``"00:00-24:00"`` is 23 h on a spring-forward day).
- A local time inside a DST gap means the first instant after the gap (the transition
  itself); a repeated (fall-back) local time starts an interval at its first occurrence
  and ends one at its last when the interval's last minutes are repeated, so an interval
  covers every instant whose wall clock reads inside it (an end at the first repeated
  minute, 02:00 on a 03:00 -> 02:00 night, is its first occurrence). ``24:00`` is the
  first instant of the next day.
- Positive minutes from a closed instant start counting at the next opening; zero
  minutes return the start instant itself, even when closed.
- Every function takes aware datetimes in any zone and returns UTC-aware datetimes.
- Time ends where datetime does (9999-12-31T23:59:59.999999Z, the Timestamp range's end
  too): a due time past it is that last instant, and a local date past it (an instant late
  in 9999 seen from a zone east of UTC) is the last date. Nothing raises near the ends.

Pauses (SLA clocks, see docs/sla-clocks.md) are extra non-working time: a clock runs over
the working intervals minus the union of its pauses (``[from, to)``, ``to`` None while
still paused), so a pause across a night, weekend or holiday is never counted twice, and
resuming inside closed time resumes at the next opening. ``calendar=None`` is a wall-clock
(calendar-time) clock: every instant counts, minus the pauses.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from entitle.engine.model import Calendar, TargetSpec

SEARCH_DAYS = 3660  # ~10 years of closed days: the calendar is taken to never open
_DAY_CACHE_LIMIT = 4096  # compiled days kept per calendar
_MINUTE = timedelta(minutes=1)
_SECOND = timedelta(seconds=1)
_DAY = timedelta(days=1)

FIRST_INSTANT = datetime.min.replace(tzinfo=UTC)
LAST_INSTANT = datetime.max.replace(tzinfo=UTC)

Interval = tuple[datetime, datetime]
Pause = tuple[datetime, datetime | None]  # [from, to); to None: paused until further notice


def to_utc(at: datetime, name: str = "instant") -> datetime:
    """The same instant in UTC; naive datetimes are refused because their zone is a guess."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{name} {at.isoformat()} has no UTC offset; pass an aware datetime")
    return at.astimezone(UTC)


def local_date(at: datetime, zone: ZoneInfo | str) -> date:
    """The date on the wall clock of `zone` at instant `at`, within the dates there are."""
    tz = ZoneInfo(zone) if isinstance(zone, str) else zone
    try:
        return at.astimezone(tz).date()
    except OverflowError:  # within a day of the range's ends, seen across the date line
        return date.max if at.year == datetime.max.year else date.min


def later(at: datetime, delta: timedelta) -> datetime:
    """`at + delta`, or the last instant there is when that lies past it."""
    try:
        return at + delta
    except OverflowError:
        return LAST_INSTANT


def earlier(at: datetime, delta: timedelta) -> datetime:
    """`at - delta`, or the first instant there is when that lies before it."""
    try:
        return at - delta
    except OverflowError:
        return FIRST_INSTANT


def local_to_utc(local: datetime, zone: ZoneInfo | str, *, last: bool = False) -> datetime:
    """UTC instant of naive wall time `local` in `zone`, defined even across DST changes.

    A wall time inside a gap maps to the transition (the first instant after the gap);
    a repeated wall time maps to its first occurrence, or its last with `last=True`.
    """
    tz = ZoneInfo(zone) if isinstance(zone, str) else zone
    first = local.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if first.astimezone(tz).replace(tzinfo=None) != local:
        return _gap_end(local, tz)
    if last:
        return local.replace(tzinfo=tz, fold=1).astimezone(UTC)
    return first


def _repeated(local: datetime, tz: ZoneInfo) -> bool:
    """True when wall time `local` occurs twice (inside a fall-back hour)."""
    offsets = {local.replace(tzinfo=tz, fold=fold).utcoffset() for fold in (0, 1)}
    return len(offsets) == 2


def _gap_end(local: datetime, tz: ZoneInfo) -> datetime:
    """The transition instant that skips over `local` (tz transitions fall on whole seconds)."""
    lo = math.floor(local.replace(tzinfo=tz, fold=1).timestamp())  # wall clock still before
    hi = math.ceil(local.replace(tzinfo=tz, fold=0).timestamp())  # wall clock already past
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, tz).replace(tzinfo=None) >= local:
            hi = mid
        else:
            lo = mid
    return datetime.fromtimestamp(hi, UTC)


class _Schedule:
    """A calendar prepared for repeated queries: its zone and a bounded cache of UTC days."""

    def __init__(self, cal: Calendar):
        self.cal = cal
        self.zone = ZoneInfo(cal.tz)
        self.has_hours = any(cal.week)
        self._days: dict[date, tuple[Interval, ...]] = {}

    def day(self, d: date) -> tuple[Interval, ...]:
        hit = self._days.get(d)
        if hit is None:
            hit = self._build_day(d)
            if len(self._days) >= _DAY_CACHE_LIMIT:
                self._days.clear()
            self._days[d] = hit
        return hit

    def _build_day(self, d: date) -> tuple[Interval, ...]:
        if self.cal.is_holiday(d):
            return ()
        midnight = datetime(d.year, d.month, d.day)
        out = []
        for start_min, end_min in self.cal.week[d.weekday()]:
            try:
                start = local_to_utc(midnight + timedelta(minutes=start_min), self.zone)
            except OverflowError:  # past the end of time (the last day, west of UTC)
                break
            try:
                end_local = midnight + timedelta(minutes=end_min)
                # The later occurrence only when the interval's last moments are repeated:
                # an end at the first repeated minute (02:00 on a 03:00 -> 02:00 night) is
                # the first.
                last = end_min < 1440 and _repeated(end_local - _SECOND, self.zone)
                end = local_to_utc(end_local, self.zone, last=last)
            except OverflowError:
                end = LAST_INSTANT
            if end > start:
                out.append((start, end))
        return tuple(out)


@lru_cache(maxsize=256)
def _schedule(cal: Calendar) -> _Schedule:
    return _Schedule(cal)


def _intervals(sched: _Schedule, at: datetime, last_day: date | None = None) -> Iterator[Interval]:
    """Disjoint UTC working intervals in time order, from the one containing `at` (or next).

    Without `last_day` the stream runs to the end of time; it raises ValueError after SEARCH_DAYS
    consecutive closed days, so a calendar that never opens cannot loop forever.
    """
    if not sched.has_hours:
        raise ValueError(f"calendar {sched.cal.id!r} has no working hours on any weekday")
    # Intervals of earlier local dates end by this date's first instant, so none contains `at`.
    day = local_date(at, sched.zone)
    prev_end: datetime | None = None
    closed_days = 0
    while last_day is None or day <= last_day:
        spans = sched.day(day)
        if spans:
            closed_days = 0
        else:
            closed_days += 1
            if last_day is None and closed_days > SEARCH_DAYS:
                raise ValueError(
                    f"calendar {sched.cal.id!r} has no working time within "
                    f"{SEARCH_DAYS} days after {day - timedelta(days=SEARCH_DAYS)}"
                )
        for start, end in spans:
            # Fall-back ends may overlap the next interval; never count an instant twice.
            if prev_end is not None and start < prev_end:
                start = prev_end
            if end <= start:
                continue
            prev_end = end
            if end > at:
                yield start, end
        if day == date.max:  # the end of time: nothing opens after it
            return
        day += _DAY


def merge_pauses(pauses: Iterable[Pause]) -> tuple[Pause, ...]:
    """The union of pauses as sorted, disjoint intervals: overlapping and touching ones merge,
    empty ones vanish, an open pause swallows every later one. Order-independent."""
    items = sorted(
        ((to_utc(a, "pause start"), None if b is None else to_utc(b, "pause end"))
         for a, b in pauses),
        key=lambda p: p[0],
    )
    out: list[Pause] = []
    for a, b in items:
        if b is not None and b <= a:
            continue
        if out and (out[-1][1] is None or a <= out[-1][1]):
            last_a, last_b = out[-1]
            out[-1] = (last_a, None if last_b is None or b is None else max(last_b, b))
        else:
            out.append((a, b))
    return tuple(out)


def _minus(intervals: Iterable[Interval], pauses: tuple[Pause, ...]) -> Iterator[Interval]:
    """`intervals` (sorted, disjoint) without the merged `pauses`; ends at an open pause."""
    i = 0
    for begin, end in intervals:
        while begin < end:
            while i < len(pauses) and pauses[i][1] is not None and pauses[i][1] <= begin:
                i += 1
            if i == len(pauses) or pauses[i][0] >= end:
                yield begin, end
                break
            pause_from, pause_to = pauses[i]
            if pause_from > begin:
                yield begin, pause_from
            if pause_to is None:
                return
            begin = pause_to


def _running(calendar: Calendar | None, at: datetime, pauses: Iterable[Pause],
             last_day: date | None = None) -> Iterator[Interval]:
    """Intervals in which a clock runs, from the one containing `at` (or next)."""
    base = ([(at, LAST_INSTANT)] if calendar is None
            else _intervals(_schedule(calendar), at, last_day))
    merged = merge_pauses(pauses)
    if not merged:
        return iter(base)
    # Cutting out a pause may leave a piece of the first interval that ends before `at`.
    return (span for span in _minus(base, merged) if span[1] > at)


def add_clock_time(calendar: Calendar | None, start: datetime, minutes: float,
                   pauses: Iterable[Pause] = ()) -> datetime | None:
    """The instant a clock started at `start` has run `minutes` (a due time), counting the
    calendar's working time (every minute when `calendar` is None) outside `pauses`;
    None when an open pause stops it first."""
    return clock_progress(calendar, start, (minutes,), pauses)[0][0]


def clock_minutes_between(calendar: Calendar | None, a: datetime, b: datetime,
                          pauses: Iterable[Pause] = ()) -> float:
    """Minutes a clock ran in [a, b): working time (every minute without a calendar) outside
    `pauses`."""
    if calendar is not None and not _schedule(calendar).has_hours:
        return 0.0
    return clock_progress(calendar, a, (), pauses, until=b)[1]


def clock_progress(calendar: Calendar | None, start: datetime, amounts: Sequence[float],
                   pauses: Iterable[Pause] = (), *, until: datetime | None = None,
                   ) -> tuple[list[datetime | None], float]:
    """One walk of a clock started at `start`: the instant it has run each of `amounts`
    (ascending; None when an open pause stops it first, the last instant there is when the
    end of time does), and the minutes it ran by `until` (0 without one). Its warning
    thresholds, due time and elapsed time at once."""
    at = to_utc(start, "start")
    pauses = tuple(pauses)  # read twice: the walk, and why it ended
    for minutes in amounts:
        if not math.isfinite(minutes) or minutes < 0:
            raise ValueError(f"business minutes must be a finite number >= 0, got {minutes!r}")
    if len(amounts) > 1 and any(b < a for a, b in itertools.pairwise(amounts)):
        raise ValueError(f"amounts must be ascending, got {list(amounts)!r}")
    out: list[datetime | None] = [at for m in amounts if m == 0]
    pending = [timedelta(minutes=m) for m in amounts if m > 0]
    stop = None if until is None else to_utc(until, "until")
    ran_by_stop = timedelta(0) if stop is None or stop <= at else None
    if not pending and ran_by_stop is not None:
        return out, 0.0
    last_day = None
    if not pending and calendar is not None:  # only minutes by `stop`: a bounded walk
        last_day = local_date(stop, _schedule(calendar).zone)
        if last_day < date.max:
            last_day += _DAY
    ran = timedelta(0)  # clock time before the current interval
    for begin, end in _running(calendar, at, pauses, last_day):
        begin = max(begin, at)
        available = end - begin
        while pending and pending[0] - ran <= available:
            out.append(begin + (pending.pop(0) - ran))
        if ran_by_stop is None and stop <= end:
            ran_by_stop = ran + max(stop - begin, timedelta(0))
        ran += available
        if not pending and ran_by_stop is not None:
            break
    if ran_by_stop is None:  # the walk ended first (an open pause, or the bounded days)
        ran_by_stop = ran
    if pending and not any(b is None for _, b in merge_pauses(pauses)):
        # No open pause stopped the walk: it reached the end of time.
        out, pending = out + [LAST_INSTANT] * len(pending), []
    return out + [None] * len(pending), ran_by_stop / _MINUTE


def add_business_time(cal: Calendar, start: datetime, minutes: float) -> datetime:
    """The instant `minutes` of working time after `start` (an SLA due time)."""
    due = add_clock_time(cal, start, minutes)
    assert due is not None  # without pauses the interval stream is endless
    return due


def business_minutes_between(cal: Calendar, a: datetime, b: datetime) -> float:
    """Working minutes in [a, b): how much of an SLA clock has run between two instants."""
    return clock_minutes_between(cal, a, b)


def next_opening(cal: Calendar, at: datetime) -> datetime:
    """`at` itself when the calendar is open then, else the start of the next working interval."""
    at = to_utc(at, "at")
    for begin, _end in _intervals(_schedule(cal), at):
        return max(begin, at)
    return LAST_INSTANT  # the stream ends only at the end of time


def due_at(target: TargetSpec, calendars: Mapping[str, Calendar], created_at: datetime) -> datetime:
    """When `target` falls due for a ticket created at `created_at`, on its own clock."""
    if target.clock == "calendar":
        return later(to_utc(created_at, "created_at"), timedelta(minutes=target.minutes))
    if target.calendar_id is None:
        raise ValueError(f"business-time target {target.metric!r} names no calendar")
    cal = calendars.get(target.calendar_id)
    if cal is None:
        raise ValueError(
            f"business-time target {target.metric!r} uses unknown calendar {target.calendar_id!r}"
        )
    return add_business_time(cal, created_at, target.minutes)
