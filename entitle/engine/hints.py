"""Hints for mistyped names: the closest known word, the IANA zone a mistyped one means."""

from __future__ import annotations

import bisect
import difflib
import heapq
import itertools
import re
import zoneinfo
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import cache, lru_cache
from importlib import resources


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


class Meant:
    """The name a mistyped one most likely means: the same in another case (`SLA`: `Sla`),
    else the closest by spelling (`Closest`), else one it starts with at a word break
    (`reset_frequncy`: `reset`), else the shortest one it begins (`gold`: `gold-support`)."""

    MIN_PREFIX = 3

    def __init__(self, choices: Iterable[str]):
        words = sorted(set(map(str, choices)))
        self.spelling = Closest(words)
        self._sorted = words
        self._set = frozenset(words)
        self._lower: dict[str, str] = {}
        for w in words:
            self._lower.setdefault(w.lower(), w)

    def __call__(self, word: str) -> str | None:
        same = self._lower.get(word.lower()) if word not in self._set else None
        return same or self.spelling(word) or self._prefix(word)

    def _prefix(self, word: str) -> str | None:
        for end in range(len(word) - 1, self.MIN_PREFIX - 1, -1):  # the longest choice first
            if word[end] in "_-. " and word[:end] in self._set:
                return word[:end]
        if len(word) < self.MIN_PREFIX:
            return None
        at = bisect.bisect_left(self._sorted, word)
        longer = list(itertools.takewhile(lambda w: w.startswith(word), self._sorted[at:at + 64]))
        return min(longer, key=lambda w: (len(w), w)) if longer else None


@lru_cache(maxsize=64)
def _meant(choices: frozenset[str]) -> Meant:
    return Meant(choices)


def _closest(choices: frozenset[str]) -> Closest:
    return _meant(choices).spelling


def meant(word: object, choices: Iterable[str]) -> str | None:
    """What `word` most likely means among `choices` (see `Meant`; a frozenset is indexed
    only once)."""
    pool = choices if isinstance(choices, frozenset) else frozenset(map(str, choices))
    return _meant(pool)(str(word))


def did_you_mean(word: object, choices: Iterable[str]) -> str:
    """'; did you mean X?' for what `word` most likely means among `choices`."""
    return suggestion(meant(word, choices))


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


# Abbreviations are read from tzdata itself: what each zone's clocks were called mid-January
# and mid-July of each year in this window (a fixed window: the engine reads no clock).
_ABBREVIATION_YEARS = range(2015, 2036)
_ABBREVIATION = re.compile(r"[A-Z]{2,6}")
_SHOWN_ZONES = 3


@cache
def _zones_by_abbreviation() -> dict[str, frozenset[str]]:
    out: dict[str, set[str]] = {}
    for name in iana_zones():
        zone = zoneinfo.ZoneInfo(name)
        for year in _ABBREVIATION_YEARS:
            for month in (1, 7):
                at = datetime(year, month, 15, 12, tzinfo=UTC).astimezone(zone)
                out.setdefault(str(at.tzname()), set()).add(name)
    return {abbreviation: frozenset(zones) for abbreviation, zones in out.items()}


@cache
def _zone_rank() -> dict[str, tuple[int, int]]:
    """Zones tzdata lists as representative now (zonenow.tab) first, then its canonical zones
    (zone1970.tab), those shared by more countries first; other names (links) are not ranked."""
    rank: dict[str, tuple[int, int]] = {}
    for tier, table in enumerate(("zonenow.tab", "zone1970.tab")):
        try:
            text = resources.files("tzdata.zoneinfo").joinpath(table).read_text()
        except (FileNotFoundError, ModuleNotFoundError):
            continue
        for line in text.splitlines():
            fields = line.split("\t")
            if line.startswith("#") or len(fields) < 3:
                continue
            rank.setdefault(fields[2], (tier, -len(fields[0].split(","))))
    return rank


def zone_abbreviation(value: str) -> str | None:
    """For `CEST`, `PST`: say it is an abbreviation and name IANA zones that use it (None: not
    one). A zone named like an abbreviation (`EST`, `CET`) is a zone and never gets here."""
    if not _ABBREVIATION.fullmatch(value.strip()):
        return None
    users = _zones_by_abbreviation().get(value.strip(), frozenset())
    rank = _zone_rank()
    ranked = sorted((z for z in users if z in rank), key=lambda z: (rank[z], z))
    if not ranked:
        return None
    shown = _one_of_zones(ranked[:_SHOWN_ZONES])
    more = f" ({len(ranked)} zones use {value.strip()})" if len(ranked) > _SHOWN_ZONES else ""
    return ("that is an abbreviation (an offset, not a place's daylight-saving rules); write "
            f"the IANA zone of the place, e.g. {shown}{more}")


def _one_of_zones(zones: list[str]) -> str:
    return zones[0] if len(zones) == 1 else f"{', '.join(zones[:-1])} or {zones[-1]}"
