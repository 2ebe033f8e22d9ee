"""The broken-bundle corpus: each case's errors, at the exact file and line, and nothing else."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from entitle.cli import main
from entitle.engine.load import MAX_FILE_BYTES

CORPUS = Path(__file__).parent / "fixtures" / "broken"
CASES = sorted(p.name for p in CORPUS.iterdir() if p.is_dir() and p.name != "_base")


def expected(case: str, root: Path) -> list[tuple[str, int, str]]:
    """`file:line: fragment` lines of a case's expect.txt; `{dir}` is the bundle directory."""
    out = []
    for line in (CORPUS / case / "expect.txt").read_text().splitlines():
        where, fragment = line.split(": ", 1)
        path, lineno = where.rsplit(":", 1)
        out.append((path, int(lineno), fragment.replace("{dir}", str(root))))
    return out


def bundle_of(case: str, tmp_path: Path) -> Path:
    """The valid base bundle with the case's files laid over it."""
    root = tmp_path / case
    shutil.copytree(CORPUS / "_base", root)
    shutil.copytree(CORPUS / case / "bundle", root, dirs_exist_ok=True)
    return root


def validate_json(root: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict]:
    code = main(["validate", "--format", "json", str(root)])
    return code, json.loads(capsys.readouterr().out)


def test_corpus_is_large_enough():
    assert len(CASES) >= 25


def test_base_bundle_is_valid(tmp_path, capsys):
    root = tmp_path / "base"
    shutil.copytree(CORPUS / "_base", root)
    code, report = validate_json(root, capsys)
    assert (code, report["errors"], report["warnings"]) == (0, [], [])


@pytest.mark.parametrize("case", CASES)
def test_broken_bundle(case, tmp_path, capsys):
    root = bundle_of(case, tmp_path)
    code, report = validate_json(root, capsys)
    assert code == 1
    errors = [(Path(e["path"]).relative_to(root).as_posix(), e["line"], e["message"])
              for e in report["errors"]]
    want = expected(case, root)
    assert sorted({(p, n) for p, n, _ in errors}) == sorted({(p, n) for p, n, _ in want}), errors
    for path, line, fragment in want:
        messages = [m for p, n, m in errors if (p, n) == (path, line)]
        assert any(fragment in m for m in messages), (fragment, messages)


def test_text_output_is_path_line_col(tmp_path, capsys):
    root = bundle_of("unknown-plan-typo", tmp_path)
    assert main(["validate", str(root)]) == 1
    out = capsys.readouterr().out.strip()
    assert out == (f"{root}/contract.yaml:4:7: unknown plan 'gold-suport'; "
                   "did you mean 'gold-support'?")


def test_oversized_file_is_refused_without_reading_it(tmp_path, capsys):
    root = tmp_path / "big"
    shutil.copytree(CORPUS / "_base", root)
    with open(root / "huge.yaml", "wb") as f:  # sparse: no disk or memory spent
        f.truncate(MAX_FILE_BYTES + 1)
    code, report = validate_json(root, capsys)
    assert code == 1
    [error] = report["errors"]
    assert error["path"].endswith("huge.yaml") and error["line"] == 1
    assert f"policy files are limited to {MAX_FILE_BYTES} bytes" in error["message"]


@pytest.mark.parametrize(("case", "where"), [
    ("unclosed-quote", "plan.yaml:2:5"),  # where the quote opens, not where reading stopped
    ("colon-in-plain-value", "calendar.yaml:3:14"),
    ("standard-tag", "contract.yaml:3:11"),
    ("business-clock-without-calendar", "sla.yaml:3:8"),
    ("timezone-abbreviation", "calendar.yaml:3:11"),
    ("kind-in-other-case", "sla.yaml:1:7"),
    ("misspelt-field-by-prefix", "plan.yaml:6:1"),
    ("unknown-field", "plan.yaml:5:1"),
])
def test_one_mistake_is_one_error_at_its_line_and_column(case, where, tmp_path, capsys):
    root = bundle_of(case, tmp_path)
    assert main(["validate", str(root)]) == 1
    lines = capsys.readouterr().out.strip().replace(f"{root}/", "").splitlines()
    [(_, _, first)] = expected(case, root)[:1]
    assert lines[0] == f"{where}: {first}"
    assert len(lines) == len(expected(case, root))
