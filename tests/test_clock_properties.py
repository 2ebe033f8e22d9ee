"""Properties of the pause math and of event replay over generated calendars and histories.

Pauses are extra non-working time, so: adding a pause never makes a due time earlier;
a pause that lies only in closed time changes nothing; the union of pauses does not
depend on their order (nor does replaying events delivered in another order). A due time
is where exactly the target's minutes have run.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st
from test_timemath_properties import PROFILE, TOLERANCE, calendars, instants

from entitle.engine.calendars import (
    add_clock_time,
    clock_minutes_between,
    merge_pauses,
    next_opening,
)
from entitle.engine.clocks import ClockTerms, History, _fresh, _replayed, evaluate, ordered_events
from entitle.engine.model import TargetSpec, frozen_map
from entitle.engine.ticket import EVENT_TYPES, TicketEvent

maybe_calendars = st.one_of(st.none(), calendars())  # None: a calendar-time clock
minutes = st.floats(1, 5000, allow_nan=False)


@st.composite
def pauses(draw, around: datetime, max_size: int = 6) -> list:
    """Pauses near `around` (some before it), a few of them open."""
    out = []
    for _ in range(draw(st.integers(0, max_size))):
        start = around + timedelta(minutes=draw(st.integers(-3000, 20000)))
        length = draw(st.one_of(st.none(), st.integers(0, 6000)))
        out.append((start, None if length is None else start + timedelta(minutes=length)))
    return out


def _later_or_equal(a: datetime | None, b: datetime | None) -> bool:
    """a >= b where None is 'never'."""
    return a is None or (b is not None and a >= b - TOLERANCE)


@PROFILE
@given(maybe_calendars, instants, minutes, st.data())
def test_adding_a_pause_never_makes_a_due_time_earlier(cal, start, m, data) -> None:
    before = data.draw(pauses(start))
    extra = data.draw(pauses(start, max_size=1).filter(bool))
    assert _later_or_equal(add_clock_time(cal, start, m, before + extra),
                           add_clock_time(cal, start, m, before))


@PROFILE
@given(calendars(), instants, minutes, st.data())
def test_pauses_in_closed_time_change_nothing(cal, start, m, data) -> None:
    closed = []
    for at in data.draw(st.lists(instants, max_size=6)):
        opening = next_opening(cal, at)
        if opening > at:  # [at, opening) is closed time
            cut = data.draw(st.floats(0, 1)) * (opening - at)
            closed.append((at + cut, opening))
    assert add_clock_time(cal, start, m, closed) == add_clock_time(cal, start, m)
    end = start + timedelta(minutes=data.draw(st.integers(0, 30000)))
    assert abs(clock_minutes_between(cal, start, end, closed)
               - clock_minutes_between(cal, start, end)) < 1e-6


@PROFILE
@given(maybe_calendars, instants, minutes, st.data())
def test_the_union_of_pauses_does_not_depend_on_their_order(cal, start, m, data) -> None:
    given_pauses = data.draw(pauses(start))
    shuffled = data.draw(st.permutations(given_pauses))
    merged = merge_pauses(given_pauses)
    assert merge_pauses(shuffled) == merged
    assert merge_pauses(merged) == merged  # already a union
    for (_, b), (c, _) in pairwise(merged):
        assert b is not None and b < c  # disjoint and not touching
    assert add_clock_time(cal, start, m, shuffled) == add_clock_time(cal, start, m, merged)


@PROFILE
@given(maybe_calendars, instants, st.data())
def test_minutes_run_lie_between_zero_and_the_wall_clock_minutes(cal, start, data) -> None:
    given_pauses = data.draw(pauses(start))
    a = start + timedelta(minutes=data.draw(st.integers(-3000, 20000)))
    b = a + timedelta(minutes=data.draw(st.integers(0, 20000)))
    ran = clock_minutes_between(cal, a, b, given_pauses)
    assert 0 <= ran <= (b - a) / timedelta(minutes=1) + 1e-9
    assert ran <= clock_minutes_between(cal, a, b) + 1e-9  # pauses only take time away


@PROFILE
@given(maybe_calendars, instants, minutes, st.data())
def test_a_due_time_is_where_the_minutes_have_run(cal, start, m, data) -> None:
    given_pauses = data.draw(pauses(start))
    due = add_clock_time(cal, start, m, given_pauses)
    if due is not None:
        ran = clock_minutes_between(cal, start, due, given_pauses)
        assert abs(ran - m) < 1e-3


def _terms(cal) -> ClockTerms:
    clock = "calendar" if cal is None else "business"
    cal_id = None if cal is None else cal.id
    specs = {p: (TargetSpec("first_response", n, clock, cal_id),
                 TargetSpec("next_response", n * 2, clock, cal_id),
                 TargetSpec("resolution", n * 4, clock, cal_id))
             for p, n in (("low", 240), ("medium", 120), ("high", 60), ("urgent", 30))}
    return ClockTerms("generated", "rev", None, frozen_map(specs),
                      frozen_map({} if cal is None else {cal.id: cal}),
                      pause_on=frozenset({"pending"}),
                      pause_on_by_metric=frozen_map({"first_response": frozenset()}),
                      warn_at=(50, 75))


@st.composite
def histories(draw, start: datetime) -> tuple[TicketEvent, ...]:
    out = []
    for i in range(draw(st.integers(0, 12))):
        kind = draw(st.sampled_from(EVENT_TYPES))
        at = start + timedelta(minutes=draw(st.integers(0, 6000)))
        out.append(TicketEvent(
            f"e{i}", kind, at,
            status=draw(st.sampled_from(["pending", "open"])) if kind == "status_changed" else None,
            priority=draw(st.sampled_from(["low", "high", "urgent"]))
            if kind == "priority_changed" else None,
        ))
    # one event per (instant, type): delivery order cannot matter then
    unique = {(e.at, e.type): e for e in out}
    return tuple(unique.values())


@PROFILE
@given(maybe_calendars, instants, st.data())
def test_replay_does_not_depend_on_delivery_order_or_redelivery(cal, start, data) -> None:
    terms = _terms(cal)
    events = data.draw(histories(start))
    now = start + timedelta(minutes=data.draw(st.integers(0, 9000)))
    report = evaluate(terms, History(start, "medium", events), now)
    redelivered = list(events) + list(events[: len(events) // 2])
    random.Random(data.draw(st.integers())).shuffle(redelivered)
    assert evaluate(terms, History(start, "medium", tuple(redelivered)), now) == report


@PROFILE
@given(maybe_calendars, instants, st.data())
def test_a_breach_never_reverses_and_elapsed_never_shrinks(cal, start, data) -> None:
    terms = _terms(cal)
    history = History(start, "medium", data.draw(histories(start)))
    a = start + timedelta(minutes=data.draw(st.integers(0, 6000)))
    b = a + timedelta(minutes=data.draw(st.integers(0, 3000)))
    early, late = evaluate(terms, history, a), evaluate(terms, history, b)
    assert set(early.crossings) <= set(late.crossings)
    later = {(c.metric, c.cycle): c for c in late.clocks}
    for c in early.clocks:
        if c.state == "inactive":  # a placeholder until the first cycle opens
            continue
        d = later[(c.metric, c.cycle)]
        if c.breached_at is not None:
            assert d.breached_at == c.breached_at
        if c.priority == d.priority:
            assert d.elapsed_minutes >= c.elapsed_minutes - 1e-6


@PROFILE
@given(maybe_calendars, instants, st.sampled_from(["low", "medium", "high", "urgent"]),
       st.integers(-1440, 20000))
def test_a_ticket_without_history_gets_the_clocks_of_the_full_replay(cal, start, priority,
                                                                      offset) -> None:
    """The short cut for decisions at creation gives exactly what the replay gives."""
    terms = _terms(cal)
    history = History(start, priority)
    now = start + timedelta(minutes=offset)
    assert _fresh(terms, history, now) == _replayed(terms, history, now)


@PROFILE
@given(maybe_calendars, instants, st.data())
def test_a_released_ticket_s_clocks_stop_at_the_release_and_stay_so(cal, start, data) -> None:
    """Cancelled at the release: every open clock ends then (like a resolve, a threshold
    reached exactly then is not crossed), what was crossed before stays, nothing after."""
    terms = _terms(cal)
    events = data.draw(histories(start))
    cut = start + timedelta(minutes=data.draw(st.integers(0, 6000)))
    later = [cut + timedelta(minutes=data.draw(st.integers(0, 9000))) for _ in range(2)]
    released = History(start, "medium", events, cancelled_at=cut)
    first, second = (evaluate(terms, released, now) for now in later)
    assert first == second  # frozen
    assert first.next_crossing_at is None
    assert {c.state for c in first.clocks} <= {"met", "met_late", "cancelled"}
    plain = evaluate(terms, History(start, "medium", events), cut)
    assert set(first.crossings) == {x for x in plain.crossings if x.at < cut}
    assert evaluate(terms, released, cut - timedelta(minutes=1)) == evaluate(
        terms, History(start, "medium", events), cut - timedelta(minutes=1))


@PROFILE
@given(maybe_calendars, instants, st.data())
def test_remembered_stopped_clocks_give_exactly_the_full_replay(cal, start, data) -> None:
    """A live ticket's clocks measured event after event on one terms object (stopped clocks
    come from its memo) equal a cold replay of the same history, in and out of order."""
    warm = _terms(cal)
    events = list(data.draw(histories(start)))
    late = data.draw(st.lists(st.integers(0, len(events)), max_size=3))
    for i in sorted(set(late), reverse=True):  # a few delivered out of order, later
        if i < len(events):
            events.append(events.pop(i))
    for n in range(len(events) + 1):
        now = start + timedelta(minutes=data.draw(st.integers(0, 9000)))
        released = data.draw(st.none() | st.just(now - timedelta(minutes=30)))
        history = History(start, "medium", tuple(events[:n]), cancelled_at=released)
        assert evaluate(warm, history, now) == evaluate(_terms(cal), history, now)


@st.composite
def pause_histories(draw, start: datetime) -> History:
    """The pauses form: explicit pauses (some open, some before the start) and maybe a first
    reply and a resolve, as History.of maps them."""
    events = []
    for kind in ("agent_reply", "resolved"):
        if draw(st.booleans()):
            at = start + timedelta(minutes=draw(st.integers(0, 9000)))
            events.append(TicketEvent(f"{kind}_at", kind, at))
    return History(start, "medium", tuple(events), tuple(draw(pauses(start))))


def _stood_still(terms: ClockTerms, history: History, clock, now: datetime) -> tuple:
    """The test's own reading of where `clock` stood still: its metric's pausing statuses,
    the explicit pauses as known at `now`, and (resolution) the resolved stretches before a
    reopen; merged and clipped to the clock's run, an open one ending at a stop."""
    pausing = terms.pause_statuses(clock.metric)
    spans: list = []
    paused_since = resolved_since = None
    for e in ordered_events(history.events):
        if e.at > now:
            break
        at = max(e.at, history.created_at)
        if e.type == "status_changed":
            if (e.status or "").lower() in pausing:
                paused_since = paused_since or at
            elif paused_since is not None:
                spans.append((paused_since, at))
                paused_since = None
        elif e.type == "resolved" and resolved_since is None:
            resolved_since = at
        elif e.type == "reopened" and resolved_since is not None:
            if clock.metric == "resolution":
                spans.append((resolved_since, at))
            resolved_since = None
    if paused_since is not None:
        spans.append((paused_since, None))
    spans += [(a, None if b is None or b > now else b) for a, b in history.pauses if a <= now]
    stop = clock.stopped_at or now
    out = []
    for a, b in merge_pauses(spans):
        begin, end = max(a, clock.started_at), stop if b is None else min(b, stop)
        if begin < end or (b is None and clock.stopped_at is None):
            out.append((begin, None if b is None and clock.stopped_at is None else end))
    return tuple(out)


@PROFILE
@given(maybe_calendars, instants, st.booleans(), st.data())
def test_the_pauses_listed_are_where_the_clock_stood_still(cal, start, as_events, data) -> None:
    """Each clock lists exactly its merged pauses within its run, and they are what it
    measured with: on a calendar clock elapsed is the run's wall time minus them."""
    terms = _terms(cal)
    history = (History(start, "medium", data.draw(histories(start))) if as_events
               else data.draw(pause_histories(start)))
    now = start + timedelta(minutes=data.draw(st.integers(0, 9000)))
    for clock in evaluate(terms, history, now).clocks:
        if clock.state == "inactive":
            assert clock.pauses == ()
            continue
        assert clock.pauses == _stood_still(terms, history, clock, now)
        stop = clock.stopped_at or now
        assert all(b is None or clock.started_at <= a < b <= stop for a, b in clock.pauses)
        assert all(b is None and clock.paused for a, b in clock.pauses if b is None)
        if cal is None:
            still = sum(((b or stop) - a for a, b in clock.pauses), timedelta())
            wall = (stop - clock.started_at - still) / timedelta(minutes=1)
            assert abs(clock.elapsed_minutes - wall) < 1e-5
        else:
            ran = clock_minutes_between(cal, clock.started_at, stop, clock.pauses)
            assert abs(clock.elapsed_minutes - ran) < 1e-5
