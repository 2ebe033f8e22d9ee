"""Compiled policy: the only shapes evaluation ever sees (never raw YAML)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from types import MappingProxyType
from typing import Literal

PRIORITIES: tuple[str, ...] = ("low", "medium", "high", "urgent")
METRICS: tuple[str, ...] = ("first_response", "next_response", "resolution")
WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

PlanType = Literal["unlimited", "per_period", "pack"]
Unit = Literal["incidents", "hours", "days"]
Reset = Literal["weekly", "monthly", "quarterly", "yearly"]
Alignment = Literal["calendar", "anniversary"]
Exhausted = Literal["reject", "overage"]
Clock = Literal["business", "calendar"]


def frozen_map(d: Mapping | None = None) -> Mapping:
    """Read-only view so a compiled snapshot cannot be mutated by evaluation."""
    return MappingProxyType(dict(d or {}))


@dataclass(frozen=True)
class Source:
    """Where a compiled object was declared, for messages that point at YAML."""

    path: str
    line: int
    col: int

    @classmethod
    def lazy(cls, path: str, where: Callable[[], tuple[int, int]]) -> Source:
        """A Source whose line:col come from `where()` when first read (locating is costly)."""
        self = object.__new__(cls)
        self.__dict__.update(path=path, _where=where)
        return self

    def __getattr__(self, name: str) -> int:
        if name not in ("line", "col") or "_where" not in self.__dict__:
            raise AttributeError(name)
        where = self.__dict__.pop("_where")
        self.__dict__["line"], self.__dict__["col"] = where()
        return self.__dict__[name]

    def __getstate__(self) -> dict:
        return {"path": self.path, "line": self.line, "col": self.col}

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}"


@dataclass(frozen=True)
class Calendar:
    """Business hours: local working intervals per weekday plus holidays, in one IANA zone."""

    id: str
    tz: str
    # Seven entries, Monday first; each a sorted tuple of non-overlapping [start, end)
    # local minute-of-day pairs, 0 <= start < end <= 1440.
    week: tuple[tuple[tuple[int, int], ...], ...]
    holidays: frozenset[date] = frozenset()
    yearly_holidays: frozenset[tuple[int, int]] = frozenset()  # (month, day)
    source: Source | None = None

    def is_holiday(self, day: date) -> bool:
        return day in self.holidays or (day.month, day.day) in self.yearly_holidays


@dataclass(frozen=True)
class TargetSpec:
    """One SLA target: a metric to meet within `minutes` of business or calendar time."""

    metric: str
    minutes: float
    clock: Clock
    calendar_id: str | None = None  # set when clock == "business"


@dataclass(frozen=True)
class Band:
    """Inclusive numeric band; a missing bound is open."""

    min: float | None = None
    max: float | None = None


@dataclass(frozen=True)
class Condition:
    """What an SLA rule requires of a ticket; every present part must hold (AND)."""

    products: frozenset[str] | None = None
    subject_keywords: tuple[str, ...] | None = None  # any keyword, case-insensitive
    bands: Mapping[str, Band] = field(default_factory=frozen_map)
    values: Mapping[str, frozenset[str]] = field(default_factory=frozen_map)

    @property
    def is_catch_all(self) -> bool:
        return (
            self.products is None
            and self.subject_keywords is None
            and not self.bands
            and not self.values
        )


@dataclass(frozen=True)
class SlaRule:
    name: str
    when: Condition
    targets: Mapping[str, tuple[TargetSpec, ...]]  # priority -> targets
    source: Source | None = None


@dataclass(frozen=True)
class Sla:
    id: str
    calendar_id: str | None
    rules: tuple[SlaRule, ...]  # ordered, first match wins
    default: Mapping[str, tuple[TargetSpec, ...]]  # used when no rule matches
    source: Source | None = None
    pause_on: frozenset[str] = frozenset()  # lower-cased statuses that pause every clock
    # metric -> statuses pausing that metric instead of `pause_on` (may be empty: never paused)
    pause_on_by_metric: Mapping[str, frozenset[str]] = field(default_factory=frozen_map)
    warn_at: tuple[int, ...] = ()  # warning percents of a target, ascending; 100 is the breach

    def pause_statuses(self, metric: str) -> frozenset[str]:
        """Statuses in which `metric`'s clock is paused."""
        return self.pause_on_by_metric.get(metric, self.pause_on)


@dataclass(frozen=True)
class Plan:
    id: str
    type: PlanType
    unit: Unit
    limit: float | None  # None for unlimited
    reset: Reset | None  # only for per_period
    alignment: Alignment
    when_exhausted: Exhausted
    sla_id: str
    usage_thresholds: tuple[int, ...] = ()  # percents, ascending
    expiry_days: tuple[int, ...] = ()  # days before end, descending
    discontinued: date | bool | None = None
    source: Source | None = None


@dataclass(frozen=True)
class Contract:
    id: str
    customer: str
    plan_id: str
    products: frozenset[str] | None  # None covers every product
    start: date  # local date in tz; active from its midnight
    end: date | None  # exclusive local date; None is open-ended
    tz: str
    start_at: datetime  # UTC instant of start
    end_at: datetime | None  # UTC instant of end
    owner: str | None = None
    notify: tuple[str, ...] = ()
    precedence: int | None = None
    template_id: str | None = None
    suspended: bool = False
    source: Source | None = None


@dataclass(frozen=True)
class Policy:
    """A validated, compiled bundle; `revision` is a content hash of its sources."""

    revision: str
    calendars: Mapping[str, Calendar]
    slas: Mapping[str, Sla]
    plans: Mapping[str, Plan]
    contracts: Mapping[str, Contract]
    by_customer: Mapping[str, tuple[Contract, ...]]
