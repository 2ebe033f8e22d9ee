"""Stage 1: YAML files to plain JSON-like data that remembers the line:col of every node."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

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


def load_text(text: str, display: str) -> tuple[list[Document], list[Diagnostic]]:
    """Documents of one YAML text; a problem stops that file with one located diagnostic."""
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
        return [], [Diagnostic(display, line, col, f"YAML syntax error: {problem}")]
    except yaml.YAMLError as exc:
        return [], [Diagnostic(display, 1, 1, f"YAML error: {exc}")]
    if not docs:
        return [], [Diagnostic(
            display, 1, 1, "empty file: a policy file needs at least one document with a kind"
        )]
    return docs, []


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
