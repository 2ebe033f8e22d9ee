"""A ticket's SLA timeline as inline SVG geometry: each clock a lane of running, paused and
breached segments with its due time, breach and stop marked (no chart library, no script).

The segments come from the clock itself (Target.pauses, breached_at, stopped_at), never
re-derived from the events: the page shows exactly what the engine measured.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from entitle.server.faces.dashboard.render import as_datetime
from entitle.v1 import entitle_pb2 as pb

WIDTH = 960
LEFT, RIGHT = 150, 12  # the lane labels' column; room for the last marker
TOP = 34  # the axis labels above the lanes
LANE, LANE_GAP = 18, 14
LEGEND = 34  # the legend below the lanes
STOPS = {pb.CLOCK_STATE_MET: "met", pb.CLOCK_STATE_MET_LATE: "met-late",
         pb.CLOCK_STATE_CANCELLED: "cancelled"}
STOP_WORDS = {"met": "met", "met-late": "met late", "cancelled": "cancelled"}
SEGMENT_WORDS = {"running": "running", "paused": "paused", "breached": "running, breached",
                 "paused-breached": "paused, already breached"}
# A grid step is the first of these that leaves at most MAX_GRID lines on the axis.
GRID_STEPS = tuple(timedelta(minutes=m) for m in
                   (15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080, 20160, 43200))
MAX_GRID = 8
# The legend: (what is drawn, its words), laid out left to right by legend().
LEGEND_KEYS = (("seg running", "running"), ("seg paused", "paused"),
               ("seg breached", "breached"), ("seg paused-breached", "paused, breached"),
               ("due", "due time"), ("breach", "breach"), ("met", "met"),
               ("met-late", "met late"), ("cancelled", "cancelled"), ("now", "now"))
KEY_WIDTH, CHAR_WIDTH = 40, 6.4  # a key's swatch and gaps; a legend character at 12 px


@dataclass(frozen=True)
class Segment:
    """A stretch of one clock in one state: running, paused, breached or paused-breached."""

    state: str
    begin: datetime
    end: datetime | None  # None: still going at the page's instant
    x0: float
    x1: float

    @property
    def words(self) -> str:
        return SEGMENT_WORDS[self.state]


@dataclass(frozen=True)
class Mark:
    """An instant on a lane (due, breach, stop) or on the axis (grid lines, events, now)."""

    x: float
    at: datetime
    label: str  # due, breached, met, met late, cancelled; an event's type; a grid time
    kind: str = ""  # a stop's kind (met, met-late, cancelled); a grid time's (time, day)


@dataclass(frozen=True)
class Lane:
    label: str  # "first_response", "next_response #2"
    state: str  # the clock's state now (a STOPS value, running, paused, breached, inactive)
    y: float
    segments: tuple[Segment, ...]
    due: Mark | None
    breach: Mark | None
    stop: Mark | None


@dataclass(frozen=True)
class Timeline:
    width: int
    height: int
    left: int
    lanes: tuple[Lane, ...]
    grid: tuple[Mark, ...]
    ticks: tuple[Mark, ...]  # the ticket's events
    now: Mark
    axis_y: float
    legend_y: float
    start: datetime
    end: datetime
    legend: tuple[tuple[float, str, str], ...] = ()  # (x, what is drawn, its words)


def sla_timeline(sla: pb.TicketSla, events) -> Timeline | None:
    """Each clock as a lane on one time axis from creation to now (or the last due time), and
    the ticket's events as ticks; None without clocks."""
    start, as_of = as_datetime(sla.created_at), as_datetime(sla.as_of)
    if start is None or as_of is None or not sla.clocks:
        return None
    dues = [d for d in (as_datetime(c.due_at) for c in sla.clocks) if d is not None]
    end = max([as_of, start + timedelta(minutes=1), *dues])
    span = (end - start).total_seconds()
    plot = WIDTH - LEFT - RIGHT

    def x(at: datetime) -> float:
        return round(LEFT + plot * (at - start).total_seconds() / span, 1)

    def mark(at: datetime | None, label: str, kind: str = "") -> Mark | None:
        return None if at is None else Mark(x(at), at, label, kind)

    lanes = []
    for i, c in enumerate(sla.clocks):
        stopped = as_datetime(c.stopped_at)
        kind = STOPS.get(c.state, "")
        lanes.append(Lane(
            label=c.metric + (f" #{c.cycle}" if c.cycle else ""),
            state=kind or pb.ClockState.Name(c.state).removeprefix("CLOCK_STATE_").lower(),
            y=TOP + i * (LANE + LANE_GAP),
            segments=tuple(Segment(state, a, b, x(a), x(b or as_of))
                           for state, a, b in clock_segments(c, as_of)),
            due=mark(as_datetime(c.due_at), "due"),
            breach=mark(as_datetime(c.breached_at), "breached"),
            stop=mark(stopped, STOP_WORDS.get(kind, ""), kind) if kind else None,
        ))
    ticks = tuple(Mark(x(e.at), e.at, e.type.replace("_", " ")
                       + (f" → {e.status}" if e.status else "")
                       + (f" → {e.priority}" if e.priority else ""))
                  for e in events if start <= e.at <= end)
    lanes_end = TOP + len(lanes) * (LANE + LANE_GAP)
    return Timeline(WIDTH, lanes_end + LEGEND, LEFT, tuple(lanes), _grid(start, end, x), ticks,
                    Mark(x(as_of), as_of, "now"), TOP - 6, lanes_end + 12, start, end, _legend())


def _legend() -> tuple[tuple[float, str, str], ...]:
    """LEGEND_KEYS with their x, each after the one before."""
    out, at = [], 0.0
    for drawn, words in LEGEND_KEYS:
        out.append((round(at, 1), drawn, words))
        at += KEY_WIDTH + CHAR_WIDTH * len(words)
    return tuple(out)


def clock_segments(c: pb.Target, as_of: datetime,
                   ) -> list[tuple[str, datetime, datetime | None]]:
    """(state, begin, end) of one clock from its start to its stop (or `as_of`, end None):
    running between its pauses, paused in them; from its breach on, running is `breached`
    and paused `paused-breached`. An inactive clock has none."""
    begin = as_datetime(c.started_at)
    if begin is None or c.state == pb.CLOCK_STATE_INACTIVE:
        return []
    stop = as_datetime(c.stopped_at)
    until = stop or as_of
    spans: list[tuple[str, datetime, datetime]] = []
    at = begin
    for p in c.pauses:
        a, b = as_datetime(p.start), as_datetime(p.end) or until
        if a > at:
            spans.append(("running", at, a))
        spans.append(("paused", a, b))
        at = max(at, b)
    if at < until or not spans:
        spans.append(("running", at, until))
    breached = as_datetime(c.breached_at)
    out: list[tuple[str, datetime, datetime | None]] = []
    for state, a, b in spans:
        if breached is not None and a < breached < b:  # the breach splits it
            out.append((state, a, breached))
            a = breached
        if breached is not None and a >= breached:
            state = "breached" if state == "running" else "paused-breached"
        out.append((state, a, b))
    if stop is None and out:  # still going: the last one ends now, not at as_of
        state, a, _ = out[-1]
        out[-1] = (state, a, None)
    return out


def _grid(start: datetime, end: datetime, x) -> tuple[Mark, ...]:
    """Round UTC instants between start and end, at most MAX_GRID of them (the page's script
    shows them in the viewer's zone)."""
    step = next((s for s in GRID_STEPS if (end - start) / s <= MAX_GRID), GRID_STEPS[-1])
    epoch = datetime(1970, 1, 5, tzinfo=UTC)  # a Monday: week steps fall on Mondays
    at = epoch + -(-(start - epoch) // step) * step
    out = []
    while at <= end:
        daily = step >= timedelta(days=1)
        out.append(Mark(x(at), at, at.strftime("%b %d" if daily else "%H:%M"),
                        "day" if daily else "time"))
        at += step
    return tuple(out)
