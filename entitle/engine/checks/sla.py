"""Semantic checks of an Sla: target durations and clocks, rules that never match."""

from __future__ import annotations

import itertools
import re
from math import inf

from entitle.engine.compile import _condition as _rule_condition
from entitle.engine.compile import interval
from entitle.engine.diagnostics import Diagnostic
from entitle.engine.durations import parse_duration
from entitle.engine.load import Document
from entitle.engine.wording import article, label_of, one_of, shown


def sla_targets(doc: Document, calendars: dict[str, Document] | None = None) -> list[Diagnostic]:
    """Each target's duration, and business time only with a calendar: a `clock: business`
    for the whole SLA without one is one error at that line, not one per target it sets."""
    out = []
    data = doc.data
    default_clock = data.get("clock") or ("business" if data.get("calendar") else "calendar")
    if default_clock == "business" and not data.get("calendar"):
        out.append(doc.diagnostic(
            ("clock",), "`clock: business` needs the SLA's `calendar` (business time is "
            "counted on a calendar's working hours); add `calendar: <id>` or write "
            "`clock: calendar`",
        ))
    blocks = [(("targets",), data.get("targets") or {})]
    blocks += [
        (("rules", i, "targets"), r.get("targets") or {})
        for i, r in enumerate(data.get("rules") or ())
    ]
    for prefix, targets in blocks:
        for priority, metrics in targets.items():
            for metric, value in (metrics or {}).items():
                pointer = (*prefix, priority, metric)
                clock, own = default_clock, False
                if isinstance(value, dict):
                    own = "clock" in value
                    clock = value.get("clock", clock)
                    pointer, value = (*pointer, "within"), value.get("within")
                try:
                    parse_duration(str(value))
                except ValueError as exc:
                    out.append(doc.diagnostic(pointer, str(exc)))
                    continue
                if clock == "business" and not data.get("calendar"):
                    if own:  # else said once, at the SLA's `clock:`
                        out.append(doc.diagnostic(
                            (*pointer[:-1], "clock"), "a business-time target needs the SLA's "
                            "`calendar`; add one or use {within: ..., clock: calendar}",
                        ))
                elif clock == "business":
                    calendar = (calendars or {}).get(data["calendar"])
                    out += _days_in_business_time(doc, pointer, str(value), calendar)
    return out


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?|\.\d+)([wdhms])")


def _working_hours(calendar: Document | None) -> tuple[float, float] | None:
    """(hours of the calendar's usual working day, hours of its working week), or None."""
    hours = (calendar.data.get("hours") if calendar is not None else None) or {}
    days = []
    for intervals in hours.values():
        try:
            days.append(sum(e - s for s, e in map(interval, map(str, intervals or ()))) / 60)
        except ValueError:
            return None
    working = [d for d in days if d > 0]
    if not working:
        return None
    usual = max(set(working), key=lambda d: (working.count(d), d))
    return usual, sum(working)


def _days_in_business_time(doc: Document, pointer: tuple, text: str,
                           calendar: Document | None) -> list[Diagnostic]:
    """`d` and `w` count 24 and 168 working hours; authors usually mean working days/weeks."""
    parts = _DURATION_PART.findall(text.strip())
    if not any(unit in "dw" for _, unit in parts):
        return []
    known = _working_hours(calendar)
    day, week = known or (8.0, 40.0)
    if day >= 24:
        return []  # a round-the-clock desk: 24 working hours is one working day
    hours = parse_duration(text) / 60
    meant, words = 0.0, []
    for number, unit in parts:
        n = float(number)
        if unit == "w":
            meant += n * week
            words.append(f"{n:g} working week{'s' if n != 1 else ''} of {week:g} hours")
        elif unit == "d":
            meant += n * day
            count = "one" if n == 1 else f"{n:g}"
            words.append(f"{count} {day:g}-hour working day{'s' if n != 1 else ''}")
        else:
            meant += n * {"h": 1, "m": 1 / 60, "s": 1 / 3600}[unit]
            words.append(f"{number}{unit}")
    a = article(f"{day:g}")
    on = f"{calendar.data['id']!r}, {a}" if known and calendar else a
    return [doc.diagnostic(
        pointer,
        f"{text!r} in business time is {hours:g} working hours ({hours / day:g} working days "
        f"on {on} {day:g}-hour calendar); write {meant:g}h for {' plus '.join(words)}, "
        f"or use {{within: {text}, clock: calendar}}",
        severity="warning",
    )]


def _when_key(when: object) -> tuple:
    """A rule's `when` as the engine reads it (compile's Condition), in a comparable form."""
    c = _rule_condition(when if isinstance(when, dict) else None)
    keywords = frozenset(c.subject_keywords) if c.subject_keywords is not None else None
    return c.products, keywords, frozenset(c.bands.items()), frozenset(c.values.items())


def shadowed_rules(doc: Document) -> list[Diagnostic]:
    """Rules that can never be chosen: after a catch-all, or with the `when` of an earlier rule."""
    out = []
    catch_all: str | None = None
    seen: dict[tuple, str] = {}
    for i, rule in enumerate(doc.data.get("rules") or ()):
        name = str(rule.get("name") or f"rule-{i + 1}")
        key = _when_key(rule.get("when"))
        if catch_all is not None:
            out.append(doc.diagnostic(
                ("rules", i), f"rule {name!r} can never match: rule {catch_all!r} before it "
                "matches every ticket; move it above or remove it", severity="warning",
            ))
        elif key in seen:
            out.append(doc.diagnostic(
                ("rules", i), f"rule {name!r} can never match: rule {seen[key]!r} before it has "
                "the same `when`; merge the two or remove this one", severity="warning",
            ))
        if catch_all is None and _rule_condition(rule.get("when") or None).is_catch_all:
            catch_all = name
        seen.setdefault(key, name)
    return out


def empty_bands(doc: Document) -> list[Diagnostic]:
    """A band {min: 100, max: 50} matches no number; the schema cannot compare two values."""
    out = []
    for i, rule in enumerate(doc.data.get("rules") or ()):
        for name, band in ((rule.get("when") or {}).get("attributes") or {}).items():
            if isinstance(band, dict) and band.get("min", -inf) > band.get("max", inf):
                pointer = ("rules", i, "when", "attributes", name)
                out.append(doc.diagnostic(
                    pointer, f"{label_of(pointer)} can never match: min {shown(band['min'])} is "
                    f"above max {shown(band['max'])}; swap them (both bounds are inclusive)",
                ))
    return out


def partial_rule_targets(doc: Document) -> list[Diagnostic]:
    """A rule's targets for a priority replace the default ones for it whole: a metric the
    default gives and the rule leaves out is silently dropped under that rule."""
    out = []
    defaults = doc.data.get("targets") or {}
    for i, rule in enumerate(doc.data.get("rules") or ()):
        name = str(rule.get("name") or f"rule-{i + 1}")
        for priority, metrics in (rule.get("targets") or {}).items():
            missing = [m for m in defaults.get(priority) or {} if m not in (metrics or {})]
            if metrics and missing:
                several = len(missing) > 1
                out.append(doc.diagnostic(
                    ("rules", i, "targets", priority),
                    f"rule {name!r} gives {priority} only {one_of(metrics, 'and')}; "
                    f"{one_of(missing, 'and')} from the default targets "
                    f"{'do' if several else 'does'} not apply under this rule: repeat "
                    f"{'them' if several else 'it'} in the rule if meant",
                    severity="warning",
                ))
    return out


def sla_clock_settings(doc: Document) -> list[Diagnostic]:
    """An Sla's pause statuses and warning percents: warn_at ascending and once each, no
    status listed twice (statuses match after lower-casing, so `Pending` repeats `pending`)."""
    out = []
    warn_at = doc.data.get("warn_at")
    values = warn_at if isinstance(warn_at, list) else []
    for i, (before, value) in enumerate(itertools.pairwise(values), start=1):
        if value == before:
            out.append(doc.diagnostic(
                ("warn_at", i), f"duplicate {shown(value)} in warn_at; list each percent once"))
        elif value < before:
            out.append(doc.diagnostic(
                ("warn_at", i), f"warn_at must be ascending: {shown(value)} comes after "
                f"{shown(before)}; write e.g. [50, 75]"))
    lists = [(("pause_on",), doc.data.get("pause_on"))]
    lists += [(("pause_on_by_metric", metric), statuses)
              for metric, statuses in (doc.data.get("pause_on_by_metric") or {}).items()]
    for pointer, statuses in lists:
        seen: dict[str, object] = {}
        for i, status in enumerate(statuses if isinstance(statuses, list) else ()):
            key = str(status).lower()
            if key in seen:
                out.append(doc.diagnostic(
                    (*pointer, i), f"status {shown(status)} repeats {shown(seen[key])} in "
                    f"{label_of(pointer)} (statuses match after lower-casing); list it once"))
            seen.setdefault(key, status)
    return out
