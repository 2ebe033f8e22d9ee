"""What text entitle accepts from its callers, decided once for every interface and store.

Two kinds of string, so that every store holds what is accepted and answers alike:

- an **identifier** (ids, names, filters, keys, tokens) is one line of printable text: no
  control character (C0 including tab and newline, DEL, C1), no line or paragraph separator
  (U+2028, U+2029), and no bidirectional embedding, override or isolate control (U+202A to
  U+202E, U+2066 to U+2069), which can make one id display as another;
- **free text** (a ticket's subject, a release reason, attribute string values) may hold tab,
  newline and carriage return, but no other C0 or C1 control (NUL above all: PostgreSQL
  cannot store it).

Neither may hold a lone surrogate (it is not Unicode text and encodes to no UTF-8).
Everything else is accepted as it is and compared exactly: other format characters (ZWJ and
ZWNJ are needed by Persian and Indic names and by emoji), private-use and unassigned code
points, and leading, trailing or repeated spaces.
"""

from __future__ import annotations

import re
import unicodedata
from enum import Enum

_SURROGATES = "\ud800-\udfff"
_C1 = "\x7f-\x9f"


class TextKind(Enum):
    """Which characters a string field may hold (see the module docstring)."""

    IDENTIFIER = "identifier"
    FREE_TEXT = "free text"


_IDENTIFIER_FORBIDDEN = re.compile(
    f"[\x00-\x1f{_C1}\u2028\u2029\u202a-\u202e\u2066-\u2069{_SURROGATES}]"
)
_FREE_TEXT_FORBIDDEN = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f{_C1}{_SURROGATES}]")


def text_problem(value: str, kind: TextKind, limit: int) -> str | None:
    """Why `value` is not acceptable text of `kind` at most `limit` characters long, or None."""
    if len(value) > limit:
        return f"is longer than {limit} characters"
    forbidden = _IDENTIFIER_FORBIDDEN if kind is TextKind.IDENTIFIER else _FREE_TEXT_FORBIDDEN
    bad = forbidden.search(value)
    if bad is None:
        return None
    char = bad.group()
    code = ord(char)
    if 0xD800 <= code <= 0xDFFF:
        what = "a lone surrogate"
    elif code < 0x20 or 0x7F <= code <= 0x9F:
        what = "a control character"
    else:
        what = unicodedata.name(char, "a format character").lower()
    rule = (
        "free text may hold tab, newline and carriage return, no other control character"
        if kind is TextKind.FREE_TEXT else "an identifier is one line of printable text"
    )
    return f"contains U+{code:04X} ({what}) at position {bad.start()}: {rule}"
