"""Stage 1: YAML files to plain JSON-like data that remembers the line:col of every node.

Two paths give the same data. The reference path builds it from libyaml's events (`_Builder`:
no recursion, bounded nesting and aliases, one broken document dropped alone) and records
the line:col of every node as it builds. The fast path parses with yaml-rs (Rust) and
records nothing: a document's positions are found the first time one is asked for, by
running the reference path over that file. The fast path is only taken for text that a
cheap scan proves it reads the same way (see `fast_documents`); anything else, and any
file with a problem, goes through the reference path, which words the diagnostics.
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
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
_YAML_TAG = "tag:yaml.org,2002:"

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
    """A problem that drops one document; `index` is its offset in the text (-1: unknown)."""

    def __init__(self, line: int, col: int, message: str, index: int = -1):
        super().__init__(message)
        self.line, self.col, self.message, self.index = line, col, message, index


class _TooDeep(_LoadError):
    """Nesting past MAX_DEPTH: the parser is left there (reading on would be slow: libyaml's
    scanner takes time in proportion to the depth for every token)."""


class _Exhausted(_LoadError):
    """The alias budget is spent: nothing more of the file is read."""


class _Resync(_LoadError):
    """Not a problem of its own: reading goes on at the next document."""


def clip(text: str, limit: int = 80) -> str:
    """At most `limit` characters of `text` (…): a 5 MB value must not make a 5 MB message."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _scalar(value: str, style: str | None) -> object:
    """JSON-like resolution: only true/false, null and plain numbers are not strings."""
    if style:  # quoted or block scalars are always strings
        return value
    if value in ("true", "True", "TRUE"):
        return True
    if value in ("false", "False", "FALSE"):
        return False
    if value in ("", "~", "null", "Null", "NULL"):
        return None
    if _INT.match(value):
        return int(value)
    if _FLOAT.match(value):
        return float(value)
    return value


ALIAS_BUDGET = 100_000  # nodes that aliases may add to one file
# Events of anchored values kept per document: beyond this many an anchored value could not
# be used within the budget anyway (a value of n nodes has at most 2n events).
_RECORDED_MAX = 2 * ALIAS_BUDGET + 2
_MERGE_TAG = "tag:yaml.org,2002:merge"
_IMPLICIT_TAGS = {"<<": _MERGE_TAG, "=": "tag:yaml.org,2002:value"}  # PyYAML's, for plain `<<`, `=`
_MERGE = object()  # a mapping's pending key when its next value is merged in (`<<`)
_MERGE_HINT = "`<<` merges mappings: write `<<: *name` (an anchored mapping) or `<<: [*a, *b]`"
_UNCLOSED = ("found unexpected end of stream", "found unexpected document indicator")
_MAPPING_IN_VALUE = "mapping values are not allowed in this context"
_DOCUMENT_START = re.compile(r"^---(?=[ \t\r\n]|\Z)", re.M)
_BREAK = re.compile("\r\n|[\n\r\x85\u2028\u2029]")  # line breaks as libyaml counts them
# What libyaml's reader refuses (YAML 1.1's printable set); surrogates cannot be encoded
_NOT_YAML = re.compile("[^\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_STARTS = frozenset((yaml.ScalarEvent, yaml.SequenceStartEvent, yaml.MappingStartEvent))
Loaded = tuple[int, object, dict, dict]  # index, data, marks, key marks of one document


def _scalar_tag(event: yaml.ScalarEvent) -> str | None:
    """The tag PyYAML's composer gives a scalar; None for plain data (the usual case)."""
    if event.tag is None or event.tag == "!":
        return _IMPLICIT_TAGS.get(event.value) if event.implicit[0] else None
    return event.tag


class _Window:
    """text[start:end] as a stream for libyaml, read a chunk at a time: no copy of the text."""

    def __init__(self, text: str, start: int, end: int):
        self.text, self.at, self.end = text, start, end

    def read(self, size: int) -> str:
        chunk = self.text[self.at:min(self.at + size, self.end)]
        self.at += len(chunk)
        return chunk


class _Frame:
    """An open collection: what it builds, where its values' positions go, how it joins its parent.

    `value` is a list, a dict, or None for the list of a `<<: [*a, *b]`; `target` is the mapping
    a merged mapping (or that list) goes into. `key` is the key whose value comes next (None:
    a key comes next; _MERGE: a `<<` value), `seen` the line of each key written."""

    __slots__ = ("anchor", "key", "key_marks", "marks", "merges", "pointer", "seen", "target",
                 "value")

    def __init__(self, value: list | dict | None, pointer: Pointer, marks: dict, key_marks: dict,
                 target: _Frame | None = None):
        self.value, self.pointer, self.marks, self.key_marks = value, pointer, marks, key_marks
        self.target = target
        self.key: object = None
        self.seen: dict[object, int] | None = {} if type(value) is dict else None
        self.merges: list[tuple[dict, dict, dict]] = []
        self.anchor: tuple[str, int, int, int] | None = None  # see `_Builder._define`


class _Builder:
    """The documents of one YAML text, built from libyaml's events without recursion.

    PyYAML's C composer recurses once per level (50,000 levels overflow the C stack) and
    expands aliases unbounded; here nesting is checked as it comes, aliases replay the events
    of their anchored value (so values keep the position where they are written) within a
    budget, and a broken document is dropped alone: parsing starts again at the next `---`.
    """

    def __init__(self, text: str, *, marks_only: bool = False):
        self.text = text
        self.marks_only = marks_only  # keep no data: the GC would walk it again and again
        self.loaded: list[Loaded] = []
        self.problems: list[_LoadError] = []
        self.expanded = 0  # nodes added by aliases, whole file
        self.index = -1
        self.start = self.line0 = 0  # where the current parse started: offset, lines before
        self._counted = self._line = self._line_start = 0  # see `_line_of`

    def run(self) -> _Builder:
        """Parse the text up to each character libyaml refuses (its reader would refuse the
        whole chunk around it, documents before it too), report it, go on after it."""
        text, start = self.text, 0
        while True:
            bad = _NOT_YAML.search(text, start)
            end = len(text) if bad is None else self._document_before(bad.start(), start)
            while start < end:
                resume = self._parse(start, end)
                if resume is None:
                    return self
                start = resume
            if bad is None:
                return self
            self.problems.append(self._character_error(bad.start()))
            found = _DOCUMENT_START.search(text, bad.start())
            if found is None:
                return self
            start = found.start()

    def _document_before(self, index: int, start: int) -> int:
        """Start of the document holding `index` (at least `start`)."""
        last = start
        for found in _DOCUMENT_START.finditer(self.text, start + 1, index):
            last = found.start()
        return last

    def _parse(self, start: int, end: int) -> int | None:
        """Build the documents of text[start:end]; where to go on from (None: stop the file)."""
        self.line0 = self._line_of(start)[0]
        self.start = start
        whole = start == 0 and end == len(self.text)
        try:
            events = iter(_Loader(self.text if whole else _Window(self.text, start, end))
                          .get_event, None)
            for event in events:
                if type(event) is yaml.DocumentStartEvent:
                    self._document(events)
            return end
        except _LoadError as exc:
            problem = exc.with_traceback(None)  # no cycle through the frames
        except yaml.MarkedYAMLError as exc:
            problem = self._syntax_error(exc)
        except yaml.YAMLError as exc:  # no position: nothing after it can be found
            problem = _LoadError(self.line0 + 1, 1, f"YAML error: {exc}")
        if type(problem) is not _Resync:
            self.problems.append(problem)
        if type(problem) is _Exhausted or problem.index < 0:
            return None
        # A `---` at column 1 always starts a document: it ends any block, and in a flow
        # collection or a quoted scalar it is itself an error.
        found = _DOCUMENT_START.search(self.text, max(problem.index, start + 1), end)
        return found.start() if found else end

    def _line_of(self, index: int) -> tuple[int, int]:
        """Line (from 0) of an offset and the offset its line starts at, breaks counted as
        libyaml counts them; offsets asked for only grow, so the text is counted once."""
        for found in _BREAK.finditer(self.text, self._counted, index):
            self._line += 1
            self._line_start = found.end()
        self._counted = index
        return self._line, self._line_start

    def _syntax_error(self, exc: yaml.MarkedYAMLError) -> _LoadError:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        if mark is None:
            return _LoadError(self.line0 + 1, 1, f"YAML syntax error: {problem}")
        opened = exc.context_mark
        if exc.context == "while scanning a quoted scalar" and opened is not None and \
                exc.problem in _UNCLOSED:  # the cause is where the quote opened, not the end
            index = self._offset(mark)
            quote = self.text[self._offset(opened):self._offset(opened) + 1]
            return _LoadError(opened.line + 1 + self.line0, opened.column + 1,
                              f"YAML syntax error: this quoted string is never closed; add the "
                              f"closing {quote} where the value ends", index)
        if exc.problem == _MAPPING_IN_VALUE and (fix := self._quote_hint(mark)):
            return _LoadError(mark.line + 1 + self.line0, mark.column + 1,
                              f"YAML syntax error: {fix}", self._offset(mark))
        if exc.problem and exc.context and opened and mark is not opened and \
                opened.line != mark.line:
            problem += (f" {exc.context} that starts at line {opened.line + 1 + self.line0}:"
                        f"{opened.column + 1}")
        index = self._offset(mark)
        if self.text[index:index + 1] == "\t":
            problem = "a tab cannot indent YAML; indent with spaces"
        return _LoadError(mark.line + 1 + self.line0, mark.column + 1,
                          f"YAML syntax error: {problem}", index)

    def _quote_hint(self, mark: yaml.Mark) -> str | None:
        """For `name: Support: Paris desk`: the `: ` in a plain value starts a mapping, where
        a mapping cannot be; say so and show the value quoted (None: not that case)."""
        index = self._offset(mark)
        start = self.text.rfind("\n", 0, index) + 1
        end = self.text.find("\n", index)
        line = self.text[start:len(self.text) if end < 0 else end].rstrip("\r")
        head = re.match(r"\s*(?:-\s+)*[^\s:#'\"][^:#]*?:\s+", line)
        if head is None or head.end() > index - start or line[index - start:index - start + 1] \
                != ":":
            return None
        value = re.sub(r"\s+#.*$", "", line[head.end():]).rstrip()
        if value[:1] in ("'", '"', "[", "{", "|", ">", "&", "*", "!"):
            return None
        quoted = json.dumps(value, ensure_ascii=False)
        return ("a colon followed by a space cannot be inside a plain value (it would start a "
                f"mapping); quote the value: {head.group().strip()} {clip(quoted)}")

    def _character_error(self, index: int) -> _LoadError:
        line, line_start = self._line_of(index)
        return _LoadError(line + 1, index - line_start + 1,
                          f"control character U+{ord(self.text[index]):04X} is not allowed in "
                          "YAML, not even quoted; remove it", index)

    def _error(self, event: yaml.Event, message: str,
               kind: type[_LoadError] = _LoadError) -> _LoadError:
        mark = event.start_mark
        return kind(mark.line + 1 + self.line0, mark.column + 1, message, self._offset(mark))

    def _offset(self, mark: yaml.Mark) -> int:
        """A mark's offset in the text (libyaml does not count a leading BOM)."""
        return self.start + mark.index + (self.start == 0 and self.text.startswith("\ufeff"))

    # --- one document ---------------------------------------------------------------------

    def _document(self, events: Iterator[yaml.Event]) -> None:
        """One document, up to its DocumentEndEvent; dropped, with its problem, if it has one."""
        self.index += 1
        try:
            self._build(events)
        except _LoadError as exc:
            if type(exc) is not _LoadError:
                raise
            self.problems.append(exc.with_traceback(None))
            self._drain(events)
            return
        data = None if self.marks_only else self.root
        self.loaded.append((self.index, data, self.marks, self.key_marks))

    def _drain(self, events: Iterator[yaml.Event]) -> None:
        """Read to the end of a dropped document, so that a syntax error in the rest is reported
        too; where it nests too deep to read fast, go on at the next `---` instead."""
        depth = 0
        for event in events:
            kind = type(event)
            if kind is yaml.DocumentEndEvent:
                return
            if kind is yaml.SequenceStartEvent or kind is yaml.MappingStartEvent:
                depth += 1
                if depth > MAX_DEPTH:
                    raise self._error(event, "", _Resync)
            elif kind is yaml.SequenceEndEvent or kind is yaml.MappingEndEvent:
                depth -= 1

    def _build(self, events: Iterator[yaml.Event]) -> None:
        self.marks: dict = {}
        self.key_marks: dict = {}
        self.root: object = None
        self.stack: list[_Frame] = []
        self.inputs = [events]  # the parser's events, then those of aliases being replayed
        self.anchors: dict[str, tuple[int, int, int, int]] = {}  # first, end, size, line
        self.open: dict[str, int] = {}  # anchors of collections still open: name -> line
        self.recorded: list[yaml.Event] = []  # events of anchored values, for their aliases
        self.truncated = False  # _RECORDED_MAX reached: later anchors cannot be used
        self.weight = 0  # nodes recorded so far, aliases counted as what they expand to
        on = _ON
        for event in events:
            kind = type(event)
            if kind is yaml.DocumentEndEvent:
                return
            if self.open or (kind in _STARTS and event.anchor):
                self._record(event)
            on[kind](self, event)
            if len(self.inputs) > 1:
                self._replay(event)

    def _replay(self, alias: yaml.AliasEvent) -> None:
        """The events of an alias's value (and of the aliases in it). A problem found here is
        the alias's (too deep where it is used, not a mapping after `<<`): the anchored value
        itself was checked where it is written."""
        inputs, on = self.inputs, _ON
        try:
            while len(inputs) > 1:
                event = next(inputs[-1], None)
                if event is None:
                    inputs.pop()
                else:
                    on[type(event)](self, event)
        except _LoadError as exc:
            raise self._error(alias, exc.message, type(exc)) from None

    def _record(self, event: yaml.Event) -> None:
        if len(self.recorded) < _RECORDED_MAX:
            self.recorded.append(event)
        else:
            self.truncated = True
        if type(event) is yaml.AliasEvent:
            span = self.anchors.get(event.anchor)
            self.weight += span[2] if span else 0
        elif type(event) in _STARTS:
            self.weight += 1

    def _define(self, event: yaml.NodeEvent) -> tuple[str, int, int, int]:
        """An anchor written here (not replayed), checked to be new: its name, first recorded
        event, the weight before it and its line."""
        name = event.anchor
        line = self.anchors[name][3] if name in self.anchors else self.open.get(name)
        if line is not None:
            raise self._error(event, f"anchor &{clip(name)} is already defined on line {line}; "
                                     "give each anchor its own name")
        return name, len(self.recorded) - 1, self.weight - 1, event.start_mark.line + 1 + self.line0

    def _close(self, anchor: tuple[str, int, int, int]) -> None:
        """The anchored value is complete: its aliases may use it."""
        name, first, weight, line = anchor
        self.open.pop(name, None)
        size = ALIAS_BUDGET + 1 if self.truncated else self.weight - weight
        self.anchors[name] = (first, len(self.recorded), size, line)

    def _replaying(self) -> bool:
        return len(self.inputs) > 1

    def _on_scalar(self, event: yaml.ScalarEvent) -> None:
        if event.anchor and not self._replaying():
            self._close(self._define(event))
        frame = self.stack[-1] if self.stack else None
        if frame is not None and frame.key is None and frame.seen is not None:
            self._key(frame, event)
            return
        if self._place(frame, event) is None:
            raise self._error(event, _MERGE_HINT)
        if event.tag is not None or (event.implicit[0] and event.value in _IMPLICIT_TAGS):
            tag = _scalar_tag(event)
            if tag == _MERGE_TAG:
                raise self._error(event, "`<<` merges only as a key (`<<: *name`); "
                                         'quote it ("<<") for the text')
            if tag is not None or event.tag is not None:
                raise self._error(event, _tag_message(event.tag or tag, event))
        self._attach(frame, _scalar(event.value, event.style))

    def _key(self, frame: _Frame, event: yaml.ScalarEvent) -> None:
        """A key is its text (`1:` is "1", `=:` is "="); a plain `<<` merges; explicit tags
        other than YAML's own are refused as they are on values."""
        key: object = event.value
        if event.tag is not None:  # a key is always text: nothing to quote
            raise self._error(event, _tag_message(event.tag))
        if key == "<<" and event.implicit[0]:
            key = _MERGE
        mark = event.start_mark
        seen = frame.seen
        assert seen is not None
        if key in seen:
            shown = "<<" if key is _MERGE else clip(event.value)
            raise self._error(event, f"duplicate key {shown!r} (first defined on line "
                                     f"{seen[key]}); remove one of them")
        line = mark.line + 1 + self.line0
        seen[key] = line
        if key is not _MERGE:
            frame.key_marks[(*frame.pointer, key)] = (line, mark.column + 1)
        frame.key = key

    def _place(self, frame: _Frame | None, event: yaml.NodeEvent) -> Pointer | None:
        """Check the depth and record where a new value stands: its pointer (None: merged)."""
        if len(self.stack) > MAX_DEPTH:
            raise self._error(event, f"nesting deeper than {MAX_DEPTH} levels; "
                                     "flatten the structure", _TooDeep)
        if frame is None:
            pointer: Pointer = ()
            marks = self.marks
        else:
            kind = type(frame.value)
            if kind is list:
                pointer = (*frame.pointer, len(frame.value))  # type: ignore[arg-type]
            elif kind is dict and frame.key is not _MERGE:
                pointer = (*frame.pointer, frame.key)  # type: ignore[arg-type]
            else:
                return None
            marks = frame.marks
        mark = event.start_mark
        marks[pointer] = (mark.line + 1 + self.line0, mark.column + 1)
        return pointer

    def _attach(self, frame: _Frame | None, value: object) -> None:
        if frame is None:
            self.root = value
        elif type(frame.value) is list:
            frame.value.append(value)  # type: ignore[union-attr]
        else:
            frame.value[frame.key] = value  # type: ignore[index]
            frame.key = None

    def _on_start(self, event: yaml.CollectionStartEvent) -> None:
        frame = self.stack[-1] if self.stack else None
        if frame is not None and frame.seen is not None and frame.key is None:
            raise self._error(event, "mapping keys must be plain strings")
        value: list | dict = [] if type(event) is yaml.SequenceStartEvent else {}
        pointer = self._place(frame, event)
        if event.tag is not None:
            raise self._error(event, _tag_message(event.tag))
        if pointer is None:
            new = self._merged(frame, event, value)  # type: ignore[arg-type]
        else:
            sink = frame or self
            new = _Frame(value, pointer, sink.marks, sink.key_marks)
        if event.anchor and not self._replaying():
            new.anchor = self._define(event)
            self.open[event.anchor] = new.anchor[3]
        self.stack.append(new)

    def _merged(self, frame: _Frame, event: yaml.Event, value: list | dict) -> _Frame:
        """A collection in a `<<` value: a mapping built apart, to be merged when its target
        closes, or the list of mappings of `<<: [*a, *b]`."""
        target = frame if type(frame.value) is dict else frame.target
        if type(value) is dict:
            return _Frame(value, (), {}, {}, target)
        if type(frame.value) is dict:
            return _Frame(None, (), {}, {}, target)
        raise self._error(event, _MERGE_HINT)

    def _on_end(self, event: yaml.CollectionEndEvent) -> None:
        frame = self.stack.pop()
        if frame.merges:
            _merge(frame)
        if frame.anchor is not None:
            self._close(frame.anchor)
        parent = self.stack[-1] if self.stack else None
        if frame.target is None:
            self._attach(parent, frame.value)
            return
        if type(frame.value) is dict:
            frame.target.merges.append((frame.value, frame.marks, frame.key_marks))
        if parent is frame.target:
            parent.key = None

    def _on_alias(self, event: yaml.AliasEvent) -> None:
        name = event.anchor
        span = self.anchors.get(name)
        if span is None:
            if name in self.open:
                raise self._error(event, f"alias *{clip(name)} is inside the value it names "
                                         f"(&{clip(name)}, line {self.open[name]}); "
                                         "a value cannot contain itself")
            raise self._error(event, f"alias *{clip(name)} has no anchor &{clip(name)} before "
                                     "it in this document (anchors do not reach across `---`)")
        first, end, size, _ = span
        if not self._replaying():
            self.expanded += size
            if self.expanded > ALIAS_BUDGET:
                raise self._error(
                    event, f"aliases expand this file to more than {ALIAS_BUDGET:,} values "
                           "(a \"billion laughs\"); the rest of the file is not read",
                    _Exhausted,
                )
        self.inputs.append(iter(self.recorded[first:end]))


# Event handlers, kept out of the instances (bound methods there would make each builder a
# reference cycle, freed only by the cyclic GC, which bundle loading pauses).
_ON = {
    yaml.ScalarEvent: _Builder._on_scalar,
    yaml.AliasEvent: _Builder._on_alias,
    yaml.SequenceStartEvent: _Builder._on_start,
    yaml.MappingStartEvent: _Builder._on_start,
    yaml.SequenceEndEvent: _Builder._on_end,
    yaml.MappingEndEvent: _Builder._on_end,
}


def _merge(frame: _Frame) -> None:
    """YAML merge keys: keys written in the mapping win, then earlier merged mappings."""
    data = frame.value
    assert type(data) is dict
    for source, marks, key_marks in frame.merges:
        taken = {k for k in source if k not in data}
        data.update((k, v) for k, v in source.items() if k in taken)
        for sink, found in ((frame.marks, marks), (frame.key_marks, key_marks)):
            for sub, mark in found.items():
                if sub and sub[0] in taken:
                    sink[(*frame.pointer, *sub)] = mark


def _tag_message(tag: str, scalar: yaml.ScalarEvent | None = None) -> str:
    """Every tag is refused, YAML's own (`!!str`) too: a policy is plain data, and quotes say
    "text" in every YAML reader; `!!int "5"` or `!!bool yes` would read unlike the schema."""
    shown = "!!" + tag.removeprefix(_YAML_TAG) if tag.startswith(_YAML_TAG) else tag
    message = f"tag {clip(shown)!r} is not allowed: policy files hold plain data only"
    if scalar is None:
        return f"{message}; remove it"
    quoted = json.dumps(clip(scalar.value, 40), ensure_ascii=False)
    return f"{message}; remove it, and quote the value ({quoted}) for text"


def load_text(text: str, display: str, *, fast: bool = True
              ) -> tuple[list[Document], list[Diagnostic]]:
    """Documents of one YAML text, and a located diagnostic for each one that did not load."""
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
    built = _Builder(text).run()
    docs: list[Document] = []
    diags = [Diagnostic(display, p.line, p.col, p.message) for p in built.problems]
    for index, data, marks, key_marks in built.loaded:
        if type(data) is dict:
            docs.append(Document(display, index, data, marks, key_marks))
        elif data is not None:
            line, col = marks[()]
            diags.append(Diagnostic(display, line, col,
                                    "a policy document must be a mapping with a `kind`"))
    if not docs and not diags:
        return [], [Diagnostic(display, 1, 1, _EMPTY)]
    return docs, diags


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
# yaml-rs recurses once per nesting level and crashes (SIGSEGV) near 10,000 block levels; it
# refuses flow nesting past 256 itself. A block collection starts further right than the one
# two levels up, where a line's indentation and `- `, `? `, `: ` indicators end: text in which
# these stay left of column 2 * MAX_DEPTH nests at most ~4 * MAX_DEPTH block levels (plus 256
# flow levels: far from the crash, even on a 512 KiB thread stack).
_DEEP_BLOCK = re.compile(rf"\n[ ?:-]{{{2 * MAX_DEPTH}}}")  # "\n" first: a fast scan
_CONTENT = re.compile(r"^[ ]*[^ #\n]", re.M)


def _unsafe(text: str) -> bool:
    if not text.endswith("\n") or "<<" in text or "\\" in text:
        return True
    if _DEEP_BLOCK.search(text) or _DEEP_BLOCK.match("\n" + text[: 2 * MAX_DEPTH]):
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
    mine = _scalar(token, None)
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
            for i, _, marks, key_marks in _Builder(text, marks_only=True).run().loaded:
                self._docs[i] = (marks, key_marks)
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
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):  # a FIFO would block the read forever
            return [], [Diagnostic(display, 1, 1, _not_regular(info.st_mode))]
        size = info.st_size
        if size > MAX_FILE_BYTES:
            return [], [Diagnostic(
                display, 1, 1,
                f"file is {size} bytes; policy files are limited to {MAX_FILE_BYTES} bytes",
            )]
        raw = path.read_bytes()
    except OSError as exc:
        return [], [Diagnostic(display, 1, 1, _unreadable(path, exc))]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        return [], [Diagnostic(display, line, col, "file is not UTF-8 text; save it as UTF-8")]
    return load_text(text, display)


def display_path(path: Path) -> str:
    """Paths in messages: relative to the working directory when under it (a link keeps its
    own name: it is what the author sees in the bundle)."""
    cwd = Path.cwd().resolve()
    for absolute in (Path(os.path.abspath(path)), Path(os.path.realpath(path.parent), path.name)):
        try:
            return str(absolute.relative_to(cwd))
        except ValueError:
            pass
    return str(path)


def _not_regular(mode: int) -> str:
    kinds = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
             (stat.S_ISDIR, "a directory"))
    what = next((noun for test, noun in kinds if test(mode)), "not a regular file")
    return f"{what}, not a regular file; a policy file must be a regular file (or a link to one)"


def _unreadable(path: Path, exc: OSError) -> str:
    """Why a bundle entry cannot be read, in words: a broken link names where it points."""
    target = _link_target(path)
    if target is not None and exc.errno == errno.ELOOP:
        return (f"symlink loop: the link to {target} leads back to itself; fix the link or "
                "remove it")
    if target is not None and isinstance(exc, FileNotFoundError):
        return f"dangling symlink: it points at {target}, which does not exist; fix the link " \
               "or remove it"
    return f"cannot read file: {exc.strerror}"


def _link_target(path: Path) -> str | None:
    try:
        return os.readlink(path)
    except OSError:
        return None


@dataclass(frozen=True)
class BundleEntries:
    """What a bundle directory holds: the files to read, and entries that cannot be read."""

    files: list[Path]  # regular files and links to them, each real file once, sorted
    broken: list[tuple[Path, str]]  # (entry, why): reported by every reader, never skipped


def _within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def walk_bundle(root: Path) -> BundleEntries:
    """Every file under root but hidden ones: a name starting with `.` anywhere below root
    (.git/, .github/workflows/ci.yml, .editor.yaml) is never policy, nor walked into.

    Links are followed when they stay inside the bundle (a Kubernetes ConfigMap's
    `plans.yaml -> ..data/plans.yaml` too); a file reached by several paths is read once.
    A dangling link, a link loop, a link to a directory that contains it and a link out of
    the bundle are `broken` (the caller reports those with a policy file's name or that
    lead to directories), as are FIFOs, sockets and devices.
    """
    top = root.resolve()
    found: list[tuple[bool, Path, Path]] = []  # (reached through a link, path, real path)
    broken: list[tuple[Path, str]] = []
    seen = {top}
    pending = [(root, top, False)]
    while pending:
        folder, real_folder, linked = pending.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            broken.append((folder, f"cannot read directory: {exc.strerror}"))
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = Path(folder, entry.name)
            try:
                info = path.stat()  # follows links
            except OSError as exc:
                broken.append((path, _unreadable(path, exc)))
                continue
            real = path.resolve() if entry.is_symlink() else real_folder / entry.name
            if not _within(real, top):
                broken.append((path, f"symlink to {real}, outside the bundle: policy is only "
                                     "read from inside the bundle directory; copy the file in"))
            elif stat.S_ISDIR(info.st_mode):
                if _within(real_folder, real):
                    broken.append((path, f"symlink loop: the link to {_link_target(path)} "
                                         "leads to a directory that contains it; remove it"))
                elif real not in seen:
                    seen.add(real)
                    pending.append((path, real, linked or entry.is_symlink()))
            elif not stat.S_ISREG(info.st_mode):
                broken.append((path, _not_regular(info.st_mode)))
            else:
                found.append((linked or entry.is_symlink(), path, real))
    files: dict[Path, Path] = {}  # real path -> its own path, else the first link to it
    for _, path, real in sorted(found):
        files.setdefault(real, path)
    return BundleEntries(sorted(files.values()), sorted(broken))


def bundle_files(root: Path) -> list[Path]:
    """The readable files of a bundle (see `walk_bundle`)."""
    return walk_bundle(root).files


def is_policy_name(path: Path) -> bool:
    return path.name.endswith(POLICY_SUFFIXES) and not path.name.endswith(SUITE_SUFFIXES)


def policy_files(root: Path) -> list[Path]:
    """Every policy file under root, sorted; test suites are not policy."""
    return [p for p in bundle_files(root) if is_policy_name(p)]


def bundle_problems(entries: BundleEntries) -> list[Diagnostic]:
    """A located error for each entry that holds, or may hold, policy and cannot be read:
    one named as policy or a suite, a directory, or any broken link (it may have led to a
    directory)."""
    return [
        Diagnostic(display_path(path), 1, 1, why) for path, why in entries.broken
        if path.name.endswith(POLICY_SUFFIXES) or path.is_dir() or not path.exists()
    ]


def load_bundle_files(root: Path) -> tuple[list[Document], list[Diagnostic], list[Path]]:
    entries = walk_bundle(root)
    documents: list[Document] = []
    diagnostics = bundle_problems(entries)
    files = [p for p in entries.files if is_policy_name(p)]
    for path in files:
        docs, diags = load_file(path)
        documents += docs
        diagnostics += diags
    return documents, diagnostics, files
