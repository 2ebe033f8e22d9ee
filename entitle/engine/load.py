"""Stage 1: YAML files to plain JSON-like data that remembers the line:col of every node.

Two paths give the same data. The reference path composes nodes with PyYAML and records
the line:col of every node as it builds. The fast path parses with yaml-rs (Rust) and
records nothing: a document's positions are found the first time one is asked for, by
running the reference path over that file. The fast path is only taken for text that a
cheap scan proves it reads the same way (see `fast_documents`); anything else, and any
file with a problem, goes through the reference path, which words the diagnostics.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml
import yaml_rs

from entitle.engine.diagnostics import Diagnostic

MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_DEPTH = 64
SUITE_SUFFIXES = ("_test.yaml", "_test.yml")
POLICY_SUFFIXES = (".yaml", ".yml")

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_INT = re.compile(r"^[-+]?(0|[1-9][0-9]*)$")
_FLOAT = re.compile(r"^[-+]?(\d+\.\d*|\.\d+|\d+)([eE][-+]?\d+)?$")
_PLAIN_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:timestamp",
    "tag:yaml.org,2002:seq",
    "tag:yaml.org,2002:map",
}

Pointer = tuple[str | int, ...]


@dataclass(frozen=True)
class Document:
    """One YAML document: its data and where each value (and each mapping key) stands."""

    path: str
    index: int
    data: dict
    marks: Mapping[Pointer, tuple[int, int]] = field(default_factory=dict)
    key_marks: Mapping[Pointer, tuple[int, int]] = field(default_factory=dict)

    def locate(self, pointer: Pointer, *, key: bool = False) -> tuple[int, int]:
        """Line and column of a value (or its key); missing paths fall back to the parent."""
        p = tuple(pointer)
        while True:
            if key and p in self.key_marks:
                return self.key_marks[p]
            if p in self.marks:
                return self.marks[p]
            if not p:
                return (1, 1)
            p = p[:-1]

    def diagnostic(self, pointer: Pointer, message: str, *, key: bool = False,
                   severity: str = "error") -> Diagnostic:
        line, col = self.locate(pointer, key=key)
        return Diagnostic(self.path, line, col, message, severity)  # type: ignore[arg-type]

    def locator(self, pointer: Pointer, *, key: bool = False) -> Callable[[], tuple[int, int]]:
        """`locate` deferred: for positions that are rarely read (a compiled object's source)."""
        return lambda: self.locate(pointer, key=key)

    def subdocument(self, prefix: Pointer, data: dict, index: int) -> Document:
        """A document embedded in this one (e.g. a test suite's contract), same positions."""
        n = len(prefix)
        marks = {p[n:]: m for p, m in self.marks.items() if p[:n] == prefix}
        keys = {p[n:]: m for p, m in self.key_marks.items() if p[:n] == prefix}
        return Document(self.path, index, data, marks, keys)


class _LoadError(Exception):
    def __init__(self, line: int, col: int, message: str):
        self.line, self.col, self.message = line, col, message


def _scalar(node: yaml.ScalarNode) -> object:
    """JSON-like resolution: only true/false, null and plain numbers are not strings."""
    if node.style:  # quoted or block scalars are always strings
        return node.value
    v = node.value
    if v in ("true", "True", "TRUE"):
        return True
    if v in ("false", "False", "FALSE"):
        return False
    if v in ("", "~", "null", "Null", "NULL"):
        return None
    if _INT.match(v):
        return int(v)
    if _FLOAT.match(v):
        return float(v)
    return v


def _build(node: yaml.Node, pointer: Pointer, marks: dict, key_marks: dict, depth: int) -> object:
    mark = node.start_mark
    marks[pointer] = (mark.line + 1, mark.column + 1)
    if depth > MAX_DEPTH:
        raise _LoadError(mark.line + 1, mark.column + 1, f"nesting deeper than {MAX_DEPTH} levels")
    if node.tag not in _PLAIN_TAGS:
        raise _LoadError(
            mark.line + 1, mark.column + 1,
            f"tag {node.tag!r} is not allowed: policy files hold plain data only",
        )
    if isinstance(node, yaml.ScalarNode):
        return _scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return [
            _build(child, (*pointer, i), marks, key_marks, depth + 1)
            for i, child in enumerate(node.value)
        ]
    out: dict = {}
    seen: dict[str, int] = {}
    for key_node, value_node in node.value:
        km = key_node.start_mark
        if not isinstance(key_node, yaml.ScalarNode):
            raise _LoadError(km.line + 1, km.column + 1, "mapping keys must be plain strings")
        if key_node.tag == "tag:yaml.org,2002:merge":
            raise _LoadError(km.line + 1, km.column + 1, "merge keys (<<) are not supported")
        key = key_node.value
        if key in seen:
            raise _LoadError(
                km.line + 1, km.column + 1,
                f"duplicate key {key!r} (first defined on line {seen[key]}); remove one of them",
            )
        seen[key] = km.line + 1
        key_marks[(*pointer, key)] = (km.line + 1, km.column + 1)
        out[key] = _build(value_node, (*pointer, key), marks, key_marks, depth + 1)
    return out


def _check_anchors(text: str) -> None:
    """Reject anchors/aliases before composing (the C composer expands them itself)."""
    for event in yaml.parse(text, Loader=_Loader):
        anchor = getattr(event, "anchor", None)
        if isinstance(event, yaml.AliasEvent) or anchor:
            m = event.start_mark
            raise _LoadError(
                m.line + 1, m.column + 1,
                "anchors and aliases (&x / *x) are not supported in policy files",
            )


def load_text(text: str, display: str, *, fast: bool = True
              ) -> tuple[list[Document], list[Diagnostic]]:
    """Documents of one YAML text; a problem stops that file with one located diagnostic."""
    if fast:
        found = fast_documents(text)
        if found is not None:
            if not found:
                return [], [Diagnostic(display, 1, 1, _EMPTY)]
            marks = _FileMarks(text)
            return [
                _document(display, index, data, _LazyMarks(marks, index, 0, None),
                          _LazyMarks(marks, index, 1, hint))
                for index, data, hint in found
            ], []
    return _reference_load(text, display)


def _reference_load(text: str, display: str) -> tuple[list[Document], list[Diagnostic]]:
    docs: list[Document] = []
    try:
        if "&" in text or "*" in text:
            _check_anchors(text)
        for index, node in enumerate(yaml.compose_all(text, Loader=_Loader)):
            if node is None:
                continue
            marks: dict = {}
            key_marks: dict = {}
            data = _build(node, (), marks, key_marks, 0)
            if data is None:
                continue
            if not isinstance(data, dict):
                line, col = marks[()]
                raise _LoadError(line, col, "a policy document must be a mapping with a `kind`")
            docs.append(Document(display, index, data, marks, key_marks))
    except _LoadError as exc:
        return [], [Diagnostic(display, exc.line, exc.col, exc.message)]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        opened = exc.context_mark
        if exc.problem and exc.context and opened and mark is not opened and \
                opened.line != mark.line:
            problem += f" {exc.context} that starts at line {opened.line + 1}:{opened.column + 1}"
        return [], [Diagnostic(display, line, col, f"YAML syntax error: {problem}")]
    except yaml.YAMLError as exc:
        return [], [Diagnostic(display, 1, 1, f"YAML error: {exc}")]
    if not docs:
        return [], [Diagnostic(display, 1, 1, _EMPTY)]
    return docs, []


_EMPTY = "empty file: a policy file needs at least one document with a kind"

# --- the fast path ----------------------------------------------------------------------------
# Fall back to the reference path when the text has anything the two parsers may read
# differently, or that only the reference path reports: a tab, CR, BOM, control or
# non-printable character, NEL/LS/PS line breaks (YAML 1.1 breaks, not 1.2), a non-ASCII
# digit (`_FLOAT` reads it), a backslash (escapes such as \ud800\udc00 differ), a directive
# (%), a document end marker (...), a merge key (<<), an anchor, alias or tag (&, *, !) where
# a node can start, a ? or : starting a token or a : ending one in a flow collection (x:]),
# a lone = (YAML 1.1's value tag, refused), and text without a final newline.
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")
_UNSAFE = re.compile(
    "[^\n\x20-\x7e\xa0-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]|[\u2028\u2029]"
    "|(?![0-9])\\d"
)
_SPECIAL = re.compile(
    r"(?<![^\s\[\]{},:])[&*!]|^%|^\.\.\.(?=[ \n])"
    r"|(?<![^\s\[\]{},])[?:]|:[,\]}]"  # ? and : where YAML 1.1 and 1.2 flow rules differ
    r"|(?<![^\s\[\]{},:])=(?![^\s,\[\]{}])",  # a plain `=` is PyYAML's `value` tag
    re.M,
)
_SPECIAL_HINTS = ("&", "*", "!", "%", "...", "?", " :", "\n:", "[:", "{:", ",:", ":,", ":]", ":}",
                  "=")
# Where a plain scalar that yaml-rs may read as a number starts (yaml-rs takes 0x1F, 0o17,
# 0b1, 1_000, _1, 012, .inf, .NaN; the reference path only `_INT` and `_FLOAT`). Only scanned
# in files whose data has a number: every ASCII `_FLOAT` match is a number to yaml-rs too
# (tests/test_load_fastpath.py checks), so data without numbers has no string that the
# reference path would have read as one. Each distinct token is checked once.
_NUMBERISH = re.compile(r"[\s\[\]{},:]((?![-.+](?:[\s,\[\]{}]|$))[-+._0-9][^\s,\[\]{}]*)")
_MARKER = re.compile(r"^---(?=[ \n])", re.M)
_CONTENT = re.compile(r"^[ ]*[^ #\n]", re.M)


def _unsafe(text: str) -> bool:
    if not text.endswith("\n") or "<<" in text or "\\" in text:
        return True
    if (_CONTROL if text.isascii() else _UNSAFE).search(text):
        return True
    return any(c in text for c in _SPECIAL_HINTS) and _SPECIAL.search(text) is not None


@lru_cache(maxsize=8192)
def _token_agrees(token: str) -> bool:
    """yaml-rs reads this plain scalar exactly as `_scalar` does."""
    try:
        parsed = yaml_rs.loads(f"k: {token}\n", parse_datetime=False)
    except yaml_rs.YAMLDecodeError:
        return False
    if not isinstance(parsed, dict) or list(parsed) != ["k"]:
        return False
    mine = _scalar(yaml.ScalarNode("tag:yaml.org,2002:str", token))
    theirs = parsed["k"]
    return type(theirs) is type(mine) and repr(theirs) == repr(mine)


class _Unsafe(Exception):
    pass


_STR = frozenset((str,))
_LEAVES = frozenset((str, bool, type(None)))
_NUMBERS = frozenset((int, float))
_ALLOWED = _LEAVES | _NUMBERS | {dict, list}


def _walk(value: dict | list, depth: int) -> bool:
    """Whether the data holds a number; raises _Unsafe for what `_build` would refuse
    (a key that is not a string, nesting deeper than MAX_DEPTH) or yaml-rs extras."""
    if type(value) is dict:
        if not _STR.issuperset(map(type, value)):
            raise _Unsafe
        value = value.values()  # type: ignore[assignment]
    types = set(map(type, value))
    if not types:
        return False
    if depth >= MAX_DEPTH or not _ALLOWED.issuperset(types):
        raise _Unsafe
    if _LEAVES.issuperset(types):
        return False
    numbers = not types.isdisjoint(_NUMBERS)
    if dict in types or list in types:
        for v in value:
            t = type(v)
            if (t is dict or t is list) and _walk(v, depth + 1):
                numbers = True
    return numbers


Found = list[tuple[int, dict, dict[Pointer, tuple[int, int]] | None]]


def fast_documents(text: str) -> Found | None:
    """(index, data, known key marks) of each document as yaml-rs reads it; None to fall back.

    The known key marks hold at most `("kind",)`, when a document's first line is `kind:`
    (what compiled objects cite as their source), so that the happy path never re-parses.
    """
    if _unsafe(text):
        return None
    try:
        parsed = yaml_rs.loads(text, parse_datetime=False)
    except (yaml_rs.YAMLDecodeError, RecursionError, OverflowError, ValueError):
        return None
    # Documents by their --- markers: gives the count (yaml-rs returns one document bare,
    # several as a list) and the line each one starts on.
    markers = [m.start() for m in _MARKER.finditer(text)]
    starts = [m + 3 for m in markers]
    if _CONTENT.search(text, 0, markers[0] if markers else len(text)):
        starts.insert(0, 0)
    if len(starts) == 1 and not isinstance(parsed, list):
        found = [parsed]
    elif len(starts) > 1 and isinstance(parsed, list) and len(parsed) == len(starts):
        found = parsed
    elif not starts and parsed is None:
        return []
    else:
        return None
    out = []
    numbers = False
    ends = [*starts[1:], len(text)]
    line, counted = 1, 0
    for index, (data, start, end) in enumerate(zip(found, starts, ends, strict=True)):
        if data is None:
            continue
        if type(data) is not dict:
            return None
        try:
            numbers = _walk(data, 0) or numbers
        except _Unsafe:
            return None
        hint: dict[Pointer, tuple[int, int]] | None = None
        first = _CONTENT.search(text, start, end)
        if first is not None and text.startswith("kind:", first.start()):
            pos = first.start()
            marker_rest = text[start:text.index("\n", start)].strip() if start else ""
            if text[pos + 5] in " \n" and (not marker_rest or marker_rest.startswith("#")):
                line += text.count("\n", counted, pos)
                counted = pos
                hint = {("kind",): (line, 1)}
        out.append((index, data, hint))
    if numbers and not all(map(_token_agrees, set(_NUMBERISH.findall("\n" + text)))):
        return None
    if ("|" in text or ">" in text) and _has_newlines_only([d for _, d, _ in out]):
        return None  # yaml-rs reads an empty block scalar at the end as "\n", PyYAML as ""
    return out


def _has_newlines_only(value: object) -> bool:
    if type(value) is str:
        return value != "" and not value.strip("\n")
    if type(value) is dict:
        value = value.values()
    elif type(value) is not list:
        return False
    return any(map(_has_newlines_only, value))  # type: ignore[arg-type]


class _FileMarks:
    """Positions of every node of one file, found by the reference path on first use."""

    def __init__(self, text: str):
        self._text: str | None = text
        self._docs: dict[int, tuple[dict, dict]] = {}

    def get(self, index: int) -> tuple[dict, dict]:
        if self._text is not None:
            text, self._text = self._text, None
            try:
                for i, node in enumerate(yaml.compose_all(text, Loader=_Loader)):
                    if node is not None:
                        marks: dict = {}
                        key_marks: dict = {}
                        _build(node, (), marks, key_marks, 0)
                        self._docs[i] = (marks, key_marks)
            except (_LoadError, yaml.YAMLError):
                pass  # not reached for text the fast path took; positions fall back to 1:1
        return self._docs.get(index, ({}, {}))


def _document(path: str, index: int, data: dict, marks: Mapping, key_marks: Mapping) -> Document:
    """Document(...) without the frozen dataclass's per-field __setattr__ (100k per bundle)."""
    doc = object.__new__(Document)
    doc.__dict__.update(path=path, index=index, data=data, marks=marks, key_marks=key_marks)
    return doc


class _LazyMarks(Mapping):
    """A document's marks (0) or key marks (1), read from its file only when first needed;
    `hint` holds positions already known without reading (the same as the file's)."""

    __slots__ = ("_all", "_hint", "_index", "_marks", "_which")

    def __init__(self, marks: _FileMarks, index: int, which: int,
                 hint: Mapping[Pointer, tuple[int, int]] | None):
        self._marks, self._index, self._which, self._hint = marks, index, which, hint
        self._all: dict | None = None

    def _load(self) -> dict:
        if self._all is None:
            self._all = self._marks.get(self._index)[self._which]
        return self._all

    def __contains__(self, pointer: object) -> bool:
        return (self._hint is not None and pointer in self._hint) or pointer in self._load()

    def __getitem__(self, pointer: Pointer) -> tuple[int, int]:
        if self._hint is not None and pointer in self._hint:
            return self._hint[pointer]
        return self._load()[pointer]

    def __iter__(self) -> Iterator[Pointer]:
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())


def load_file(path: Path, display: str | None = None) -> tuple[list[Document], list[Diagnostic]]:
    """Read, bound and decode one file, then load its documents."""
    display = display or display_path(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            return [], [Diagnostic(
                display, 1, 1,
                f"file is {size} bytes; policy files are limited to {MAX_FILE_BYTES} bytes",
            )]
        raw = path.read_bytes()
    except OSError as exc:
        return [], [Diagnostic(display, 1, 1, f"cannot read file: {exc.strerror}")]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        return [], [Diagnostic(display, line, col, "file is not UTF-8 text; save it as UTF-8")]
    return load_text(text, display)


def display_path(path: Path) -> str:
    """Paths in messages: relative to the working directory when under it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def policy_files(root: Path) -> list[Path]:
    """Every policy file under root, sorted; test suites are not policy."""
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and p.name.endswith(POLICY_SUFFIXES) and not p.name.endswith(SUITE_SUFFIXES)
    )


def load_bundle_files(root: Path) -> tuple[list[Document], list[Diagnostic], list[Path]]:
    documents: list[Document] = []
    diagnostics: list[Diagnostic] = []
    files = policy_files(root)
    for path in files:
        docs, diags = load_file(path)
        documents += docs
        diagnostics += diags
    return documents, diagnostics, files
