"""Semantic checks of a Calendar: weekdays and working intervals."""

from __future__ import annotations

import itertools

from entitle.engine.compile import interval
from entitle.engine.diagnostics import Diagnostic
from entitle.engine.load import Document
from entitle.engine.model import WEEKDAYS
from entitle.engine.wording import shown


def calendar_hours(doc: Document) -> list[Diagnostic]:
    out = []
    hours = doc.data.get("hours") or {}
    total = 0
    for day, intervals in hours.items():
        if day not in WEEKDAYS:
            out.append(doc.diagnostic(
                ("hours", day), f"unknown weekday {shown(day)}; use {', '.join(WEEKDAYS)}", key=True
            ))
            continue
        spans = []
        for i, text in enumerate(intervals or ()):
            try:
                start, end = interval(str(text))
                if not (0 <= start < 1440 and 0 < end <= 1440 and start < end):
                    raise ValueError
            except ValueError:
                out.append(doc.diagnostic(
                    ("hours", day, i),
                    f"{text!r} is not a working interval; write \"09:00-17:00\" (start before "
                    "end, 24:00 only as an end)",
                ))
                continue
            spans.append((start, end, i))
        spans.sort()
        for (_s1, e1, i1), (s2, _e2, i2) in itertools.pairwise(spans):
            if s2 < e1:
                out.append(doc.diagnostic(
                    ("hours", day, i2),
                    f"working interval {intervals[i2]!r} overlaps {intervals[i1]!r} on {day}; "
                    "a split shift is two intervals that do not overlap, e.g. "
                    "[\"09:00-12:00\", \"13:00-17:00\"]",
                ))
        total += sum(e - s for s, e, _ in spans)
    if not out and total == 0:
        out.append(doc.diagnostic(
            ("hours",), "the calendar has no working time; business-time targets would never "
            "come due (add intervals such as mon: [\"09:00-17:00\"])"
        ))
    return out
