"""How values and fields are written in policy error messages (YAML words, not Python)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from entitle.engine.load import clip


def shown(value: object) -> str:
    """A value as the policy author wrote it (YAML words, not Python reprs)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "nothing"
    if isinstance(value, str):
        return repr(clip(value))
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return str(value)


def label_of(pointer: tuple) -> str:
    """`rules[0].targets.high` for a pointer; names the field an error is about."""
    out = ""
    for part in pointer:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "the document"


def one_of(words: Iterable[object], conjunction: str = "or") -> str:
    items = [str(w) for w in words]
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} {conjunction} {items[-1]}"


def article(word: str) -> str:
    """'an' before a vowel sound: 'an 8-hour', 'an 11-hour', 'a 7.5-hour', 'an unlimited'."""
    if word[:1].isdigit():
        return "an" if word.startswith("8") or re.match(r"1[18](?!\d)", word) else "a"
    return "an" if word[:1].lower() in "aeiou" else "a"
