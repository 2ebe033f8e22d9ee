"""Partial comparison of an expected decision with an actual one (policy test suites)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime

TOLERANCE = 1e-6


def _instant(value: object) -> datetime | None:
    if isinstance(value, str) and "T" in value:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        return parsed if parsed.tzinfo else None
    return None


def _same(expected: object, actual: object) -> bool:
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected is actual
    if isinstance(expected, int | float) and isinstance(actual, int | float):
        return math.isclose(expected, actual, rel_tol=TOLERANCE, abs_tol=TOLERANCE)
    e, a = _instant(expected), _instant(actual)
    if e is not None and a is not None:
        return e == a
    return expected == actual


def mismatches(expected: object, actual: object, path: str = "") -> list[str]:
    """Differences, one line each; only what `expected` writes is compared.

    Mappings compare key by key, lists element by element, except `warnings`, where each
    expected string must occur in some actual warning; instants compare as instants.
    """
    where = path or "decision"
    if isinstance(expected, Mapping):
        if not isinstance(actual, Mapping):
            return [f"{where}: expected {_show(expected)}, got {_show(actual)}"]
        out: list[str] = []
        for key, value in expected.items():
            sub = f"{path}.{key}" if path else str(key)
            if key not in actual or (actual[key] is None and value is not None):
                out.append(f"{sub}: expected {_show(value)}, got nothing")
            elif key == "warnings" and isinstance(value, list):
                out += _warnings(sub, value, actual[key])
            else:
                out += mismatches(value, actual[key], sub)
        return out
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(expected) != len(actual):
            return [f"{where}: expected {_show(expected)}, got {_show(actual)}"]
        out = []
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            out += mismatches(e, a, f"{path}[{i}]")
        return out
    if not _same(expected, actual):
        return [f"{where}: expected {_show(expected)}, got {_show(actual)}"]
    return []


def _warnings(where: str, expected: list, actual: object) -> list[str]:
    actual = actual if isinstance(actual, list) else []
    if not expected and actual:
        return [f"{where}: expected none, got {_show(actual)}"]
    return [
        f"{where}: expected a warning containing {_show(e)}, got {_show(actual)}"
        for e in expected
        if not any(str(e) in str(a) for a in actual)
    ]


def _show(value: object) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
