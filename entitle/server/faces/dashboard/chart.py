"""The contract page's usage chart: bars per period as inline SVG geometry (no chart library)."""

from __future__ import annotations

from dataclasses import dataclass

from entitle.server.service.board import PeriodUsage

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

