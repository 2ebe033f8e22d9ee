"""The contract page's usage chart: bars per period as inline SVG geometry (no chart library)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from entitle.server.service.board import PeriodUsage
from entitle.v1 import entitle_pb2 as pb

WIDTH, HEIGHT = 600, 160
TOP, BOTTOM = 16, 28  # room for the limit label and the period labels
MAX_BAR = 40.0


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str  # the period's start, local to nobody: YYYY-MM-DD in UTC
    used: float
    over: bool  # more used than the limit (overage)
    current: bool


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    bars: tuple[Bar, ...]
    limit_y: float | None  # where the limit line is drawn; None for unlimited plans
    limit: float | None
    baseline: float


def usage_chart(history: list[PeriodUsage]) -> Chart | None:
    """Bars scaled to the larger of the limit and the most used; None without periods."""
    if not history:
        return None
    limit = history[-1].limit
    top = max([p.used for p in history] + [limit or 0.0, 1.0])
    plot = HEIGHT - TOP - BOTTOM
    slot = WIDTH / len(history)
    width = min(MAX_BAR, max(4.0, slot * 0.7))
    bars = []
    for i, p in enumerate(history):
        h = plot * p.used / top
        bars.append(Bar(
            x=round(i * slot + (slot - width) / 2, 1), y=round(TOP + plot - h, 1),
            width=round(width, 1), height=round(h, 1), label=p.start.strftime("%Y-%m-%d"),
            used=p.used, over=p.limit is not None and p.used > p.limit, current=p.current,
        ))
    limit_y = None if limit is None else round(TOP + plot - plot * limit / top, 1)
    return Chart(WIDTH, HEIGHT, tuple(bars), limit_y, limit, TOP + plot)


# -- a ticket's SLA timeline ---------------------------------------------------------------------
LANE, LANE_GAP, LEFT, AXIS = 18, 10, 150, 26
STATE_CLASS = {
    pb.CLOCK_STATE_RUNNING: "running", pb.CLOCK_STATE_PAUSED: "paused",
    pb.CLOCK_STATE_MET: "met", pb.CLOCK_STATE_MET_LATE: "met-late",
    pb.CLOCK_STATE_BREACHED: "breached", pb.CLOCK_STATE_CANCELLED: "cancelled",
    pb.CLOCK_STATE_INACTIVE: "inactive",
}


@dataclass(frozen=True)
class Lane:
    label: str  # "first_response", "next_response #2"
    state: str  # a STATE_CLASS value
    y: float
    x0: float
    x1: float
    due_x: float | None
    breach_x: float | None


@dataclass(frozen=True)
class Tick:
    x: float
    label: str  # the event's type (and status or priority)


@dataclass(frozen=True)
class Timeline:
    width: int
    height: int
    lanes: tuple[Lane, ...]
    ticks: tuple[Tick, ...]
    axis_y: float
    start_label: str
    end_label: str


def _seconds(ts) -> float | None:
    """A Timestamp as epoch seconds; None when unset."""
    if ts is None or (ts.seconds == 0 and ts.nanos == 0):
        return None
    return ts.seconds + ts.nanos / 1e9


def sla_timeline(sla: pb.TicketSla, events) -> Timeline | None:
    """Each clock as a lane from its start to its stop (or now), with its due and breach
    instants, and the ticket's events as ticks, on one time axis from creation to now."""
    start = _seconds(sla.created_at)
    end = _seconds(sla.as_of)
    if start is None or end is None or not sla.clocks:
        return None
    end = max([end, start + 60, *(_seconds(c.due_at) or end for c in sla.clocks)])
    span = end - start
    plot = WIDTH - LEFT - 10

    def x(seconds: float | None) -> float | None:
        if seconds is None:
            return None
        return round(LEFT + plot * (seconds - start) / span, 1)

    lanes = []
    for i, c in enumerate(sla.clocks):
        label = c.metric + (f" #{c.cycle}" if c.cycle else "")
        began = _seconds(c.started_at) or start
        stopped = _seconds(c.stopped_at) or _seconds(sla.as_of)
        lanes.append(Lane(label, STATE_CLASS.get(c.state, "running"),
                          AXIS + i * (LANE + LANE_GAP), x(began), x(stopped),
                          x(_seconds(c.due_at)), x(_seconds(c.breached_at))))
    ticks = tuple(
        Tick(x(e.at.timestamp()), e.type + (f" {e.status}" if e.status else "")
             + (f" {e.priority}" if e.priority else ""))
        for e in events if start <= e.at.timestamp() <= end
    )
    height = AXIS + len(lanes) * (LANE + LANE_GAP) + 20
    return Timeline(WIDTH, height, tuple(lanes), ticks, AXIS - 8,
                    sla.created_at.ToDatetime().strftime("%Y-%m-%d %H:%M UTC"),
                    datetime.fromtimestamp(end, UTC).strftime("%Y-%m-%d %H:%M UTC"))
