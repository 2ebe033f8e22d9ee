"""Hints for mistyped names: the closest known word, the IANA zone a mistyped one means."""

from __future__ import annotations

import difflib
import heapq
import itertools
import re
import zoneinfo
from collections import Counter
from collections.abc import Iterable
from functools import cache, lru_cache


@cache
def iana_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


class Closest:
    """`difflib.get_close_matches(word, choices, n=1, cutoff=0.6)`, fast for many choices and
    many words: a choice's quick_ratio (the multiset bound on its ratio) is one AND and popcount
    of bit sets, only choices whose bound can still win are scored, and answers are kept."""

    CUTOFF = 0.6

    def __init__(self, choices: Iterable[str]):
        words = sorted(set(map(str, choices)))
        counts = [Counter(w) for w in words]
        self._width: dict[str, int] = {}  # most occurrences of a character in one choice
        for count in counts:
            for ch, n in count.items():
                self._width[ch] = max(n, self._width.get(ch, 0))
        self._base = dict(zip(self._width, itertools.accumulate(self._width.values(),
                                                                 initial=0), strict=False))
        self._choices = [(self._bits(c), len(w), w) for w, c in zip(words, counts, strict=True)]
        self._answers: dict[str, str | None] = {}

    def _bits(self, count: Counter) -> int:
        """Bit k of a character's slots is set when it occurs more than k times."""
        bits = 0
        for ch, n in count.items():
            if ch in self._base:
                bits |= ((1 << min(n, self._width[ch])) - 1) << self._base[ch]
        return bits

    def __call__(self, word: str) -> str | None:
        if word not in self._answers:
            self._answers[word] = self._find(word)
        return self._answers[word]

    def _find(self, word: str) -> str | None:
        bits, size = self._bits(Counter(word)), len(word)
        heap = [  # (-bound, choice): the most promising first
            (-2.0 * (bits & other).bit_count() / (size + length) if size + length else -1.0, choice)
            for other, length, choice in self._choices
        ]
        heapq.heapify(heap)
        matcher = difflib.SequenceMatcher()
        matcher.set_seq2(word)
        best: tuple[float, str] | None = None
        while heap and -heap[0][0] >= max(self.CUTOFF, best[0] if best else 0.0):
            choice = heapq.heappop(heap)[1]
            matcher.set_seq1(choice)
            score = matcher.ratio()
            if score >= self.CUTOFF and (best is None or (score, choice) > best):
                best = (score, choice)  # ties go to the greatest choice, as in difflib
        return best[1] if best else None


@lru_cache(maxsize=64)
def _closest(choices: frozenset[str]) -> Closest:
    return Closest(choices)


def did_you_mean(word: object, choices: Iterable[str]) -> str:
    """'; did you mean X?' for the closest of `choices` (a frozenset is indexed only once)."""
    pool = choices if isinstance(choices, frozenset) else frozenset(map(str, choices))
    return suggestion(_closest(pool)(str(word)))


def suggestion(close: str | None) -> str:
    return f"; did you mean {close!r}?" if close else ""


@cache
def _zone_cities() -> dict[str, dict[str, str]]:
    """Lowercased region ('america', '' for every zone) -> lowercased last part -> zone."""
    out: dict[str, dict[str, str]] = {"": {}}
    for name in sorted(iana_zones(), key=lambda z: (z.count("/"), z), reverse=True):
        region, _, city = name.lower().rpartition("/")
        out.setdefault(region, {})[city] = name
        out[""][city] = name  # the fewest parts win: America/Indianapolis, not .../Indiana/...
    return out


def _initials(city: str) -> str:
    parts = re.split(r"[_-]", city)
    return "".join(p[:1] for p in parts) if len(parts) > 1 else ""


@cache
def _zones_by_lower() -> dict[str, str]:
    return {z.lower(): z for z in iana_zones()}


def zone_suggestion(value: str) -> str | None:
    """The zone a mistyped one probably means: the same in another case or with spaces, else
    a city of the same region by initials (America/NY) or spelling, else any zone's city."""
    key = value.strip().replace(" ", "_").lower()
    if key in _zones_by_lower():
        return _zones_by_lower()[key]
    cities = _zone_cities()
    region, _, city = key.rpartition("/")
    same = cities.get(region) if region else None
    if same:
        abbreviated = sorted(z for c, z in same.items() if _initials(c) == city)
        close = abbreviated[0] if abbreviated else same.get(_closest(frozenset(same))(city) or "")
        if close:
            return close
    close = _closest(frozenset(cities[""]))(city)
    return cities[""][close] if close else _closest(iana_zones())(value)
