"""Stage 2: every problem in a bundle, each located at the YAML that causes it."""

from __future__ import annotations

import difflib
import heapq
import itertools
import json
import re
import zoneinfo
from calendar import month_name, monthrange
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from datetime import date, timedelta
from functools import cache, cached_property, lru_cache, partial
from importlib import resources
from math import inf
from pathlib import Path
from typing import NamedTuple

import jsonschema
import jsonschema_rs

from entitle.engine.compile import _condition as _rule_condition
from entitle.engine.compile import interval, merged_contract
from entitle.engine.diagnostics import Diagnostic
from entitle.engine.durations import parse_duration
from entitle.engine.load import MAX_FILE_BYTES, Document, clip
from entitle.engine.model import WEEKDAYS

KINDS = {
    "Calendar": "calendar",
    "Sla": "sla",
    "Plan": "plan",
    "Contract": "contract",
    "ContractTemplate": "contract-template",
}


class SchemaCheck:
    """One schema, two validators: jsonschema-rs answers valid-or-not (~1 µs a document),
    jsonschema walks only invalid data for the errors that `_explain` words."""

    def __init__(self, schema: dict):
        self.reference = jsonschema.Draft202012Validator(
            schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
        )
        self.fast = jsonschema_rs.Draft202012Validator(schema, validate_formats=True)

    @property
    def schema(self) -> dict:
        return self.reference.schema

    def is_valid(self, instance: object) -> bool:
        try:
            return self.fast.is_valid(instance)
        except (ValueError, OverflowError):  # data jsonschema-rs cannot take: ask jsonschema
            return self.reference.is_valid(instance)

    def iter_errors(self, instance: object) -> Iterator[jsonschema.ValidationError]:
        if self.is_valid(instance):
            return iter(())
        return self.reference.iter_errors(instance)

    def __getattr__(self, name: str) -> object:
        return getattr(self.reference, name)


@cache
def schema_validator(name: str) -> SchemaCheck | None:
    """The kind's JSON Schema from entitle/schemas, or None when it has none."""
    try:
        text = resources.files("entitle").joinpath(f"schemas/{name}.schema.json").read_text()
    except FileNotFoundError:
        return None
    return SchemaCheck(json.loads(text))


@cache
def _zones() -> frozenset[str]:
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
    return _suggest(_closest(pool)(str(word)))


def _suggest(close: str | None) -> str:
    return f"; did you mean {close!r}?" if close else ""


@cache
def _zone_cities() -> dict[str, dict[str, str]]:
    """Lowercased region ('america', '' for every zone) -> lowercased last part -> zone."""
    out: dict[str, dict[str, str]] = {"": {}}
    for name in sorted(_zones(), key=lambda z: (z.count("/"), z), reverse=True):
        region, _, city = name.lower().rpartition("/")
        out.setdefault(region, {})[city] = name
        out[""][city] = name  # the fewest parts win: America/Indianapolis, not .../Indiana/...
    return out


def _initials(city: str) -> str:
    parts = re.split(r"[_-]", city)
    return "".join(p[:1] for p in parts) if len(parts) > 1 else ""


@cache
def _zones_by_lower() -> dict[str, str]:
    return {z.lower(): z for z in _zones()}


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
    return cities[""][close] if close else _closest(_zones())(value)


# Schema annotation `errorMessage` (as VS Code reads it): text after the bad value, "not a date..."
_TYPE_NOUNS = {
    "string": "text",
    "number": "a number",
    "integer": "a whole number",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping",
    "null": "empty",
}
_KIND_NOUNS = {"Sla": "SLA", "ContractTemplate": "contract template"}


def _show(value: object) -> str:
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


def _label(pointer: tuple) -> str:
    """`rules[0].targets.high` for a pointer; names the field an error is about."""
    out = ""
    for part in pointer:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "the document"


def _one_of(words: Iterable[object], conjunction: str = "or") -> str:
    items = [str(w) for w in words]
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} {conjunction} {items[-1]}"


def _article(word: str) -> str:
    """'an' before a vowel sound: 'an 8-hour', 'an 11-hour', 'a 7.5-hour', 'an unlimited'."""
    if word[:1].isdigit():
        return "an" if word.startswith("8") or re.match(r"1[18](?!\d)", word) else "a"
    return "an" if word[:1].lower() in "aeiou" else "a"


def _resolve(root: dict, node: object) -> dict:
    while isinstance(node, dict) and str(node.get("$ref", "")).startswith("#/"):
        target: object = root
        for part in node["$ref"][2:].split("/"):
            target = target[part]  # type: ignore[index]
        node = target
    return node if isinstance(node, dict) else {}


def _condition(root: dict, error: jsonschema.ValidationError, kind: str) -> str | None:
    """'a per_period plan' when the error comes from an if/then on a const, else None."""
    path = list(error.absolute_schema_path)
    if "then" not in path:
        return None
    node: object = root
    for part in path[: len(path) - path[::-1].index("then") - 1]:
        node = _resolve(root, node) if part == "$ref" else node[part]  # type: ignore[index]
    consts = [
        (key, spec["const"])
        for key, spec in (_resolve(root, node).get("if") or {}).get("properties", {}).items()
        if isinstance(spec, dict) and "const" in spec
    ]
    if not consts:
        return None
    noun = _KIND_NOUNS.get(kind, kind.lower())
    key, value = consts[0]
    if key == "type":
        return f"{_article(str(value))} {value} {noun}"
    return f"{_article(noun)} {noun} with {key}: {value}"


def _choices(root: dict, schema: dict, pointer: tuple, name: str) -> str:
    """' (weekly, monthly, ...)' when the missing field is an enum."""
    props = schema.get("properties") or (root.get("properties") if not pointer else None) or {}
    enum = _resolve(root, props.get(name)).get("enum")
    return f" ({_one_of(enum)})" if enum else ""


def _fitting_branch(error: jsonschema.ValidationError) -> list | None:
    """The errors of the oneOf/anyOf branch whose type fits the value (the one meant)."""
    branches: dict[object, list] = {}
    for sub in error.context or ():
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    fitting = [
        errs for errs in branches.values()
        if not any(e.validator == "type" and not e.relative_path for e in errs)
    ]
    if len(fitting) == 1:
        return fitting[0]
    if len(fitting) > 1:
        best = jsonschema.exceptions.best_match(e for errs in fitting for e in errs)
        return [best] if best is not None else None
    return None


def _explain(doc: Document, root: dict, error: jsonschema.ValidationError) -> list[Diagnostic]:
    """One schema error as located diagnostics that say what is wrong and how to fix it."""
    pointer = tuple(error.absolute_path)
    label, value, check = _label(pointer), error.instance, error.validator
    schema = error.schema if isinstance(error.schema, dict) else {}
    hint = schema.get("errorMessage")
    kind = str(doc.data.get("kind"))
    condition = _condition(root, error, kind)
    where = f" in {label}" if pointer else ""

    if value is None and check in ("type", "oneOf", "anyOf", "enum", "const"):
        return [doc.diagnostic(pointer, _empty_message(root, error, label, hint))]
    if check == "additionalProperties":
        allowed = list((schema.get("properties") or {}).keys())
        out = []
        for key in (k for k in value if k not in allowed):
            fix = did_you_mean(key, allowed) or f"; expected one of {', '.join(allowed)}"
            out.append(doc.diagnostic((*pointer, key), f"unknown field {_show(key)}{where}{fix}",
                                      key=True))
        return out
    if check in ("oneOf", "anyOf"):
        branch = _fitting_branch(error)
        if branch is not None:
            return [d for sub in branch for d in _explain(doc, root, sub)]
        if hint:
            message = f"{_show(value)} is {hint}"
        else:
            kinds = [_resolve(root, b).get("type") for b in error.validator_value]
            nouns = [_TYPE_NOUNS.get(str(t), str(t)) for t in kinds if isinstance(t, str)]
            message = f"{label} must be {_one_of(nouns or ['another form'])}, got {_show(value)}"
        return [doc.diagnostic(pointer, message)]
    if check == "required":
        out = []
        for name in (n for n in error.validator_value if n not in value):
            fix = _choices(root, schema, pointer, name)
            message = (f"{condition} needs `{name}`{fix}" if condition
                       else f"missing required field {name!r}{where}{fix}")
            out.append(doc.diagnostic(pointer, message))
        return out
    if check is None or (check == "not" and error.validator_value == {}):  # never allowed
        what = f"{condition} takes no `{pointer[-1]}`" if condition and pointer else \
            f"{label} is not allowed here"
        return [doc.diagnostic(pointer, f"{what}; remove it", key=True)]
    if check == "uniqueItems":
        seen: list = []
        for i, item in enumerate(value):
            if item in seen:
                return [doc.diagnostic(
                    (*pointer, i), f"duplicate {_show(item)} in {label}; list each value once"
                )]
            seen.append(item)
    written = partial(_as_written, doc, pointer, value)  # read from the file only if needed
    message = _value_message(check, error, label, value, hint, written)
    if condition and check not in ("pattern", "format"):
        message += f" ({condition})"
    return [doc.diagnostic(pointer, message)]


def _value_message(check: str, error: jsonschema.ValidationError, label: str, value: object,
                   hint: str | None, written: Callable[[], str]) -> str:
    """The message for a value of the wrong type, form or size; `written` is its source text."""
    limit = error.validator_value
    schema = error.schema if isinstance(error.schema, dict) else {}
    if check == "type":
        expected = [limit] if isinstance(limit, str) else list(limit)
        pattern = schema.get("pattern")
        if "string" in expected and isinstance(value, int | float) and not isinstance(value, bool):
            text = written()
            if pattern is None or re.search(pattern, text):
                return f"{label} must be text, got {text}; put it in quotes: \"{text}\""
        if hint:
            return f"{_show(value)} is {hint}"
        fix = _list_fix(label, expected, value)
        return f"{label} must be {_type_nouns(limit)}, got {_show(value)}{fix}"
    if check == "format" and limit == "date" and (missing := _missing_day(str(value))):
        return f"{_show(value)} is not a date: {missing}"
    if hint and check in ("pattern", "format", "const", "minLength", "enum"):
        return f"{_show(value)} is {hint}"
    if check == "enum":
        allowed = ", ".join(map(str, limit))
        if isinstance(value, list | dict):
            return f"{label} must be one of {allowed}, got {_show(value)}"
        return (f"{label} {_show(value)} is not allowed; expected one of {allowed}"
                f"{did_you_mean(value, map(str, limit))}")
    if check == "multipleOf":
        whole = "a whole number" if limit == 1 else f"a multiple of {limit}"
        return f"{label} must be {whole}, got {_show(value)}"
    if check == "const":
        return f"{label} must be {_show(limit)}, got {_show(value)}"
    bounds = {
        "minimum": "at least", "exclusiveMinimum": "greater than",
        "maximum": "at most", "exclusiveMaximum": "less than",
    }
    if check in bounds:
        return f"{label} must be {bounds[check]} {limit}, got {_show(value)}"
    if check in ("minLength", "minItems", "minProperties") and limit == 1:
        fields = list(schema.get("properties") or ())
        fix = f"; write {_one_of(fields)}" if check == "minProperties" and fields else ""
        return f"{label} must not be empty{fix}"
    sizes = {"minLength": "at least {} characters", "maxLength": "at most {} characters",
             "minItems": "at least {} items", "maxItems": "at most {} items",
             "minProperties": "at least {} fields", "maxProperties": "at most {} fields"}
    if check in sizes:
        return f"{label} must have {sizes[check].format(limit)}"
    if check == "pattern":
        about = f"; expected {schema['description'].rstrip('.')}" if "description" in schema else ""
        return f"{label} {_show(value)} is not in the expected form{about}"
    if check == "format":
        return f"{_show(value)} is not a valid {limit}"
    return f"{label}: {error.message}"


def _type_nouns(types: str | list[str]) -> str:
    """'a whole number', 'text or a number': a schema's `type` in words."""
    return _one_of(_TYPE_NOUNS.get(t, t) for t in ([types] if isinstance(types, str) else types))


_EVERY = frozenset({"all", "*", "any", "every", "everything"})


def _list_fix(label: str, expected: list, value: object) -> str:
    """'; write [x]' for a bare item, except where that would name a product "all"."""
    if expected != ["array"] or not isinstance(value, str | int):
        return ""
    if label.endswith("products") and str(value).lower() in _EVERY:
        return "; leave `products` out to cover every product"
    return f"; write [{value}]"


def _missing_day(text: str) -> str | None:
    """Why a date of the right shape does not exist ('February 2026 has 28 days'), or None."""
    match = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", text)
    if match is None:
        return None
    year, month, day = map(int, match.groups())
    if not 1 <= month <= 12:
        return f"there is no month {month:02d} (YYYY-MM-DD)"
    if day == 0:
        return "days start at 01"
    days = monthrange(year, month)[1]
    return f"{month_name[month]} {year} has {days} days" if day > days else None


def _empty_message(root: dict, error: jsonschema.ValidationError, label: str,
                   hint: str | None) -> str:
    """An empty value (`end:`) is not "no value": say to fill it in, or to leave it out."""
    limit, check = error.validator_value, error.validator
    if hint and "; " in hint:
        fix = hint.split("; ", 1)[1]
    elif check == "enum":
        fix = f"write one of {', '.join(map(str, limit))}"
    elif check == "const":
        fix = f"write {_show(limit)}"
    elif check == "type":
        fix = f"write {_type_nouns(limit)}"
    else:
        fix = "fill it in"
    pointer = tuple(error.absolute_path)
    if pointer and isinstance(pointer[-1], int):
        return f"{label} is empty; {fix}, or remove the item"
    if _is_required(root, error):
        return f"{label} is empty; {fix}"
    return f"{label} is empty; {fix}, or leave the field out"


def _is_required(root: dict, error: jsonschema.ValidationError) -> bool:
    """Whether the field an error is about is required by the object schema it stands in."""
    path = list(error.absolute_schema_path)
    if len(path) < 3 or path[-3] != "properties":
        return False
    node: object = root
    try:
        for part in path[:-3]:
            node = node[part] if isinstance(node, list) else _resolve(root, node)[part]
    except (KeyError, IndexError, TypeError):
        return False
    return path[-2] in _resolve(root, node).get("required", ())


def _as_written(doc: Document, pointer: tuple, value: float) -> str:
    """A number as its file spells it (`007`, `1e3`): loading kept only its value."""
    if pointer in doc.marks:
        line, col = doc.marks[pointer]
        match = _NUMBER.match(_source_line(doc.path, line), col - 1)
        if match and float(match.group()) == value:
            return match.group()
    return str(value)


_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def _source_line(path: str, line: int) -> str:
    try:
        stat = Path(path).stat()
    except OSError:
        return ""
    lines = _source_lines(path, stat.st_mtime_ns, stat.st_size)
    return lines[line - 1] if 0 < line <= len(lines) else ""


@lru_cache(maxsize=4)
def _source_lines(path: str, _mtime: int, _size: int) -> list[str]:
    try:
        return Path(path).read_bytes().decode("utf-8", errors="replace").splitlines()
    except OSError:
        return []


def _schema_errors(doc: Document, name: str) -> list[Diagnostic]:
    validator = schema_validator(name)
    if validator is None:
        return []
    out: dict[Diagnostic, None] = {}
    for error in validator.iter_errors(doc.data):
        out.update(dict.fromkeys(_explain(doc, validator.schema, error)))
    return list(out)


class UnloadedFiles:
    """The files that did not load: a reference is held back (not reported as unknown) only
    when its id is a word of one of them, as that file may define it."""

    def __init__(self, paths: Iterable[str]):
        self._paths = sorted(set(paths))

    def may_define(self, ident: str) -> bool:
        return bool(self._paths) and (self._words is None or ident in self._words)

    @cached_property
    def _words(self) -> frozenset[str] | None:
        """Every word of those files; None when one cannot be read (it may define anything)."""
        words: set[str] = set()
        for path in map(Path, self._paths):
            try:
                if path.stat().st_size > MAX_FILE_BYTES:
                    return None
                words.update(_WORD.findall(path.read_bytes().decode("utf-8", errors="replace")))
            except OSError:
                return None
        return frozenset(words)


_WORD = re.compile(r"[A-Za-z0-9._:-]+")


def validate(documents: Iterable[Document], *, unloaded: Iterable[str] = ()) -> list[Diagnostic]:
    """Schema errors, then the semantic checks no schema can express. `unloaded`: paths of the
    bundle's files that did not load; a reference that one of them may define is not checked."""
    docs = list(documents)
    out: list[Diagnostic] = []
    valid: dict[str, list[Document]] = {kind: [] for kind in KINDS}
    invalid: dict[str, set[str]] = {kind: set() for kind in KINDS}
    unkinded: set[str] = set()  # ids of documents whose kind is wrong: any kind may refer to them
    for doc in docs:
        kind = doc.data.get("kind")
        if kind not in KINDS and isinstance(doc.data.get("id"), str):
            unkinded.add(doc.data["id"])
        if kind is None:
            out.append(doc.diagnostic(
                (), f"missing required field 'kind'; start the document with one of "
                f"{', '.join(f'`kind: {k}`' for k in KINDS)}",
            ))
            continue
        if kind not in KINDS:
            out.append(doc.diagnostic(
                ("kind",),
                f"unknown kind {_show(kind)}; expected one of {', '.join(KINDS)}"
                f"{did_you_mean(kind, KINDS)}",
            ))
            continue
        errors = _schema_errors(doc, KINDS[kind])
        out += errors
        if not errors:
            valid[kind].append(doc)
        elif isinstance(doc.data.get("id"), str):
            invalid[kind].add(doc.data["id"])
    known_bad = {kind: ids | unkinded for kind, ids in invalid.items()}
    out += _semantic(valid, known_bad, UnloadedFiles(unloaded))
    return sorted(set(out))


def _semantic(valid: dict[str, list[Document]], invalid: dict[str, set[str]],
              unloaded: UnloadedFiles) -> list[Diagnostic]:
    """Cross-document checks over the documents that passed their schema; a reference to a
    document that failed its schema (or may be in a file that did not load) is not reported."""
    out: list[Diagnostic] = []
    ids: dict[str, dict[str, Document]] = {}
    for kind, docs in valid.items():
        seen: dict[str, Document] = {}
        for doc in docs:
            ident = str(doc.data["id"])
            if ident in seen:
                first = seen[ident]
                line, _ = first.locate(("id",))
                out.append(doc.diagnostic(
                    ("id",), f"duplicate {kind} id {ident!r} (first defined at {first.path}:{line})"
                ))
            else:
                seen[ident] = doc
        ids[kind] = seen

    closest: dict[str, Closest] = {}

    def ref(doc: Document, field: str, kind: str) -> None:
        value = doc.data.get(field)
        if value is None or value in ids[kind] or value in invalid[kind] or \
                unloaded.may_define(value):
            return
        if kind not in closest:
            closest[kind] = Closest(ids[kind])
        noun = {"ContractTemplate": "template", "Sla": "SLA"}.get(kind, kind.lower())
        out.append(doc.diagnostic(
            (field,), f"unknown {noun} {value!r}{_suggest(closest[kind](value))}"
        ))

    def zone(doc: Document, field: str = "timezone") -> None:
        value = doc.data.get(field)
        if value is not None and value not in _zones():
            out.append(doc.diagnostic(
                (field,), f"unknown IANA time zone {value!r}{_suggest(zone_suggestion(value))}"
            ))

    for doc in valid["Calendar"]:
        zone(doc)
        out += _calendar_hours(doc)
    for doc in valid["Sla"]:
        ref(doc, "calendar", "Calendar")
        out += _sla_targets(doc, ids["Calendar"])
        out += _shadowed_rules(doc)
        out += _empty_bands(doc)
        out += _partial_rule_targets(doc)
        out += sla_clock_settings(doc)
    for doc in valid["Plan"]:
        ref(doc, "sla", "Sla")
        out += _alert_thresholds(doc)
    for doc in valid["ContractTemplate"]:
        ref(doc, "plan", "Plan")
        zone(doc)
    spans: list[ContractSpan] = []
    for doc in valid["Contract"]:
        ref(doc, "template", "ContractTemplate")
        zone(doc)
        merged = merged_contract(doc, ids["ContractTemplate"])
        template = doc.data.get("template")
        resolved = template is None or template in ids["ContractTemplate"]
        if merged.get("plan") is None and resolved:
            out.append(doc.diagnostic((), "missing required field 'plan' (or a template with one)"))
        elif "plan" in doc.data:
            ref(doc, "plan", "Plan")
        out += _contract_dates(doc, merged, ids["Plan"])
        span = contract_span(doc, merged) if resolved else None  # else products, term unknown
        spans += [span] if span is not None else []
    out += _overlap_diagnostics(spans)
    return out


def _calendar_hours(doc: Document) -> list[Diagnostic]:
    out = []
    hours = doc.data.get("hours") or {}
    total = 0
    for day, intervals in hours.items():
        if day not in WEEKDAYS:
            out.append(doc.diagnostic(
                ("hours", day), f"unknown weekday {_show(day)}; use {', '.join(WEEKDAYS)}", key=True
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


def _sla_targets(doc: Document, calendars: dict[str, Document] | None = None) -> list[Diagnostic]:
    out = []
    data = doc.data
    default_clock = data.get("clock") or ("business" if data.get("calendar") else "calendar")
    blocks = [(("targets",), data.get("targets") or {})]
    blocks += [
        (("rules", i, "targets"), r.get("targets") or {})
        for i, r in enumerate(data.get("rules") or ())
    ]
    for prefix, targets in blocks:
        for priority, metrics in targets.items():
            for metric, value in (metrics or {}).items():
                pointer = (*prefix, priority, metric)
                clock = default_clock
                if isinstance(value, dict):
                    clock = value.get("clock", clock)
                    pointer, value = (*pointer, "within"), value.get("within")
                try:
                    parse_duration(str(value))
                except ValueError as exc:
                    out.append(doc.diagnostic(pointer, str(exc)))
                    continue
                if clock == "business" and not data.get("calendar"):
                    out.append(doc.diagnostic(
                        pointer, "a business-time target needs the SLA's `calendar`; add one "
                        "or use {within: ..., clock: calendar}",
                    ))
                elif clock == "business":
                    calendar = (calendars or {}).get(data["calendar"])
                    out += _days_in_business_time(doc, pointer, str(value), calendar)
    return out


def _contract_dates(doc: Document, merged: dict, plans: dict[str, Document]) -> list[Diagnostic]:
    out = []
    try:
        start = date.fromisoformat(str(merged.get("start")))
    except ValueError:
        return [doc.diagnostic(("start",), f"{merged.get('start')!r} is not a date (YYYY-MM-DD)")]
    end_text = merged.get("end")
    if end_text is not None:
        try:
            end = date.fromisoformat(str(end_text))
        except ValueError:
            return [doc.diagnostic(("end",), f"{end_text!r} is not a date (YYYY-MM-DD)")]
        if end <= start:
            out.append(doc.diagnostic(
                ("end",), f"end {end} is not after start {start}; `end` is exclusive"
            ))
    plan = plans.get(merged.get("plan", ""))
    discontinued = plan.data.get("discontinued") if plan else None
    if isinstance(discontinued, str) and start >= date.fromisoformat(discontinued):
        out.append(doc.diagnostic(
            ("start",),
            f"plan {plan.data['id']!r} is discontinued since {discontinued}; a contract "
            "starting after that needs another plan",
        ))
    return out


def validate_suite(documents: Iterable[Document], bundle: Iterable[Document] | None = None,
                   *, references: bool = True) -> list[Diagnostic]:
    """Test suites against testsuite.schema.json, then the fixtures their tests name (the
    runner reports those per test instead). `bundle`: the valid bundle they run against, for
    the contract ids in usage (None: not checked)."""
    contracts = None if bundle is None else frozenset(
        str(d.data.get("id")) for d in bundle if d.data.get("kind") == "Contract")
    out: list[Diagnostic] = []
    for doc in documents:
        out += _schema_errors(doc, "testsuite")
        out += _suite_references(doc, contracts) if references else []
    return sorted(out)


def _mapping(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def _suite_references(doc: Document, contracts: frozenset[str] | None) -> list[Diagnostic]:
    """Fixture names (and contract ids) a suite's tests use, checked before `entitle test`."""
    fixtures = _mapping(doc.data.get("fixtures"))
    usage, tickets = _mapping(fixtures.get("usage")), _mapping(fixtures.get("tickets"))
    out = []

    def named(pointer: tuple, name: object, section: str, known: dict) -> None:
        if isinstance(name, str) and name not in known:
            fix = did_you_mean(name, known) or f"; define it under fixtures.{section}"
            noun = section.removesuffix("s")
            out.append(doc.diagnostic(pointer, f"unknown {noun} fixture {name!r}{fix}"))

    lists = [(("fixtures", "usage", name), entries) for name, entries in usage.items()]
    for i, test in enumerate(doc.data.get("tests") or ()):
        test = _mapping(test)
        ticket = test.get("ticket")
        named(("tests", i, "usage"), test.get("usage"), "usage", usage)
        named(("tests", i, "ticket"), ticket, "tickets", tickets)
        named(("tests", i, "ticket", "from"), _mapping(ticket).get("from"), "tickets", tickets)
        lists.append((("tests", i, "usage"), test.get("usage")))
    for name, ticket in tickets.items():
        if "from" in _mapping(ticket):
            out.append(doc.diagnostic(
                ("fixtures", "tickets", name, "from"), "a ticket fixture cannot start `from` "
                "another (only a test's ticket can); write its fields in full", key=True,
            ))
    if contracts is not None:
        own = {str(_mapping(c).get("id")) for c in fixtures.get("contracts") or ()}
        out += _usage_contracts(doc, lists, contracts | own)
    return out


def _usage_contracts(doc: Document, lists: list[tuple[tuple, object]],
                     known: frozenset[str]) -> list[Diagnostic]:
    out = []
    closest: list[Closest] = []  # built on the first unknown id only: bundles are large
    for pointer, entries in lists:
        for j, entry in enumerate(entries if isinstance(entries, list) else ()):
            cid = _mapping(entry).get("contract_id")
            if isinstance(cid, str) and cid not in known:
                closest = closest or [Closest(known)]
                out.append(doc.diagnostic((*pointer, j, "contract_id"),
                                          f"unknown contract {cid!r}{_suggest(closest[0](cid))}"))
    return out


class ContractSpan(NamedTuple):
    """What the overlap check needs of one contract (template fields merged in)."""

    id: str
    customer: str
    start: date
    end: date | None  # exclusive; None is open-ended
    products: frozenset[str] | None  # None covers every product
    precedence: int | None
    doc: Document | None = None


class Overlap(NamedTuple):
    later: ContractSpan
    earlier: ContractSpan
    product: str | None  # None: both cover every product


_ALL = object()  # bucket of every earlier contract, whatever its products
_ANY = object()  # bucket of every earlier contract, whatever its precedence


def contract_span(doc: Document, merged: dict) -> ContractSpan | None:
    """The span of a contract, or None when its dates are broken (reported elsewhere)."""
    try:
        start = date.fromisoformat(str(merged.get("start")))
        end = date.fromisoformat(str(merged["end"])) if merged.get("end") is not None else None
    except ValueError:
        return None
    if end is not None and end <= start:
        return None
    products = merged.get("products")
    covered = None if products is None or "*" in products else frozenset(map(str, products))
    return ContractSpan(str(merged.get("id")), str(merged.get("customer")), start, end, covered,
                        merged.get("precedence"), doc)


def contract_overlaps(spans: Iterable[ContractSpan]) -> list[Overlap]:
    """Each contract that conflicts with an earlier one (by start, then id), with one partner.

    A sweep per customer in start order: every earlier contract goes into buckets keyed by
    (product or "*" or _ALL, precedence or _ANY), each a heap with the latest end on top; the
    top is still running iff any in the bucket is. O(n log n) plus products per contract.
    """
    by_customer: dict[str, list[ContractSpan]] = {}
    for span in spans:
        by_customer.setdefault(span.customer, []).append(span)
    out = []
    for customer in sorted(by_customer):
        buckets: dict[tuple[object, object], list[tuple[float, date, str, int]]] = {}
        ordered = sorted(by_customer[customer], key=lambda s: (s.start, s.id))
        for index, span in enumerate(ordered):
            day = span.start.toordinal()
            keys = [_ANY] if span.precedence is None else [None, span.precedence]
            scopes: list[object] = [_ALL]
            if span.products is not None:
                scopes = [*sorted(span.products), "*"]
            found: list[tuple[date, str, int, object]] = []
            for scope in scopes:
                for key in keys:
                    heap = buckets.get((scope, key))
                    if heap and -heap[0][0] > day:
                        _, start, ident, other = heap[0]
                        found.append((start, ident, other, scope))
            if found:
                _, _, other, scope = min(found, key=lambda f: (f[0], f[1]))
                earlier = ordered[other]  # type: ignore[index]
                if scope is _ALL:  # this one covers every product: name one of the other's
                    product = min(earlier.products) if earlier.products is not None else None
                elif scope == "*":  # the other covers every product
                    product = min(span.products)  # type: ignore[arg-type]
                else:
                    product = str(scope)
                out.append(Overlap(span, earlier, product))
            end = float(span.end.toordinal()) if span.end is not None else float("inf")
            entry = (-end, span.start, span.id, index)
            places = [_ALL, *(sorted(span.products) if span.products is not None else ["*"])]
            for scope in places:
                for key in (span.precedence, _ANY):
                    heapq.heappush(buckets.setdefault((scope, key), []), entry)
    return out


def _overlap_diagnostics(spans: list[ContractSpan]) -> list[Diagnostic]:
    out = []
    for later, earlier, product in contract_overlaps(spans):
        doc, other = later.doc, earlier.doc
        if doc is None:
            continue
        where = f" ({other.path}:{other.locate(('id',))[0]})" if other is not None else ""
        ends = [e for e in (later.end, earlier.end) if e is not None]
        until = f"to {min(ends) - timedelta(days=1)}" if ends else "on, with no end"
        on = f"on product {product!r}" if product is not None else "on every product"
        own = doc.data.get("products")
        if isinstance(own, list) and product in own:
            pointer: tuple = ("products", own.index(product))
        elif isinstance(own, list):
            pointer = ("products",)
        else:
            pointer = ("start",)
        out.append(doc.diagnostic(
            pointer,
            f"contract {later.id!r} overlaps {earlier.id!r}{where} {on} from {later.start} "
            f"{until}; give both a different `precedence` or make the dates not overlap",
        ))
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
    a = _article(f"{day:g}")
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


def _shadowed_rules(doc: Document) -> list[Diagnostic]:
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


def _empty_bands(doc: Document) -> list[Diagnostic]:
    """A band {min: 100, max: 50} matches no number; the schema cannot compare two values."""
    out = []
    for i, rule in enumerate(doc.data.get("rules") or ()):
        for name, band in ((rule.get("when") or {}).get("attributes") or {}).items():
            if isinstance(band, dict) and band.get("min", -inf) > band.get("max", inf):
                pointer = ("rules", i, "when", "attributes", name)
                out.append(doc.diagnostic(
                    pointer, f"{_label(pointer)} can never match: min {_show(band['min'])} is "
                    f"above max {_show(band['max'])}; swap them (both bounds are inclusive)",
                ))
    return out


def _partial_rule_targets(doc: Document) -> list[Diagnostic]:
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
                    f"rule {name!r} gives {priority} only {_one_of(metrics, 'and')}; "
                    f"{_one_of(missing, 'and')} from the default targets "
                    f"{'do' if several else 'does'} not apply under this rule: repeat "
                    f"{'them' if several else 'it'} in the rule if meant",
                    severity="warning",
                ))
    return out


def _alert_thresholds(doc: Document) -> list[Diagnostic]:
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
                    pointer, f"alerts.{field}[{i}] must be {noun}, got {_show(value)}; "
                    "change or remove it",
                ))
            elif value in seen:
                out.append(doc.diagnostic(
                    pointer, f"duplicate {_show(value)} in alerts.{field}; list each value once",
                ))
            if number:
                seen.add(value)
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
                ("warn_at", i), f"duplicate {_show(value)} in warn_at; list each percent once"))
        elif value < before:
            out.append(doc.diagnostic(
                ("warn_at", i), f"warn_at must be ascending: {_show(value)} comes after "
                f"{_show(before)}; write e.g. [50, 75]"))
    lists = [(("pause_on",), doc.data.get("pause_on"))]
    lists += [(("pause_on_by_metric", metric), statuses)
              for metric, statuses in (doc.data.get("pause_on_by_metric") or {}).items()]
    for pointer, statuses in lists:
        seen: dict[str, object] = {}
        for i, status in enumerate(statuses if isinstance(statuses, list) else ()):
            key = str(status).lower()
            if key in seen:
                out.append(doc.diagnostic(
                    (*pointer, i), f"status {_show(status)} repeats {_show(seen[key])} in "
                    f"{_label(pointer)} (statuses match after lower-casing); list it once"))
            seen.setdefault(key, status)
    return out
