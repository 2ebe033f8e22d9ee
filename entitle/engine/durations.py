"""Human durations (`1h30m`) as minutes, the unit all time math uses."""

from __future__ import annotations

import re

_UNIT_MINUTES = {"w": 7 * 24 * 60, "d": 24 * 60, "h": 60, "m": 1, "s": 1 / 60}
_PART = r"(?:\d+(?:\.\d+)?|\.\d+)"
DURATION_PATTERN = rf"^(?:{_PART}w)?(?:{_PART}d)?(?:{_PART}h)?(?:{_PART}m)?(?:{_PART}s)?$"
_DURATION_RE = re.compile(DURATION_PATTERN)
_PART_RE = re.compile(rf"({_PART})([wdhms])")


def parse_duration(text: str) -> float:
    """Minutes in `text`; raises ValueError with a hint when it is not a duration."""
    s = text.strip()
    if not s or not _DURATION_RE.match(s):
        raise ValueError(
            f"{text!r} is not a duration; write e.g. 30m, 4h, 1h30m, 2d or 1w "
            "(units w, d, h, m, s, largest first)"
        )
    return sum(float(n) * _UNIT_MINUTES[u] for n, u in _PART_RE.findall(s))


def format_minutes(minutes: float) -> str:
    """Inverse of parse_duration for messages and reports (`90.0` -> `1h30m`)."""
    if minutes == 0:
        return "0m"
    out, rest = [], minutes
    for unit in ("d", "h", "m"):
        size = _UNIT_MINUTES[unit]
        n = int(rest // size)
        if n:
            out.append(f"{n}{unit}")
            rest -= n * size
    if rest > 1e-9:
        secs = round(rest * 60, 3)
        out.append(f"{secs:g}s")
    return "".join(out)
