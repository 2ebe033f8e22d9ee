"""Pages from templates: Jinja2 with autoescape on, and the few filters the templates share."""

from __future__ import annotations

import os
from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from entitle.engine.durations import format_minutes
from entitle.engine.model import Sla, Source, TargetSpec
from entitle.server.service.wire import instant
from entitle.v1 import entitle_pb2 as pb


def as_datetime(value: datetime | Timestamp | None) -> datetime | None:
    """An aware UTC datetime from either form; None (or an unset Timestamp) stays None."""
    if value is None:
        return None
    if isinstance(value, Timestamp):
        if value.seconds == 0 and value.nanos == 0:
            return None
        return instant(value, "timestamp")
    return value.astimezone(UTC)


def iso(value: datetime | Timestamp | None) -> str:
    """`2026-06-15T08:00:00Z`, what the page's script reads; empty for None."""
    at = as_datetime(value)
    return "" if at is None else at.strftime("%Y-%m-%dT%H:%M:%SZ")


def utc(value: datetime | Timestamp | None, missing: str = "—") -> str:
    """`2026-06-15 08:00 UTC`, what a page shows before its script localizes it."""
    at = as_datetime(value)
    return missing if at is None else at.strftime("%Y-%m-%d %H:%M UTC")


def when(value: datetime | Timestamp | None, missing: str = "—", *, day: bool = False) -> Markup:
    """`<time>` in UTC; the page's script shows it in the viewer's zone, UTC on hover.
    `day`: the date only (periods, terms), still converted to the viewer's zone."""
    at = as_datetime(value)
    if at is None:
        return Markup(escape(missing))
    text = utc(at)
    shown = at.strftime("%Y-%m-%d") if day else text
    kind = ' data-day=""' if day else ""
    return Markup(f'<time datetime="{iso(at)}" title="{text}"{kind}>{shown}</time>')


def source(src: Source | None, root: str) -> str:
    """`contracts/acme.yaml:12`: where a policy object was declared, relative to the bundle."""
    if src is None:
        return "—"
    path, top = os.path.abspath(src.path), os.path.abspath(root)
    if os.path.commonpath((path, top)) == top:
        path = os.path.relpath(path, top)
    return f"{path}:{src.line}"


def number(value: float | None) -> str:
    """3 for 3.0, 2.5 for 2.5, up to two decimals; a dash for None."""
    if value is None:
        return "—"
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.2f}".rstrip("0").rstrip(".")


def alert_kind(value: int) -> str:
    """`usage threshold` for ALERT_KIND_USAGE_THRESHOLD."""
    return pb.AlertKind.Name(value).removeprefix("ALERT_KIND_").lower().replace("_", " ")


def clock_state(value: int) -> str:
    """`met late` for CLOCK_STATE_MET_LATE."""
    return pb.ClockState.Name(value).removeprefix("CLOCK_STATE_").lower().replace("_", " ")


def reason(value: int) -> str:
    """`QUOTA_EXHAUSTED` for COVERAGE_REASON_QUOTA_EXHAUSTED."""
    return pb.CoverageReason.Name(value).removeprefix("COVERAGE_REASON_")


def sla_rows(sla: Sla) -> list[tuple[str, str, tuple[TargetSpec, ...]]]:
    """(rule, priority, targets) of an SLA: its rules in order, then its default."""
    rows = [(rule.name, p, specs) for rule in sla.rules for p, specs in rule.targets.items()]
    return rows + [("default", p, specs) for p, specs in sla.default.items()]


def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("entitle.server.faces.dashboard", "templates"),
        autoescape=select_autoescape(("html",), default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(when=when, iso=iso, utc=utc, number=number, alert_kind=alert_kind,
                       reason=reason, clock_state=clock_state, minutes=format_minutes)
    env.globals.update(sla_rows=sla_rows)
    return env
