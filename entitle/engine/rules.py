"""The one place that touches durable-rules: a quiet host, one lock, rulesets that classify.

durable-rules 2.0.28 has sharp edges (see shared notes): its default host starts timer
threads that race callers, its C core is not safe for interleaved callers, session ids
leak unless deleted, ruleset names cannot be reused, and action errors are swallowed.
Everything here exists to contain those: callers see `RuleSet.select_sla_rule` and the
two threshold classifiers, nothing else.
"""

from __future__ import annotations

import functools
import itertools
import math
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence

import durable.engine as _engine
import durable_rules_engine as _core

from entitle.engine.model import Condition, Sla

MAX_THRESHOLDS = 16  # slots in the generic threshold rulesets; the schema allows fewer
# durable-rules' JSON reader rejects exponent notation (`1e+16`, `1e-05`: errors 202/204),
# which Python writes for large and tiny floats. Every number the rules read or compare is
# therefore sent as a whole number of millionths, clamped to +-1e9 units.
SCALE = 1_000_000
LIMIT = 1_000_000_000


class RulesError(RuntimeError):
    """durable-rules failed or an action raised: surfaced instead of swallowed."""


class _QuietHost(_engine.Host):
    """A host without the background dispatch timers (they race callers and burn CPU)."""

    def _run(self) -> None:
        return None


_LOCK = threading.RLock()  # serializes every call into the C core
_HOST: _QuietHost | None = None
_IDS = itertools.count(1)


def _host() -> _QuietHost:
    global _HOST
    with _LOCK:
        if _HOST is None:
            _HOST = _QuietHost()
        return _HOST


def _mark(slot: str):
    """An action that records which rule fired; exactly one parameter (two means async)."""

    def action(c) -> None:
        c.s[slot] = True

    return action


def _register(name: str, rules: Mapping[str, dict]) -> None:
    """Register rules plus an always-true `seen` rule.

    A fact that matches no rule leaves no session behind, and `delete_state` on it frees an
    invalid pointer (measured: the process aborts); with `seen` every fact matches.
    """
    everything = {**rules, "seen": {"ticket": True}}
    definition = {
        name: {
            rule: {"all": [{"m": cond}], "run": _mark(rule)} for rule, cond in everything.items()
        }
    }
    with _LOCK:
        _host().register_rulesets(definition)


def _unregister(name: str) -> None:
    """Free a ruleset's C handle; durable has no public unload."""
    with _LOCK:
        host = _host()
        ruleset = host._ruleset_directory.pop(name, None)
        if ruleset is None:
            return
        host._ruleset_list.remove(ruleset)
        _core.delete_ruleset(ruleset._handle)


def _fired(name: str, message: dict) -> set[str]:
    """Assert `message` as a fact in a fresh session; every matching rule fires."""
    sid = f"e{next(_IDS)}"
    fact = dict(message, sid=sid, id=sid, ticket=True)
    with _LOCK:
        host = _host()
        try:
            state = host.assert_fact(name, fact)
        except Exception as exc:  # the C core reports errors as plain exceptions
            raise RulesError(f"durable-rules failed on ruleset {name}: {exc}") from exc
        finally:
            host.delete_state(name, sid)
    if state.get("exception"):
        raise RulesError(f"rule action failed on ruleset {name}: {state['exception']}")
    return {k for k, v in state.items() if v is True and k[0] == "r" and k[1:].isdigit()}


# --- generic threshold classifiers: one ruleset per process, values in the message ---

_USAGE = "usage_thresholds"
_EXPIRY = "expiry_thresholds"
_generic_ready = False


def _ensure_generic() -> None:
    global _generic_ready
    with _LOCK:
        if _generic_ready:
            return
        _register(
            _USAGE,
            {
                f"r{i}": {
                    "$and": [
                        {"$ex": {f"t{i}": 1}},
                        {"$lt": {"before": {"$m": f"t{i}"}}},
                        {"$gte": {"after": {"$m": f"t{i}"}}},
                    ]
                }
                for i in range(MAX_THRESHOLDS)
            },
        )
        _register(
            _EXPIRY,
            {
                f"r{i}": {"$and": [{"$ex": {f"d{i}": 1}}, {"$lte": {"days_left": {"$m": f"d{i}"}}}]}
                for i in range(MAX_THRESHOLDS)
            },
        )
        _generic_ready = True


def fixed(value: float) -> int:
    """A number as the rules see it: millionths, clamped, so it is never in exponent form."""
    return round(min(max(value, -LIMIT), LIMIT) * SCALE)


def _slots(values: Sequence[int], prefix: str) -> dict:
    if len(values) > MAX_THRESHOLDS:
        raise RulesError(f"at most {MAX_THRESHOLDS} thresholds are supported")
    return {f"{prefix}{i}": fixed(v) for i, v in enumerate(values)}


def crossed_usage_thresholds(
    before_pct: float, after_pct: float, thresholds: Sequence[int]
) -> tuple[int, ...]:
    """Thresholds t with before < t <= after: what one consumption crossed (several at once)."""
    if not thresholds:
        return ()
    return _crossed(float(before_pct), float(after_pct), tuple(thresholds))


def due_expiry_thresholds(days_left: float, thresholds: Sequence[int]) -> tuple[int, ...]:
    """Days-before-expiry thresholds already reached (days_left <= d), largest first."""
    if not thresholds:
        return ()
    # For whole-day thresholds, days_left <= d exactly when ceil(days_left) <= d: a
    # discrete key, so the cache below stays small.
    return _due(math.ceil(days_left), tuple(thresholds))


@functools.lru_cache(maxsize=4096)
def _crossed(before: float, after: float, thresholds: tuple[int, ...]) -> tuple[int, ...]:
    """Cached: the answer is a pure function of the message the rules read."""
    _ensure_generic()
    message = {"before": fixed(before), "after": fixed(after), **_slots(thresholds, "t")}
    fired = _fired(_USAGE, message)
    return tuple(sorted(t for i, t in enumerate(thresholds) if f"r{i}" in fired))


@functools.lru_cache(maxsize=4096)
def _due(days_left: int, thresholds: tuple[int, ...]) -> tuple[int, ...]:
    _ensure_generic()
    fired = _fired(_EXPIRY, {"days_left": fixed(days_left), **_slots(thresholds, "d")})
    return tuple(sorted((d for i, d in enumerate(thresholds) if f"r{i}" in fired), reverse=True))


# --- SLA rule selection: one ruleset per distinct SLA rule list, literals per SLA ---


def _number(value: object) -> int | None:
    """A band attribute as the rules compare it; NaN and non-numbers match no band."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        try:
            number = float(value)
        except OverflowError:  # an int beyond any float
            number = math.inf if value > 0 else -math.inf
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return None if math.isnan(number) else fixed(number)


def _text(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class _SlaProgram:
    """How one SLA's rules read a ticket: which message fields exist and what they mean."""

    def __init__(self, rules: Sequence[Condition]):
        self.keywords: tuple[str, ...] = tuple(
            sorted({k.lower() for c in rules for k in (c.subject_keywords or ())})
        )
        self.bands: tuple[str, ...] = tuple(sorted({a for c in rules for a in c.bands}))
        self.values: tuple[str, ...] = tuple(sorted({a for c in rules for a in c.values}))
        self.uses_product = any(c.products is not None for c in rules)
        self.conditions = {f"r{k}": self._condition(c) for k, c in enumerate(rules)}

    def _condition(self, c: Condition) -> dict:
        parts: list[dict] = [{"ticket": True}]
        if c.products is not None:
            parts.append({"$or": [{"product": p} for p in sorted(c.products)]})
        if c.subject_keywords is not None:
            kws = sorted({k.lower() for k in c.subject_keywords})
            parts.append({"$or": [{f"kw{self.keywords.index(k)}": True} for k in kws]})
        for attr, band in sorted(c.bands.items()):
            field = f"n{self.bands.index(attr)}"
            parts.append({"$ex": {field: 1}})
            if band.min is not None:
                parts.append({"$gte": {field: fixed(band.min)}})
            if band.max is not None:
                parts.append({"$lte": {field: fixed(band.max)}})
        for attr, allowed in sorted(c.values.items()):
            field = f"s{self.values.index(attr)}"
            parts.append({"$or": [{field: v} for v in sorted(allowed)]})
        return {"$and": parts} if len(parts) > 1 else parts[0]

    def message(
        self, product: str, subject: str | None, attributes: Mapping[str, object]
    ) -> dict:
        """Exactly the fields the rules read: also the cache key."""
        msg: dict = {"ticket": True}
        if self.uses_product:
            msg["product"] = product
        lowered = (subject or "").lower()
        for i, kw in enumerate(self.keywords):
            msg[f"kw{i}"] = kw in lowered
        for i, attr in enumerate(self.bands):
            n = _number(attributes.get(attr))
            if n is not None:
                msg[f"n{i}"] = n
        for i, attr in enumerate(self.values):
            if attr in attributes and attributes[attr] is not None:
                msg[f"s{i}"] = _text(attributes[attr])
        return msg


class RuleSet:
    """Compiled SLA-selection rules of one policy revision; close() frees them on retirement."""

    def __init__(self, revision: str, cache_size: int):
        self.revision = revision
        self._programs: dict[str, tuple[str, _SlaProgram]] = {}
        self._names: list[str] = []
        self._cache: OrderedDict[tuple, int | None] = OrderedDict()
        self._cache_size = cache_size
        self._cache_lock = threading.Lock()
        self._closed = False
        self._hits = self._misses = self._evaluations = 0

    @classmethod
    def compile(cls, revision: str, slas: Mapping[str, Sla], *, cache_size: int = 10000) -> RuleSet:
        """Register one ruleset per distinct rule list; SLAs without rules need none."""
        self = cls(revision, cache_size)
        by_shape: dict[str, str] = {}
        serial = next(_IDS)
        try:
            for sla_id in sorted(slas):
                conditions = tuple(r.when for r in slas[sla_id].rules)
                if not conditions:
                    continue
                program = _SlaProgram(conditions)
                shape = repr(sorted(program.conditions.items()))
                if shape not in by_shape:
                    name = f"sla_{revision[:12]}_{serial}_{len(by_shape)}"
                    _register(name, program.conditions)
                    self._names.append(name)
                    by_shape[shape] = name
                # Same conditions share a ruleset; each SLA keeps its own field mapping.
                self._programs[sla_id] = (by_shape[shape], program)
        except Exception:
            self.close()
            raise
        return self

    def select_sla_rule(
        self,
        sla_id: str,
        product: str,
        subject: str | None,
        attributes: Mapping[str, object],
    ) -> int | None:
        """Index of the first matching rule of the SLA, or None for its default targets."""
        if self._closed:
            raise RulesError(f"rule set of revision {self.revision} is closed")
        entry = self._programs.get(sla_id)
        if entry is None:
            return None
        name, program = entry
        message = program.message(product, subject, attributes)
        key = (name, tuple(sorted(message.items())))
        if self._cache_size:
            with self._cache_lock:
                if key in self._cache:
                    self._hits += 1
                    self._cache.move_to_end(key)
                    return self._cache[key]
                self._misses += 1
        fired = _fired(name, message)
        self._evaluations += 1
        result = min((int(r[1:]) for r in fired), default=None)
        if self._cache_size:
            with self._cache_lock:
                self._cache[key] = result
                if len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return result

    def stats(self) -> dict:
        return {
            "rulesets": len(self._names),
            "evaluations": self._evaluations,
            "cache_hits": self._hits,
            "cache_misses": self._misses,
        }

    def close(self) -> None:
        """Free the C rulesets; idempotent."""
        if self._closed:
            return
        self._closed = True
        for name in self._names:
            _unregister(name)
        self._names.clear()
        with self._cache_lock:
            self._cache.clear()
