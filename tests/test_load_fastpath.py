"""The fast loader (yaml-rs) reads exactly what the reference loader (PyYAML) reads, or
declines; jsonschema-rs accepts only what jsonschema accepts; sources stay where they were."""

from __future__ import annotations

import copy
import json
import pickle
import re
from pathlib import Path

import pytest
import yaml_rs
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from entitle.engine import load as load_module
from entitle.engine.bundle import load_policy, revision_of
from entitle.engine.load import _FLOAT, fast_documents, load_file, load_text
from entitle.engine.model import Source
from entitle.engine.schema_errors import schema_validator
from entitle.engine.validate import KINDS

ROOT = Path(__file__).resolve().parent.parent
def _is_utf8(path: Path) -> bool:
    try:
        path.read_text(encoding="utf-8")
    except UnicodeDecodeError:  # the broken-bundle corpus holds a Latin-1 file on purpose
        return False
    return True


YAML_FILES = sorted(
    p for base in ("policies", "tests/fixtures") for p in (ROOT / base).rglob("*")
    if p.suffix in (".yaml", ".yml") and _is_utf8(p)
)


def _shape(docs: list) -> list:
    """Data with types made visible (True vs 1, 1 vs 1.0 compare equal in Python)."""
    return [(d.index, json.dumps(d.data, sort_keys=True)) for d in docs]


def assert_same_or_declined(text: str) -> None:
    reference, ref_diags = load_text(text, "x.yaml", fast=False)
    found = fast_documents(text)
    if found is None:
        return
    fast, diags = load_text(text, "x.yaml")
    assert diags == ref_diags, (text, found)
    assert not diags or diags[0].message.startswith("empty file"), text
    assert _shape(fast) == _shape(reference), text
    for f, r in zip(fast, reference, strict=True):
        # the lazy positions are the reference's, and the cheap `kind` hint agrees with them
        assert f.locate(("kind",), key=True) == r.locate(("kind",), key=True)
        assert dict(f.marks) == dict(r.marks)
        assert dict(f.key_marks) == dict(r.key_marks)


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_checked_in_file_loads_the_same(path: Path) -> None:
    assert_same_or_declined(path.read_text(encoding="utf-8"))


def test_the_example_bundle_takes_the_fast_path() -> None:
    policy_files = [p for p in YAML_FILES if "policies" in p.parts and "tests" not in p.parts]
    assert policy_files
    assert all(fast_documents(p.read_text()) is not None for p in policy_files)


def test_the_example_bundle_compiles_to_the_same_policy_and_sources(monkeypatch) -> None:
    fast, _ = load_policy(ROOT / "policies")
    monkeypatch.setattr(load_module, "fast_documents", lambda text: None)
    reference, _ = load_policy(ROOT / "policies")
    assert fast is not None and reference is not None
    assert fast.revision == reference.revision
    for attr in ("calendars", "slas", "plans", "contracts"):
        got, want = getattr(fast, attr), getattr(reference, attr)
        assert dict(got) == dict(want)
        assert [str(v.source) for v in got.values()] == [str(v.source) for v in want.values()]
    rules = [(r.name, str(r.source)) for s in fast.slas.values() for r in s.rules]
    assert rules == [(r.name, str(r.source)) for s in reference.slas.values() for r in s.rules]


# Scalars where YAML 1.1, YAML 1.2 and this loader's JSON-like rules disagree.
TRICKY = [
    "0x1F", "0X1f", "0o17", "0O17", "0b101", "012", "00", "-0", "+0", "+12", "-7", "1_000", "_1",
    "1_", "1.", ".5", "+.5", "-.5e-3", "1e3", "1E+3", "1.5e_3", "1e999", "99999999999999999999999",
    ".inf", "-.Inf", ".NaN", ".nan", "inf", "nan", "true", "True", "TRUE", "tRue", "false",
    "False", "FALSE", "yes", "no", "on", "off", "y", "n", "~", "null", "Null", "NULL", "nUll",
    "2026-12-25", "2026-12-25T10:00:00Z", "2026-1-1", "09:00", "1:20", "190:20:30",
    "09:00-17:00", "30m", "1.5h", "-", ".", "..", "+", "_", "٣", "١٢", "é", "ß", "\u2028",
    "x y", "a#b", "a #b", "R&D", "a*b", "a!b", "&a", "*a", "!a", "!!str 5", "!!int 5", "<<",
    "%x", "@x", "`x", "a: b", "a:b", "[a]", "{a: b}", "-x", "?x", ": x", "x:", "'", '"', "\\",
    "\t", "\x07", "\x85", "\ufeff", "kind", "Plan", "", " ",
]


def _quoted(s: str, style: str) -> str:
    if style == "'":
        return "'" + s.replace("'", "''") + "'"
    if style == '"':
        return json.dumps(s)
    return s


# Most generated files should be ones the fast path takes, or the comparison is vacuous.
FALLS_BACK = re.compile(r"[^\n\x20-\x7e]|[&*!%\\]|<<")
scalars = st.tuples(
    st.one_of(
        st.sampled_from([t for t in TRICKY if not FALLS_BACK.search(t)]),
        st.sampled_from([t for t in TRICKY if not FALLS_BACK.search(t)]),
        st.sampled_from(TRICKY),
        st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=8),
        st.text(st.characters(exclude_categories=("Cs", "Cc")), max_size=6),
    ),
    st.sampled_from(["", "", "'", '"']),
).map(lambda t: _quoted(*t))
keys = st.one_of(st.sampled_from(["kind", "id", "a", "b", "1", "true", "~", "<<", "a b"]),
                 scalars)


@st.composite
def block(draw, indent: int = 0, depth: int = 0) -> str:
    lines = []
    for _ in range(draw(st.integers(1, 4))):
        key = draw(keys)
        pad = " " * indent
        form = draw(st.sampled_from(["scalar", "scalar", "flow-list", "flow-map", "block",
                                     "list", "comment", "literal", "folded-plain",
                                     "list-of-maps"]))
        if form == "scalar":
            comment = draw(st.sampled_from(["", "", " # note", " #"]))
            lines.append(f"{pad}{key}: {draw(scalars)}{comment}")
        elif form == "literal":
            style = draw(st.sampled_from(["|", ">", "|-", ">+", "|2"]))
            body = draw(st.lists(st.sampled_from(["a", "b c", "", "  d", "0x1F", "---x"]),
                                 min_size=1, max_size=3))
            lines.append(f"{pad}{key}: {style}")
            lines += [f"{pad}  {b}" if b else "" for b in body]
        elif form == "folded-plain":
            lines.append(f"{pad}{key}: {draw(scalars)}")
            lines.append(f"{pad}  {draw(scalars)}")
        elif form == "list-of-maps" and depth < 3:
            lines.append(f"{pad}{key}:")
            lines.append(f"{pad}  - " + draw(block(indent + 4, depth + 1)).lstrip())
        elif form == "flow-list":
            items = draw(st.lists(scalars, max_size=3))
            lines.append(f"{pad}{key}: [{', '.join(items)}]")
        elif form == "flow-map":
            pairs = draw(st.lists(st.tuples(keys, scalars), max_size=3))
            lines.append(f"{pad}{key}: {{{', '.join(f'{k}: {v}' for k, v in pairs)}}}")
        elif form == "block" and depth < 3:
            lines.append(f"{pad}{key}:")
            lines.append(draw(block(indent + 2, depth + 1)))
        elif form == "list":
            lines.append(f"{pad}{key}:")
            for item in draw(st.lists(scalars, min_size=1, max_size=3)):
                lines.append(f"{pad}  - {item}")
        else:
            lines.append(f"{pad}# {draw(scalars)}")
    return "\n".join(lines)


@st.composite
def yaml_texts(draw) -> str:
    docs = draw(st.lists(st.one_of(block(), block(), block(), scalars, st.just("")),
                         min_size=1, max_size=3))
    head = draw(st.sampled_from(["", "---\n", "# c\n", "# c\n---\n"]))
    seps = draw(st.sampled_from(["---\n", "--- # x\n", "---\n\n"]))
    text = head + seps.join(d + "\n" if d else "" for d in docs)
    return text.rstrip("\n") if draw(st.integers(0, 9)) == 0 else text


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(yaml_texts())
@example("kind: Plan\nlimit: 0x1F\n")
@example("kind: Plan\nlimit: 012\n")
@example("kind: Plan\nx: [1, 0o17]\n")
@example("kind: Plan\nx: {a: .inf}\n")
@example("kind: Plan\n1: x\n")
@example("kind: Plan\na: 1\na: 2\n")
@example("kind: Plan\na: &x 1\nb: *x\n")
@example("kind: Plan\n<<: {a: 1}\n")
@example("kind: Plan\na: !foo 1\n")
@example("kind: Plan\na:\tb\n")
@example("kind: Plan\r\na: b\r\n")
@example("\ufeffkind: Plan\n")
@example("- kind: Plan\n")
@example("---\n- kind: Plan\n")
@example("kind: Plan\n---\n- a\n")
@example("kind: Plan\n...\n---\nkind: Sla\n")
@example("%YAML 1.1\n---\nkind: Plan\n")
@example("kind: Plan\nn: ٣\n")
@example("kind: [x:]\n")
@example("kind: [?x]\n")
@example("kind: [=]\n")
@example("kind: [\u2028]\n")
@example('kind: "\\ud800\\udc00"\n')
@example("kind: Plan\nx: \"a\\/b\\x41\"\n")
@example("---\n---\nkind: Plan\n---\n")
@example("--- {kind: Plan}\n")
@example("# c\n\nkind: Plan\n---\n  kind: Sla\n")
@example("".join("a:\n" + " " * (2 * i + 2) for i in range(70)) + "x\n")
def test_generated_yaml_loads_the_same_or_falls_back(text: str) -> None:
    assert_same_or_declined(text)


def test_the_fast_path_never_hands_yaml_rs_block_nesting_it_would_crash_on() -> None:
    """yaml-rs recurses once per level (SIGSEGV near 10,000 block levels, 8 MiB stack)."""
    for text in ("k:\n  " + "- " * 50_000 + "x\n",
                 "- " * 50_000 + "x\n",
                 "k:\n" + "".join(" " * i + "- a:\n" for i in range(0, 400, 2)) + "  x\n"):
        assert fast_documents(text) is None
    assert fast_documents("k:\n  " + "- " * 60 + "x\n") is not None


ALIASED = [  # (text with aliases or merge keys, the same data written out)
    ("kind: Sla\nt:\n  high: &f {a: 1h, b: 8h}\n  urgent: *f\n",
     "kind: Sla\nt:\n  high: {a: 1h, b: 8h}\n  urgent: {a: 1h, b: 8h}\n"),
    ("kind: Sla\nt:\n  high: &f {a: 1h, b: 8h}\n  urgent:\n    <<: *f\n    b: 4h\n",
     "kind: Sla\nt:\n  high: {a: 1h, b: 8h}\n  urgent: {a: 1h, b: 4h}\n"),
    ("kind: X\nd: [&a {x: 1, y: 2}, &b {y: 3, z: 4}]\ne: {z: 9, <<: [*a, *b]}\n",
     "kind: X\nd: [{x: 1, y: 2}, {y: 3, z: 4}]\ne: {x: 1, y: 2, z: 9}\n"),
    ("kind: X\nh: &w [\"09:00-17:00\"]\ni: [*w, *w]\n",
     "kind: X\nh: [\"09:00-17:00\"]\ni: [[\"09:00-17:00\"], [\"09:00-17:00\"]]\n"),
]


@pytest.mark.parametrize(("aliased", "written"), ALIASED)
def test_aliases_and_merges_give_the_data_written_out(aliased: str, written: str) -> None:
    """The fast path declines them; the reference path's data is the fast path's for the same
    data written without them."""
    assert fast_documents(aliased) is None
    reference, diags = load_text(aliased, "x.yaml")
    fast, _ = load_text(written, "x.yaml")
    assert diags == [] and fast_documents(written) is not None
    assert _shape(reference) == _shape(fast)


@given(st.from_regex(r"\A[-+]?([0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)([eE][-+]?[0-9]+)?\Z"))
def test_every_plain_number_the_reference_reads_is_a_number_to_yaml_rs(token: str) -> None:
    """What lets the fast path skip scanning files whose data has no number."""
    assert _FLOAT.match(token)
    assert type(yaml_rs.loads(f"k: {token}\n", parse_datetime=False)["k"]) in (int, float)


def test_problems_are_still_reported_by_the_reference_path(tmp_path: Path) -> None:
    cases = {
        "kind: Plan\nid: a\nid: b\n": (3, 1, "duplicate key 'id' (first defined on line 2)"),
        "kind: Plan\na: *x\n": (2, 4, "alias *x has no anchor &x before it"),
        "kind: Plan\na: &x [*x]\n": (2, 8, "alias *x is inside the value it names"),
        "kind: Plan\n<<: 1\n": (2, 5, "`<<` merges mappings"),
        "kind: Plan\na: !foo 1\n": (2, 4, "tag '!foo' is not allowed"),
        "- kind: Plan\n": (1, 1, "a policy document must be a mapping"),
        "# nothing\n": (1, 1, "empty file"),
        "kind: Plan\n\tid: a\n": (2, 1, "a tab cannot indent YAML; indent with spaces"),
        "".join("a:\n" + " " * (2 * i + 2) for i in range(70)) + "x\n": (66, 131, "nesting"),
    }
    for text, (line, col, words) in cases.items():
        docs, diags = load_text(text, "x.yaml")
        assert docs == [] and len(diags) == 1, text
        assert words in diags[0].message, (text, diags)
        assert (diags[0].line, diags[0].col) == (line, col), (text, diags)
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(b"kind: Plan\nname: caf\xe9\n")
    _, diags = load_file(bad, "latin1.yaml")
    assert [(d.line, d.col, d.message) for d in diags] == [
        (2, 10, "file is not UTF-8 text; save it as UTF-8")
    ]


def test_lazy_positions_read_the_file_once_and_only_when_asked(monkeypatch) -> None:
    calls = []
    real = load_module._Builder.run
    monkeypatch.setattr(load_module._Builder, "run", lambda self: calls.append(1) or real(self))
    docs, _ = load_text("kind: Plan\nid: a\n---\n# x\nkind: Plan\nid: b\nunit: [x]\n", "p.yaml")
    assert [d.locate(("kind",), key=True) for d in docs] == [(1, 1), (5, 1)]
    assert calls == []
    assert docs[1].locate(("unit", 0)) == (7, 8)
    assert docs[0].locate(("id",)) == (2, 5)
    assert calls == [1]


def test_lazy_sources_compare_hash_copy_and_pickle_like_plain_ones() -> None:
    lazy = Source.lazy("slas.yaml", lambda: (12, 5))
    plain = Source("slas.yaml", 12, 5)
    assert copy.deepcopy(Source.lazy("slas.yaml", lambda: (12, 5))) == plain
    assert pickle.loads(pickle.dumps(Source.lazy("slas.yaml", lambda: (12, 5)))) == plain
    assert lazy == plain and hash(lazy) == hash(plain) and str(lazy) == "slas.yaml:12:5"
    assert repr(lazy) == repr(plain)


def test_revision_is_unchanged_by_the_one_shot_encoder() -> None:
    docs, _ = load_text((ROOT / "policies" / "plans.yaml").read_text(), "plans.yaml")
    import hashlib

    digest = hashlib.sha256()
    for doc in sorted(docs, key=lambda d: (d.path, d.index)):
        digest.update(json.dumps([doc.path, doc.index, doc.data], sort_keys=True).encode())
    assert revision_of(docs) == digest.hexdigest()


# --- jsonschema-rs must never accept what jsonschema rejects ----------------------------------

def _policy_documents() -> list:
    out = []
    for path in YAML_FILES:
        docs, _ = load_text(path.read_text(), str(path))
        out += [d.data for d in docs if d.data.get("kind") in KINDS]
    return out


POLICY_DOCS = _policy_documents()
LEAVES = [None, True, False, 0, 1, -1, 1.5, 10**20, "", "x", "2026-02-30", "2026-13-01",
          "2026-02-28", "２０２６-01-01", "٢٠٢٦-01-01", "09:00-17:00", "9:00-17:00", "24:00-24:00",
          "1h", "1.5h", "٣h", "Europe/Berlin", "*", "a" * 200, [], {}, ["x"], {"a": 1}]


def _paths(value: object, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


@st.composite
def mutated_documents(draw) -> dict:
    doc = copy.deepcopy(draw(st.sampled_from(POLICY_DOCS)))
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(doc)[1:] if p != ("kind",)]
        if not paths:  # a small document with every field deleted
            break
        path = draw(st.sampled_from(paths))
        parent = doc
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["set", "set", "delete", "add"]))
        if action == "set":
            parent[path[-1]] = copy.deepcopy(draw(st.sampled_from(LEAVES)))
        elif action == "delete" and isinstance(parent, dict):
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.sampled_from(["extra", "nmae", "id"]))] = copy.deepcopy(
                draw(st.sampled_from(LEAVES))
            )
    return doc


@pytest.mark.skipif(not POLICY_DOCS, reason="no policy documents")
@settings(max_examples=500, deadline=None, suppress_health_check=list(HealthCheck))
@given(mutated_documents())
def test_jsonschema_rs_never_passes_what_jsonschema_rejects(doc: dict) -> None:
    kind = doc.get("kind")
    if kind not in KINDS:
        return
    check = schema_validator(KINDS[kind])
    if check is None:
        return
    # jsonschema-rs may be stricter (its \d is ASCII: then jsonschema is asked and finds
    # nothing, the same diagnostics); it must never pass what jsonschema rejects.
    if check.is_valid(doc):
        assert check.reference.is_valid(doc), doc
    assert [e.message for e in check.iter_errors(doc)] == [
        e.message for e in check.reference.iter_errors(doc)
    ]


def test_fixture_documents_agree_with_jsonschema() -> None:
    for data in POLICY_DOCS:
        check = schema_validator(KINDS[data["kind"]])
        if check is not None:
            assert check.is_valid(data) == check.reference.is_valid(data), data

