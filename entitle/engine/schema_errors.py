"""Schema errors in words: each JSON Schema failure as a located message with its fix."""

from __future__ import annotations

import json
import re
from calendar import month_name, monthrange
from collections.abc import Callable, Iterable, Iterator
from functools import cache, lru_cache, partial
from importlib import resources
from pathlib import Path

import jsonschema
import jsonschema_rs

from entitle.engine.diagnostics import Diagnostic
from entitle.engine.hints import (
    did_you_mean,
    meant,
)
from entitle.engine.load import Document
from entitle.engine.wording import article, label_of, one_of, shown


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
        return f"{article(str(value))} {value} {noun}"
    return f"{article(noun)} {noun} with {key}: {value}"


def _choices(root: dict, schema: dict, pointer: tuple, name: str) -> str:
    """' (weekly, monthly, ...)' when the missing field is an enum."""
    props = schema.get("properties") or (root.get("properties") if not pointer else None) or {}
    enum = _resolve(root, props.get(name)).get("enum")
    return f" ({one_of(enum)})" if enum else ""


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


def _explain(doc: Document, root: dict, error: jsonschema.ValidationError,
             typos: Typos = frozenset()) -> list[Diagnostic]:
    """One schema error as located diagnostics that say what is wrong and how to fix it."""
    pointer = tuple(error.absolute_path)
    label, value, check = label_of(pointer), error.instance, error.validator
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
            out.append(doc.diagnostic((*pointer, key), f"unknown field {shown(key)}{where}{fix}",
                                      key=True))
        return out
    if check in ("oneOf", "anyOf"):
        branch = _fitting_branch(error)
        if branch is not None:
            return [d for sub in branch for d in _explain(doc, root, sub, typos)]
        if hint:
            message = f"{shown(value)} is {hint}"
        else:
            kinds = [_resolve(root, b).get("type") for b in error.validator_value]
            nouns = [_TYPE_NOUNS.get(str(t), str(t)) for t in kinds if isinstance(t, str)]
            message = f"{label} must be {one_of(nouns or ['another form'])}, got {shown(value)}"
        return [doc.diagnostic(pointer, message)]
    if check == "required":
        out = []
        for name in (n for n in error.validator_value if n not in value):
            if (pointer, name) in typos:
                continue
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
                    (*pointer, i), f"duplicate {shown(item)} in {label}; list each value once"
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
            return f"{shown(value)} is {hint}"
        fix = _list_fix(label, expected, value)
        return f"{label} must be {_type_nouns(limit)}, got {shown(value)}{fix}"
    if check == "format" and limit == "date" and (missing := _missing_day(str(value))):
        return f"{shown(value)} is not a date: {missing}"
    if hint and check in ("pattern", "format", "const", "minLength", "enum"):
        return f"{shown(value)} is {hint}"
    if check == "enum":
        allowed = ", ".join(map(str, limit))
        if isinstance(value, list | dict):
            return f"{label} must be one of {allowed}, got {shown(value)}"
        return (f"{label} {shown(value)} is not allowed; expected one of {allowed}"
                f"{did_you_mean(value, map(str, limit))}")
    if check == "multipleOf":
        whole = "a whole number" if limit == 1 else f"a multiple of {limit}"
        return f"{label} must be {whole}, got {shown(value)}"
    if check == "const":
        return f"{label} must be {shown(limit)}, got {shown(value)}"
    bounds = {
        "minimum": "at least", "exclusiveMinimum": "greater than",
        "maximum": "at most", "exclusiveMaximum": "less than",
    }
    if check in bounds:
        return f"{label} must be {bounds[check]} {limit}, got {shown(value)}"
    if check in ("minLength", "minItems", "minProperties") and limit == 1:
        fields = list(schema.get("properties") or ())
        fix = f"; write {one_of(fields)}" if check == "minProperties" and fields else ""
        return f"{label} must not be empty{fix}"
    sizes = {"minLength": "at least {} characters", "maxLength": "at most {} characters",
             "minItems": "at least {} items", "maxItems": "at most {} items",
             "minProperties": "at least {} fields", "maxProperties": "at most {} fields"}
    if check in sizes:
        return f"{label} must have {sizes[check].format(limit)}"
    if check == "pattern":
        about = f"; expected {schema['description'].rstrip('.')}" if "description" in schema else ""
        return f"{label} {shown(value)} is not in the expected form{about}"
    if check == "format":
        return f"{shown(value)} is not a valid {limit}"
    return f"{label}: {error.message}"


def _type_nouns(types: str | list[str]) -> str:
    """'a whole number', 'text or a number': a schema's `type` in words."""
    return one_of(_TYPE_NOUNS.get(t, t) for t in ([types] if isinstance(types, str) else types))


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
        fix = f"write {shown(limit)}"
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


def schema_diagnostics(doc: Document, name: str) -> list[Diagnostic]:
    validator = schema_validator(name)
    if validator is None:
        return []
    errors = list(validator.iter_errors(doc.data))
    typos = _typos(errors)
    out: dict[Diagnostic, None] = {}
    for error in errors:
        out.update(dict.fromkeys(_explain(doc, validator.schema, error, typos)))
    return list(out)


Typos = frozenset[tuple[tuple, str]]  # (pointer of an object, a field an unknown key there means)


def _typos(errors: list[jsonschema.ValidationError]) -> Typos:
    """The fields that unknown keys probably mean (`limt`: limit), by object: a missing field
    that a typo there means is that typo's error, said once at the typo."""
    out = set()
    for error in _with_branches(errors):
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            schema = error.schema if isinstance(error.schema, dict) else {}
            allowed = frozenset((schema.get("properties") or {}).keys())
            pointer = tuple(error.absolute_path)
            for key in error.instance:
                if key not in allowed and (name := meant(key, allowed)) is not None:
                    out.add((pointer, name))
    return frozenset(out)


def _with_branches(errors: Iterable[jsonschema.ValidationError]
                   ) -> Iterator[jsonschema.ValidationError]:
    for error in errors:
        yield error
        yield from _with_branches(error.context or ())
