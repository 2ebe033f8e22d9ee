"""Hostile and broken YAML: bounded, located, and a broken document never hides the others."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from entitle.engine.load import ALIAS_BUDGET, MAX_DEPTH, load_text, policy_files

LEVELS = 50_000
DEEP = {  # nesting 50,000 levels deep, and where level MAX_DEPTH + 1 starts (line, col)
    "flow list": ("name: " + "[" * LEVELS + "]" * LEVELS + "\n", (3, 7 + MAX_DEPTH)),
    "flow map": ("name: " + "{a: " * LEVELS + "1" + "}" * LEVELS + "\n", (3, 7 + 4 * MAX_DEPTH)),
    "block list": ("name:\n  " + "- " * LEVELS + "x\n", (4, 3 + 2 * MAX_DEPTH)),
    "block map": ("name:\n" + "".join(" " * i + "a:\n" for i in range(1, 200)) + " " * 200
                  + "x\n", (MAX_DEPTH + 4, MAX_DEPTH + 2)),
}


def _diags(text: str) -> list[tuple[int, int, str]]:
    return [(d.line, d.col, d.message) for d in load_text(text, "x.yaml")[1]]


def _kinds(text: str) -> list[str]:
    return [d.data["kind"] for d in load_text(text, "x.yaml")[0]]


@pytest.mark.timeout(60)  # a hang guard, not a speed claim (bench/ measures speed)
@pytest.mark.parametrize("style", DEEP)
def test_deep_nesting_is_reported_where_the_limit_is_crossed(style: str) -> None:
    body, (line, col) = DEEP[style]
    diags = _diags("kind: Plan\nid: x\n" + body + "---\nkind: Sla\n")
    assert diags == [(line, col, f"nesting deeper than {MAX_DEPTH} levels; flatten the structure")]
    assert _kinds("kind: Plan\nid: x\n" + body + "---\nkind: Sla\n") == ["Sla"]


def test_deep_nesting_in_a_small_stack_thread_does_not_crash() -> None:
    """The server's hot reload loads in a thread: no recursion on either path."""
    done: list[list] = []
    threading.stack_size(512 * 1024)
    try:
        worker = threading.Thread(target=lambda: done.append([
            load_text("kind: Plan\nid: x\n" + body, "x.yaml")[1] for body, _ in DEEP.values()
        ]))
        worker.start()
        worker.join()
    finally:
        threading.stack_size(0)
    assert [len(diags) for diags in done[0]] == [1] * len(DEEP)


def test_nesting_limit_is_exact() -> None:
    inside = "k: " + "[" * (MAX_DEPTH - 1) + "1" + "]" * (MAX_DEPTH - 1) + "\n"
    assert _diags(inside) == []
    over = "k: " + "[" * MAX_DEPTH + "1" + "]" * MAX_DEPTH + "\n"
    assert [(line, col) for line, col, _ in _diags(over)] == [(1, 4 + MAX_DEPTH)]


def test_nesting_through_an_alias_is_reported_at_the_alias() -> None:
    text = "kind: X\na: &a " + "[" * 40 + "]" * 40 + "\nb: " + "[" * 30 + "*a" + "]" * 30 + "\n"
    assert [(line, col) for line, col, _ in _diags(text)] == [(3, 34)]


@pytest.mark.timeout(60)  # a hang guard: the expansion budget is what is asserted
def test_billion_laughs_is_refused_at_the_alias_that_crosses_the_budget() -> None:
    rows = ["kind: Calendar", "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        rows.append(f"{name}: &{name} [{', '.join(['*' + prev] * 10)}]")
    docs, diags = load_text("\n".join(rows) + "\n", "laughs.yaml")
    assert docs == [] and [(d.line, d.col) for d in diags] == [(6, 36)]
    assert f"more than {ALIAS_BUDGET:,} values" in diags[0].message


def test_alias_budget_is_per_file_and_stops_reading_it() -> None:
    doc = "kind: X\na: &a [" + ", ".join(["x"] * 999) + "]\nb: [" + ", ".join(["*a"] * 60) + "]\n"
    docs, diags = load_text(doc + "---\n" + doc + "---\nkind: Y\n", "x.yaml")
    assert [d.index for d in docs] == [0] and [d.line for d in diags] == [7]


# --- anchors, aliases and merge keys ----------------------------------------------------------

def test_aliases_and_merges_load_with_positions_where_values_are_written() -> None:
    text = ("kind: Sla\n"
            "targets:\n"
            "  high: &fast {first_response: 1h, resolution: 8h}\n"
            "  urgent:\n"
            "    <<: *fast\n"
            "    resolution: 4h\n"
            "  low: *fast\n")
    [doc], diags = load_text(text, "sla.yaml")
    assert diags == []
    assert doc.data["targets"]["urgent"] == {"resolution": "4h", "first_response": "1h"}
    assert doc.locate(("targets", "urgent", "resolution")) == (6, 17)  # written here
    assert doc.locate(("targets", "urgent", "first_response")) == (3, 32)  # merged from &fast
    assert doc.locate(("targets", "urgent", "first_response"), key=True) == (3, 16)
    assert doc.locate(("targets", "low", "resolution")) == (3, 48)
    assert doc.locate(("targets", "low")) == (3, 9)


def test_merge_precedence_follows_yaml_1_1() -> None:
    text = ("kind: X\n"
            "d: [&a {x: a, y: a}, &b {y: b, z: b}, &c {<<: *b, w: c}]\n"
            "e: {z: e, <<: [*a, *c]}\n")
    [doc], diags = load_text(text, "x.yaml")
    assert diags == []
    assert doc.data["e"] == {"z": "e", "x": "a", "y": "a", "w": "c"}


@pytest.mark.parametrize(("text", "where", "words"), [
    ("kind: X\na: {<<: {x: 1}, <<: {y: 1}}\n", (2, 17), "duplicate key '<<'"),
    ("kind: X\nd: &d {x: 1}\na: {<<: *d, x: 2, x: 3}\n", (3, 19), "duplicate key 'x'"),
    ("kind: X\na: &a 1\nb: {<<: *a}\n", (3, 9), "`<<` merges mappings"),
    ("kind: X\na: &a [1]\nb: {<<: [*a]}\n", (3, 10), "`<<` merges mappings"),
    ("kind: X\na: <<\n", (2, 4), "`<<` merges only as a key"),
    ("kind: X\na: &a {b: 1, <<: *a}\n", (2, 18), "alias *a is inside the value it names"),
    ("kind: X\na: &a 1\nb: &a 2\n", (3, 4), "anchor &a is already defined on line 2"),
    ("kind: X\na: &a 1\n---\nkind: Y\nb: *a\n", (5, 4), "alias *a has no anchor &a"),
    ("kind: X\nk: &k [a]\n*k : 5\n", (3, 1), "mapping keys must be plain strings"),
])
def test_alias_and_merge_mistakes_are_located(text: str, where: tuple[int, int],
                                              words: str) -> None:
    diags = _diags(text)
    assert [(line, col) for line, col, _ in diags] == [where], diags
    assert words in diags[0][2]


_WORDS = st.sampled_from(["a", "b", "c", "d", "e"])
_VALUES = st.one_of(_WORDS.map(lambda w: w * 2), st.integers(0, 99).map(str))


@st.composite
def merging_documents(draw) -> str:
    """Anchored mappings, then mappings that merge some of them and write some keys."""
    lines = ["kind: X"]
    anchors: list[str] = []
    for i in range(draw(st.integers(1, 4))):
        pairs = draw(st.dictionaries(_WORDS, _VALUES, max_size=4))
        body = [f"{k}: {v}" for k, v in pairs.items()]
        if anchors and draw(st.booleans()):
            body.insert(draw(st.integers(0, len(body))), f"<<: *{draw(st.sampled_from(anchors))}")
        lines.append(f"d{i}: &n{i} {{{', '.join(body)}}}")
        anchors.append(f"n{i}")
    for i in range(draw(st.integers(1, 3))):
        used = draw(st.lists(st.sampled_from(anchors), min_size=1, max_size=3))
        merge = f"*{used[0]}" if len(used) == 1 else "[" + ", ".join(f"*{a}" for a in used) + "]"
        body = [f"{k}: {v}" for k, v in draw(st.dictionaries(_WORDS, _VALUES, max_size=3)).items()]
        body.insert(draw(st.integers(0, len(body))), f"<<: {merge}")
        lines.append(f"m{i}: {{{', '.join(body)}}}")
    return "\n".join(lines) + "\n"


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(merging_documents())
def test_merges_read_as_pyyaml_reads_them(text: str) -> None:
    """PyYAML's own (pure Python) constructor implements YAML 1.1 merges: the same data."""
    [doc], diags = load_text(text, "x.yaml")
    assert diags == []
    assert doc.data == yaml.load(text, Loader=yaml.SafeLoader)


# --- a broken document drops only itself ------------------------------------------------------

def test_a_duplicate_key_does_not_hide_the_documents_before_or_after_it() -> None:
    text = ("kind: A\n---\nkind: B\ntype: pakc\n---\nkind: C\nlimit: 1\nlimit: 2\n---\n"
            "kind: D\n")
    assert _kinds(text) == ["A", "B", "D"]
    assert [(line, col) for line, col, _ in _diags(text)] == [(8, 1)]


def test_a_list_document_does_not_hide_the_others() -> None:
    text = "kind: A\n---\n- kind: B\n---\nkind: C\n"
    assert _kinds(text) == ["A", "C"]
    assert _diags(text) == [(3, 1, "a policy document must be a mapping with a `kind`")]


def test_after_a_syntax_error_reading_goes_on_at_the_next_document() -> None:
    text = ("kind: A\n---\nkind: B\nx: [1, 2\n---\nkind: C\n---\nkind: D\ny: a: b\n---\n"
            "kind: E\nz: \"open\n---\nkind: F\n")
    assert _kinds(text) == ["A", "C", "F"]
    assert [(line, col) for line, col, _ in _diags(text)] == [(5, 1), (9, 5), (12, 4)]


def test_a_syntax_error_after_another_problem_of_the_document_is_reported_too() -> None:
    diags = _diags("kind: A\nkind: 'B'\n  x\n")
    assert [(line, col) for line, col, _ in diags] == [(2, 1), (3, 3)]


def test_a_tab_that_indents_says_so() -> None:
    for text in ("kind: Calendar\nhours:\n\tmon: [x]\n", "a:\n  - x\n\t- y\n",
                 "\ufeffkind: A\nx:\n\tb: 1\n"):
        [(_, col, message)] = _diags(text)
        assert (col, message) == (1, "YAML syntax error: a tab cannot indent YAML; indent with "
                                      "spaces"), text


def test_a_control_character_is_located_and_hides_only_its_document() -> None:
    text = "kind: A\n---\nkind: B\nname: \"a\x01b\"\n---\nkind: C\nid: x\x00y\n---\nkind: D\n"
    assert _kinds(text) == ["A", "D"]
    assert _diags(text) == [
        (4, 9, "control character U+0001 is not allowed in YAML, not even quoted; remove it"),
        (7, 6, "control character U+0000 is not allowed in YAML, not even quoted; remove it"),
    ]


def test_echoed_keys_are_clipped() -> None:
    key = "k" * 1000
    [(_, _, message)] = _diags(f"kind: X\n{key}: 1\n{key}: 2\n")
    assert len(message) < 160 and "k…'" in message


# --- what a bundle is -------------------------------------------------------------------------

def test_hidden_files_and_directories_are_not_policy(tmp_path: Path) -> None:
    for name in ("plan.yaml", "sub/sla.yml", ".github/workflows/ci.yml", ".git/x.yaml",
                 "sub/.cache/y.yaml", ".hidden.yaml", "sub/plan_test.yaml"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("kind: Plan\n")
    found = [p.relative_to(tmp_path).as_posix() for p in policy_files(tmp_path)]
    assert found == ["plan.yaml", "sub/sla.yml"]
    hidden_root = tmp_path / ".bundle"
    (hidden_root / "plan.yaml").parent.mkdir()
    (hidden_root / "plan.yaml").write_text("kind: Plan\n")
    assert policy_files(hidden_root) == [hidden_root / "plan.yaml"]  # only below the root


# --- syntax errors said at their cause ------------------------------------------------------

CAUSES = {  # text -> (line, col, message) of its one error, the same on both load paths
    'kind: Plan\nid: "gold\nunit: incidents\nlimit: 5\n':
        (2, 5, 'YAML syntax error: this quoted string is never closed; add the closing " '
               "where the value ends"),
    "kind: Plan\nproducts: [mail, 'web]\nid: a\n---\nkind: Sla\nid: s\n":
        (2, 18, "YAML syntax error: this quoted string is never closed; add the closing ' "
                "where the value ends"),
    "kind: Calendar\nid: desk\nname: Support: Paris desk  # the desk\n":
        (3, 14, "YAML syntax error: a colon followed by a space cannot be inside a plain value "
                '(it would start a mapping); quote the value: name: "Support: Paris desk"'),
    "kind: Sla\nrules:\n  - name: VIP: gold\n":
        (3, 14, "YAML syntax error: a colon followed by a space cannot be inside a plain value "
                '(it would start a mapping); quote the value: - name: "VIP: gold"'),
    "kind: Contract\ncustomer: !!str 12345\n":
        (2, 11, "tag '!!str' is not allowed: policy files hold plain data only; remove it, and "
                'quote the value ("12345") for text'),
    "kind: Contract\ncustomer: ! 12345\n":
        (2, 11, "tag '!' is not allowed: policy files hold plain data only; remove it, and "
                'quote the value ("12345") for text'),
    "kind: Contract\nproducts: !!seq [mail]\n":
        (2, 11, "tag '!!seq' is not allowed: policy files hold plain data only; remove it"),
    "kind: Sla\nx: &a {b: 1}\ny:\n  !!merge <<: *a\n":
        (4, 3, "tag '!!merge' is not allowed: policy files hold plain data only; remove it"),
}


@pytest.mark.parametrize("text", CAUSES)
@pytest.mark.parametrize("fast", [True, False], ids=["fast path", "reference path"])
def test_a_syntax_error_is_said_once_where_it_is_caused(text: str, fast: bool) -> None:
    diags = [(d.line, d.col, d.message) for d in load_text(text, "x.yaml", fast=fast)[1]]
    assert diags == [CAUSES[text]]


def test_an_indentation_error_is_not_called_a_colon_in_a_value() -> None:
    [(line, col, message)] = _diags("kind: Plan\nid: a\n  unit: x\n")
    assert (line, col) == (3, 7) and "quote" not in message
