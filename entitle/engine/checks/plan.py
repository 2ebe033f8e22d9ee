"""Semantic checks of a Plan: alert thresholds."""

from __future__ import annotations

from entitle.engine.diagnostics import Diagnostic
from entitle.engine.load import Document
from entitle.engine.wording import shown


def alert_thresholds(doc: Document) -> list[Diagnostic]:
    """Backstop for plan.schema.json: usage percents in 1..100, expiry days >= 1, no repeats."""
    out = []
    alerts = doc.data.get("alerts") or {}
    checks = {
        "usage_percent": (lambda v: 1 <= v <= 100, "a percentage from 1 to 100"),
        "days_before_expiry": (lambda v: v >= 1 and float(v).is_integer(), "a whole number >= 1"),
    }
    for field, (ok, noun) in checks.items():
        seen: set = set()
        values = alerts.get(field) if isinstance(alerts, dict) else None
        for i, value in enumerate(values if isinstance(values, list) else ()):
            pointer = ("alerts", field, i)
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if not number or not ok(value):
                out.append(doc.diagnostic(
                    pointer, f"alerts.{field}[{i}] must be {noun}, got {shown(value)}; "
                    "change or remove it",
                ))
            elif value in seen:
                out.append(doc.diagnostic(
                    pointer, f"duplicate {shown(value)} in alerts.{field}; list each value once",
                ))
            if number:
                seen.add(value)
    return out
