"""SLA clocks: every target's state derived from the ticket's history, its calendar and now.

Nothing here is stored or counted: a clock is a pure function of (terms in force, ordered
history, now), so the stateless answer (`entitle check`, CheckCoverage, test suites) and the
server's live tickets are the same computation. docs/sla-clocks.md has the full model.

API:

- ``ClockTerms``: what one ticket's clocks measure against: the targets of every priority
  (of the SLA rule chosen for the ticket), their calendars, the pause statuses, warn_at and
  the policy revision. ``clock_terms(snapshot, sla_id, ticket)`` resolves them (rules run on
  the ticket's attributes); ``terms_for(policy, sla, rule)`` when the rule is known.
  ``to_json``/``from_json`` let a server pin them: a reload never changes pinned terms, and
  a priority change picks the new priority's targets from the same terms.
- ``History.of(ticket)``: the ticket's start, creation priority and history (events, or the
  pauses + first_response_at + resolved_at form, mapped onto the same events).
- ``evaluate(terms, history, now) -> ClockReport`` with ``clocks`` (one ``ClockState`` per
  clock: first_response, each next_response cycle from 1, resolution), ``crossings`` (every
  warning and breach threshold crossed up to `now`, at its true instant) and
  ``next_crossing_at`` (the next crossing if nothing else happens; None when every clock is
  paused or stopped). ``clocks_at``, ``crossings`` and ``next_crossing_at`` return one each.
  Each ``ClockState`` lists the ``pauses`` it stood still in (a timeline draws them): on a
  calendar clock, elapsed is the wall time of [started_at, stopped_at or now) minus them.

Rules (each tested in tests/fixtures/clocks/): events apply in instant order, same-instant
events in EVENT_TYPES order, a repeated event id once (first delivery wins); events after
`now` are not seen yet. A pause is extra non-working time; an agent reply meets
first_response and the open next_response cycle; a customer message after the first reply
opens a cycle unless resolved or one is open; resolve meets resolution and cancels open
response clocks; reopen resumes resolution (the resolved time does not count). A priority
change re-derives each live clock's target from its original start with pauses kept; a
threshold it jumps over is crossed at the change instant; a breach never reverses. A reply
or resolve at the due instant is on time; a clock asked about at its due instant is
breached. A target absent under the new priority cancels its clock. A history with
`cancelled_at` (the server's released tickets) cancels every open clock then.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from itertools import pairwise

from entitle.engine.calendars import Pause as Interval
from entitle.engine.calendars import clock_progress, merge_pauses
from entitle.engine.model import (
    METRICS,
    PRIORITIES,
    Calendar,
    Policy,
    Sla,
    SlaRule,
    TargetSpec,
    frozen_map,
)
from entitle.engine.ticket import EVENT_TYPES, Ticket, TicketEvent

STATES = ("running", "paused", "met", "met_late", "breached", "cancelled", "inactive")
BREACH = 100  # the threshold percent of a breach
_END = datetime.max.replace(tzinfo=UTC)  # the end of an open pause, for ordering
_ORDER = {t: i for i, t in enumerate(EVENT_TYPES)}
STOPPED_MEMO = 5_000  # stopped clocks remembered per terms (a memory bound); then it starts over


@dataclass(frozen=True)
class ClockTerms:
    """What one ticket's clocks measure against; pinned per ticket so a reload changes nothing."""

    sla_id: str
    revision: str
    rule: str | None  # the SLA rule chosen (None: the default targets)
    targets: Mapping[str, tuple[TargetSpec, ...]]  # priority -> targets in force for it
    calendars: Mapping[str, Calendar]  # the calendars those targets count on
    pause_on: frozenset[str] = frozenset()
    pause_on_by_metric: Mapping[str, frozenset[str]] = field(default_factory=frozen_map)
    warn_at: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        by_metric = {(p, t.metric): t for p, specs in self.targets.items() for t in specs}
        object.__setattr__(self, "_by_metric", by_metric)
        # Stopped clocks measured under these terms, by everything their measure reads
        # (see _measure): a memo, so a live ticket's next event re-measures only open clocks.
        object.__setattr__(self, "_stopped", {})

    def target(self, priority: str, metric: str) -> TargetSpec | None:
        return self._by_metric.get((priority, metric))

    def pause_statuses(self, metric: str) -> frozenset[str]:
        return self.pause_on_by_metric.get(metric, self.pause_on)

    def calendar(self, spec: TargetSpec) -> Calendar | None:
        """The calendar `spec` counts on; None for a calendar-time (wall-clock) target."""
        if spec.clock == "calendar":
            return None
        cal = self.calendars.get(spec.calendar_id or "")
        if cal is None:
            raise ValueError(f"business-time target {spec.metric!r} uses unknown calendar "
                             f"{spec.calendar_id!r}")
        return cal

    def to_json(self) -> dict:
        """JSON a server stores to pin the terms of a live ticket."""
        return {
            "sla_id": self.sla_id,
            "revision": self.revision,
            "rule": self.rule,
            "targets": {p: [[t.metric, t.minutes, t.clock, t.calendar_id] for t in specs]
                        for p, specs in self.targets.items()},
            "calendars": {c.id: _calendar_json(c) for c in self.calendars.values()},
            "pause_on": sorted(self.pause_on),
            "pause_on_by_metric": {m: sorted(s) for m, s in self.pause_on_by_metric.items()},
            "warn_at": list(self.warn_at),
        }

    @classmethod
    def from_json(cls, obj: Mapping) -> ClockTerms:
        return cls(
            sla_id=obj["sla_id"],
            revision=obj["revision"],
            rule=obj.get("rule"),
            targets=frozen_map({p: tuple(TargetSpec(m, float(n), c, cal) for m, n, c, cal in v)
                                for p, v in obj["targets"].items()}),
            calendars=frozen_map({i: _calendar_from_json(c)
                                  for i, c in obj["calendars"].items()}),
            pause_on=frozenset(obj.get("pause_on", ())),
            pause_on_by_metric=frozen_map({m: frozenset(s) for m, s in
                                           obj.get("pause_on_by_metric", {}).items()}),
            warn_at=tuple(obj.get("warn_at", ())),
        )


def _calendar_json(c: Calendar) -> dict:
    return {"id": c.id, "tz": c.tz, "week": [[list(i) for i in day] for day in c.week],
            "holidays": sorted(d.isoformat() for d in c.holidays),
            "yearly_holidays": sorted([m, d] for m, d in c.yearly_holidays)}


def _calendar_from_json(obj: Mapping) -> Calendar:
    return Calendar(
        obj["id"], obj["tz"], tuple(tuple((s, e) for s, e in day) for day in obj["week"]),
        frozenset(date.fromisoformat(d) for d in obj["holidays"]),
        frozenset((m, d) for m, d in obj["yearly_holidays"]),
    )


def terms_for(policy: Policy, sla: Sla, rule: SlaRule | None) -> ClockTerms:
    """Terms of tickets that `rule` (None: no rule) matched; a rule without targets for a
    priority falls back to the SLA's default ones, as decisions do."""
    targets = {}
    for priority in PRIORITIES:
        specs = (rule.targets if rule else sla.default).get(priority, ())
        if rule is not None and not specs:
            specs = sla.default.get(priority, ())
        targets[priority] = specs
    ids = {t.calendar_id for specs in targets.values() for t in specs if t.calendar_id}
    return ClockTerms(
        sla_id=sla.id,
        revision=policy.revision,
        rule=rule.name if rule else None,
        targets=frozen_map(targets),
        calendars=frozen_map({i: policy.calendars[i] for i in sorted(ids)
                              if i in policy.calendars}),
        pause_on=sla.pause_on,
        pause_on_by_metric=sla.pause_on_by_metric,
        warn_at=sla.warn_at,
    )


def clock_terms(snapshot, sla_id: str, ticket: Ticket) -> ClockTerms:
    """Terms for `ticket` under SLA `sla_id` of `snapshot` (its rules run on the ticket)."""
    index = snapshot.rules.select_sla_rule(sla_id, ticket.product, ticket.subject,
                                           ticket.attributes)
    return snapshot.clock_terms(sla_id, index)


@dataclass(frozen=True)
class History:
    """A ticket's clock-relevant history: when it started, at which priority, what happened."""

    created_at: datetime
    priority: str
    events: tuple[TicketEvent, ...] = ()  # as delivered: any order, repeats allowed
    pauses: tuple[Interval, ...] = ()  # stateless form: intervals stopping every clock
    # The ticket left the ledger then (released: deleted or merged): every clock still open
    # is cancelled at that instant, after the events of the same instant; later ones unseen.
    cancelled_at: datetime | None = None

    @classmethod
    def of(cls, ticket: Ticket) -> History:
        """The ticket's history; the pauses form's instants become events, one path for both."""
        events = list(ticket.events)
        if ticket.first_response_at is not None:
            events.append(TicketEvent("first_response_at", "agent_reply",
                                      ticket.first_response_at))
        if ticket.resolved_at is not None:
            events.append(TicketEvent("resolved_at", "resolved", ticket.resolved_at))
        return cls(ticket.created_at.astimezone(UTC), ticket.priority, tuple(events),
                   tuple((p.start, p.end) for p in ticket.pauses))


def ordered_events(events: Iterable[TicketEvent]) -> tuple[TicketEvent, ...]:
    """Events in the order they apply: by instant, then EVENT_TYPES order, then event id (so
    the order never depends on delivery); a repeated id is dropped (the first delivery wins)."""
    seen: set[str] = set()
    unique = []
    for e in events:
        if e.id not in seen:
            seen.add(e.id)
            unique.append(e)
    return tuple(sorted(unique, key=lambda e: (e.at, _ORDER[e.type], e.id)))


@dataclass(frozen=True)
class ClockState:
    """One clock at one instant, everything derived."""

    metric: str
    cycle: int  # next_response cycles from 1; 0 for first_response and resolution
    state: str  # one of STATES
    paused: bool  # in a pause now (a breached clock may be paused too)
    minutes: float  # the target in force (at the stop, for a stopped clock)
    clock: str  # business | calendar
    calendar_id: str | None
    started_at: datetime | None  # None only for an inactive next_response
    due_at: datetime | None  # None while paused before the due time, and when inactive
    elapsed_minutes: float  # clock minutes run (business minutes on a business clock)
    remaining_minutes: float  # minutes - elapsed; negative once breached
    percent_elapsed: float
    breached_at: datetime | None  # stays once set, whatever the state
    stopped_at: datetime | None  # met, met late or cancelled at
    policy_revision: str
    priority: str  # whose target is in force
    crossed: tuple[tuple[int, datetime], ...] = ()  # (threshold percent, instant) so far
    # [from, to) spans it did not run in within [started_at, stopped_at or now]: merged,
    # sorted, disjoint; `to` None: paused now. The resolved stretch before a reopen is one.
    pauses: tuple[Interval, ...] = ()


@dataclass(frozen=True)
class Crossing:
    """A warning threshold (percent) or the breach (100) crossed by one clock."""

    metric: str
    cycle: int
    threshold: int
    at: datetime

    @property
    def is_breach(self) -> bool:
        return self.threshold >= BREACH


@dataclass(frozen=True)
class ClockReport:
    clocks: tuple[ClockState, ...]
    crossings: tuple[Crossing, ...]  # ordered by instant
    next_crossing_at: datetime | None


class _Track:
    """One clock's life from the replay: live spans [begin, end) and how it stopped."""

    def __init__(self, metric: str, cycle: int, start: datetime):
        self.metric, self.cycle, self.start = metric, cycle, start
        self.spans: list[list] = [[start, None]]
        self.kind: str | None = None  # met | resolved | cancelled once stopped
        self.priority: str | None = None  # priority at the stop
        self.had_target = False

    @property
    def live(self) -> bool:
        return self.kind is None

    def stop(self, at: datetime, kind: str, priority: str) -> None:
        if self.live:
            self.spans[-1][1] = at
            self.kind, self.priority = kind, priority

    def first_live(self, at: datetime) -> datetime | None:
        """The first instant >= `at` in which the clock runs; None when it has stopped."""
        for begin, end in self.spans:
            if end is None or at < end:
                return max(at, begin)
        return None


@dataclass
class _Replay:
    tracks: list[_Track]
    statuses: list[tuple[datetime, str | None]]  # (from, status) in time order
    priorities: list[tuple[datetime, str]]  # (from, priority) in time order
    priority_times: list[datetime]  # their instants, for bisection
    priority: str  # now


def _replay(terms: ClockTerms, history: History, events: tuple[TicketEvent, ...],
            cancelled_at: datetime | None = None) -> _Replay:
    start = history.created_at
    priority = history.priority
    first = _Track("first_response", 0, start)
    resolution = _Track("resolution", 0, start)
    cycles: list[_Track] = []
    open_cycle: _Track | None = None
    replied = resolved = False
    statuses: list[tuple[datetime, str | None]] = [(start, None)]
    priorities = [(start, priority)]

    def targeted(track: _Track, at: datetime) -> None:
        """Note a target in force; its disappearance cancels the clock."""
        if terms.target(priority, track.metric) is not None:
            track.had_target = True
        elif track.had_target:
            track.stop(at, "cancelled", priority)

    targeted(first, start)
    targeted(resolution, start)
    for e in events:
        at = max(e.at, start)
        if e.type == "reopened":
            if resolved and resolution.kind == "resolved":
                resolved = False
                resolution.kind = resolution.priority = None
                resolution.spans.append([at, None])
                targeted(resolution, at)
            resolved = False
        elif e.type == "status_changed":
            statuses.append((at, (e.status or "").lower()))
        elif e.type == "agent_reply":
            replied = True
            first.stop(at, "met", priority)
            if open_cycle is not None:
                open_cycle.stop(at, "met", priority)
                open_cycle = None
        elif e.type == "customer_message":
            if replied and not resolved and open_cycle is None:
                open_cycle = _Track("next_response", len(cycles) + 1, at)
                cycles.append(open_cycle)
                targeted(open_cycle, at)
        elif e.type == "priority_changed" and e.priority:
            priority = e.priority
            priorities.append((at, priority))
            for track in (first, resolution, open_cycle):
                if track is not None and track.live:
                    targeted(track, at)
        elif e.type == "resolved" and not resolved:
            resolved = True
            resolution.stop(at, "resolved", priority)
            first.stop(at, "cancelled", priority)
            if open_cycle is not None:
                open_cycle.stop(at, "cancelled", priority)
                open_cycle = None
    if cancelled_at is not None:
        for track in (first, *cycles, resolution):
            track.stop(max(cancelled_at, start), "cancelled", priority)
    return _Replay([first, *cycles, resolution], statuses, priorities,
                   [at for at, _ in priorities], priority)


def _status_pauses(statuses: list[tuple[datetime, str | None]],
                   pausing: frozenset[str]) -> list[Interval]:
    out: list[Interval] = []
    for (at, status), nxt in zip(statuses, [*statuses[1:], None], strict=True):
        if status in pausing:
            out.append((at, nxt[0] if nxt else None))
    return out


def _clip(pauses: Iterable[Interval], now: datetime) -> list[Interval]:
    """Pauses as known at `now`: later ones unseen, one still going at `now` open."""
    return [(a, None if b is None or b > now else b) for a, b in pauses if a <= now]


Segment = tuple[datetime, str, TargetSpec | None]  # (from, priority, its target)


def _first_crossings(track: _Track, pauses: tuple[Interval, ...], segments: list[Segment],
                     reaches: _Reaches) -> list[datetime | None]:
    """When the clock first reaches each threshold, assuming nothing else happens."""
    out: list[datetime | None] = []
    for i in range(len(reaches.thresholds)):
        found = None
        for k, (since, _priority, spec) in enumerate(segments):
            if spec is None:
                continue
            reach = reaches(spec, pauses)[i]
            if reach is None:
                continue
            at = track.first_live(max(reach, since))
            until = segments[k + 1][0] if k + 1 < len(segments) else None
            if at is not None and (until is None or at < until):
                found = at
                break
        out.append(found)
    return out


class _Reaches:
    """Where a clock reaches each threshold of a target, and how far it ran by `upto`: one
    calendar walk per (target, pauses), shared by the crossings, the due time and elapsed."""

    def __init__(self, terms: ClockTerms, start: datetime, upto: datetime):
        self.terms, self.start, self.upto = terms, start, upto
        self.thresholds = (*terms.warn_at, BREACH)  # ascending, the breach last
        self._walks: list[tuple[TargetSpec, tuple, tuple[list[datetime | None], float]]] = []

    def walk(self, spec: TargetSpec, pauses: tuple[Interval, ...],
             ) -> tuple[list[datetime | None], float]:
        for known_spec, known_pauses, walk in self._walks:
            if known_spec is spec and known_pauses is pauses:
                return walk
        walk = clock_progress(self.terms.calendar(spec), self.start,
                              [t / 100 * spec.minutes for t in self.thresholds], pauses,
                              until=self.upto)
        self._walks.append((spec, pauses, walk))
        return walk

    def __call__(self, spec: TargetSpec, pauses: tuple[Interval, ...]) -> list[datetime | None]:
        return self.walk(spec, pauses)[0]


class _Pauses:
    """Merged pauses, sorted and disjoint, with the part overlapping a clock's life found by
    bisection: a long history costs each clock only its own stretch of it."""

    def __init__(self, pauses: Iterable[Interval]):
        self.pauses = merge_pauses(pauses)
        self._starts = [a for a, _ in self.pauses]
        self._ends = [_END if b is None else b for _, b in self.pauses]

    def within(self, begin: datetime, end: datetime) -> tuple[Interval, ...]:
        """The pauses that end after `begin` and start by `end`."""
        return self.pauses[bisect_right(self._ends, begin):bisect_right(self._starts, end)]


def _ran_paused(pauses: tuple[Interval, ...], start: datetime, upto: datetime,
                live: bool) -> tuple[Interval, ...]:
    """The merged `pauses` clipped to [start, upto]; one still open stays open on a live
    clock (paused now) and ends at the stop on a stopped one. Empty spans vanish."""
    out = []
    for a, b in pauses:
        begin = max(a, start)
        end = None if b is None and live else min(upto if b is None else b, upto)
        if end is None or begin < end:
            out.append((begin, end))
    return tuple(out)


def _measure(terms: ClockTerms, replay: _Replay, track: _Track, pausing: _Pauses,
             now: datetime) -> tuple[ClockState, list[datetime | None]]:
    """The clock's state at `now` and, per threshold, its first crossing (maybe after now).
    `pausing`: the pauses of the track's metric (statuses and explicit ones)."""
    stopped_at = None if track.live else track.spans[-1][1]
    upto = min(now, stopped_at) if stopped_at else now
    pauses = pausing.within(track.start, upto)
    if len(track.spans) > 1:  # the resolved stretches between a resolve and a reopen
        pauses = merge_pauses([*pauses, *((a[1], b[0]) for a, b in pairwise(track.spans))])
    times = replay.priority_times
    first = max(bisect_right(times, track.start) - 1, 0)  # the priority in force at the start
    last = max(bisect_right(times, upto), first + 1)
    segments = [(max(at, track.start), p, terms.target(p, track.metric))
                for at, p in replay.priorities[first:last]]
    memo = None
    if stopped_at is not None:  # stopped by an event or cancel seen at `now`: its measure
        # reads only what is below, never `now` (nothing of it happens after the stop)
        memo = (track.metric, track.cycle, track.kind, track.priority,
                tuple(tuple(span) for span in track.spans), pauses, tuple(segments),
                tuple(replay.priorities[:last]))
        known_state = terms._stopped.get(memo)  # type: ignore[attr-defined]
        if known_state is not None:
            return known_state
    state, reached = _measure_from(terms, replay, track, pauses, segments,
                                   replay.priorities[:last], upto, stopped_at, now)
    if memo is not None:
        stopped = terms._stopped  # type: ignore[attr-defined]
        if len(stopped) >= STOPPED_MEMO:
            stopped.clear()
        stopped[memo] = (state, reached)
    return state, reached


def _measure_from(terms: ClockTerms, replay: _Replay, track: _Track,
                  pauses: tuple[Interval, ...], segments: list[Segment],
                  priorities: list[tuple[datetime, str]], upto: datetime,
                  stopped_at: datetime | None, now: datetime
                  ) -> tuple[ClockState, list[datetime | None]]:
    """_measure's work, from what it gathered (a stopped clock's result depends on nothing
    else)."""
    reaches = _Reaches(terms, track.start, upto)
    reached = _first_crossings(track, pauses, segments, reaches)
    crossed = tuple((t, at) for t, at in zip(reaches.thresholds, reached, strict=True)
                    if at is not None and at <= now)
    breached_at = next((at for t, at in crossed if t == BREACH), None)

    priority = track.priority or replay.priority
    spec = terms.target(priority, track.metric)
    if spec is None:  # cancelled because the priority lost the target: the last one in force
        # (looked for before the track's start too: a change at the creation instant)
        earlier = [(max(at, track.start), p, terms.target(p, track.metric))
                   for at, p in priorities]
        _, priority, spec = next(seg for seg in reversed(earlier)
                                 if seg[2] is not None and seg[0] <= (stopped_at or now))
    elapsed = reaches.walk(spec, pauses)[1]
    # A stopped clock keeps the due time it had when it stopped: later pauses do not move it.
    known = pauses if stopped_at is None else merge_pauses(
        (a, stopped_at if b is None else min(b, stopped_at)) for a, b in pauses if a < stopped_at)
    due = reaches(spec, known)[-1]
    paused = stopped_at is None and any(a <= now and (b is None or now < b) for a, b in pauses)
    if track.live:
        state = "breached" if breached_at else ("paused" if paused else "running")
    elif track.kind == "cancelled":
        state = "cancelled"
    else:
        state = "met_late" if breached_at else "met"
    percent = 100.0 * elapsed / spec.minutes if spec.minutes else 100.0
    return ClockState(
        metric=track.metric, cycle=track.cycle, state=state, paused=paused,
        minutes=spec.minutes, clock=spec.clock, calendar_id=spec.calendar_id,
        started_at=track.start, due_at=due, elapsed_minutes=round(elapsed, 6),
        remaining_minutes=round(spec.minutes - elapsed, 6), percent_elapsed=round(percent, 4),
        breached_at=breached_at, stopped_at=stopped_at, policy_revision=terms.revision,
        priority=priority, crossed=crossed,
        pauses=_ran_paused(pauses, track.start, upto, track.live),
    ), reached


def evaluate(terms: ClockTerms, history: History, now: datetime) -> ClockReport:
    """Every clock of the ticket at `now`, the thresholds crossed so far and the next one."""
    now = now.astimezone(UTC)
    if not history.events and not history.pauses and history.cancelled_at is None:
        return _fresh(terms, history, now)
    return _replayed(terms, history, now)


def _replayed(terms: ClockTerms, history: History, now: datetime) -> ClockReport:
    """evaluate() by replaying the ordered history."""
    cancelled = history.cancelled_at
    cancelled = cancelled.astimezone(UTC) if cancelled is not None and cancelled <= now else None
    seen = now if cancelled is None else cancelled
    events = tuple(e for e in ordered_events(history.events) if e.at <= seen)
    replay = _replay(terms, history, events, cancelled)
    explicit = _clip(history.pauses, now)
    by_statuses: dict[frozenset[str], _Pauses] = {}  # metrics pausing on the same statuses
    clocks, crossings, upcoming = [], [], []
    for track in replay.tracks:
        if not track.had_target:
            continue
        statuses = terms.pause_statuses(track.metric)
        pausing = by_statuses.get(statuses)
        if pausing is None:
            pausing = by_statuses[statuses] = _Pauses(
                [*_status_pauses(replay.statuses, statuses), *explicit])
        state, reached = _measure(terms, replay, track, pausing, now)
        clocks.append(state)
        crossings += [Crossing(track.metric, track.cycle, t, at) for t, at in state.crossed]
        upcoming += [at for at in reached if at is not None and at > now]
    spec = terms.target(replay.priority, "next_response")
    if spec is not None and not any(c.metric == "next_response" for c in clocks):
        idle = _inactive(terms, spec, replay.priority)
        clocks.insert(1, idle if cancelled is None else replace(
            idle, state="cancelled", stopped_at=cancelled))
    clocks.sort(key=lambda c: (METRICS.index(c.metric), c.cycle))
    crossings.sort(key=lambda c: (c.at, METRICS.index(c.metric), c.cycle, c.threshold))
    return ClockReport(tuple(clocks), tuple(crossings), min(upcoming, default=None))


def _fresh(terms: ClockTerms, history: History, now: datetime) -> ClockReport:
    """evaluate() of a ticket with no history yet (every decision at ticket creation): each
    clock runs from created_at at the creation priority, one calendar walk per clock. The
    same figures as the general replay (a property test holds them equal), without it."""
    clocks, crossings, upcoming = [], [], []
    thresholds = (*terms.warn_at, BREACH)
    for metric in METRICS:
        spec = terms.target(history.priority, metric)
        if spec is None:
            continue
        if metric == "next_response":
            clocks.append(_inactive(terms, spec, history.priority))
            continue
        reaches, elapsed = clock_progress(
            terms.calendar(spec), history.created_at,
            [t / 100 * spec.minutes for t in thresholds], until=now)
        crossed = tuple((t, at) for t, at in zip(thresholds, reaches, strict=True)
                        if at is not None and at <= now)
        upcoming += [at for at in reaches if at is not None and at > now]
        breached_at = crossed[-1][1] if crossed and crossed[-1][0] == BREACH else None
        percent = 100.0 * elapsed / spec.minutes if spec.minutes else 100.0
        clocks.append(ClockState(
            metric=metric, cycle=0, state="breached" if breached_at else "running",
            paused=False, minutes=spec.minutes, clock=spec.clock, calendar_id=spec.calendar_id,
            started_at=history.created_at, due_at=reaches[-1],
            elapsed_minutes=round(elapsed, 6), remaining_minutes=round(spec.minutes - elapsed, 6),
            percent_elapsed=round(percent, 4), breached_at=breached_at, stopped_at=None,
            policy_revision=terms.revision, priority=history.priority, crossed=crossed,
        ))
        crossings += [Crossing(metric, 0, t, at) for t, at in crossed]
    crossings.sort(key=lambda c: (c.at, METRICS.index(c.metric), c.cycle, c.threshold))
    return ClockReport(tuple(clocks), tuple(crossings), min(upcoming, default=None))


def _inactive(terms: ClockTerms, spec: TargetSpec, priority: str) -> ClockState:
    """next_response before any cycle: it waits for a customer message after the first reply."""
    return ClockState(
        metric=spec.metric, cycle=0, state="inactive", paused=False, minutes=spec.minutes,
        clock=spec.clock, calendar_id=spec.calendar_id, started_at=None, due_at=None,
        elapsed_minutes=0.0, remaining_minutes=spec.minutes, percent_elapsed=0.0,
        breached_at=None, stopped_at=None, policy_revision=terms.revision, priority=priority,
    )


def clocks_at(terms: ClockTerms, history: History, now: datetime) -> tuple[ClockState, ...]:
    """Every clock of the ticket at `now`."""
    return evaluate(terms, history, now).clocks


def crossings(terms: ClockTerms, history: History, now: datetime) -> tuple[Crossing, ...]:
    """Every (metric, cycle, threshold) crossed up to `now`, at the instant it truly was."""
    return evaluate(terms, history, now).crossings


def next_crossing_at(terms: ClockTerms, history: History, now: datetime) -> datetime | None:
    """The next threshold instant after `now` if nothing else happens (None: all paused or
    stopped): when a server should look at this ticket again."""
    return evaluate(terms, history, now).next_crossing_at
