"""What a bundle directory holds: links, loops and special files are read or reported by path,
never silently skipped (`entitle validate`, and reload refusing them)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from entitle.cli import main
from entitle.engine.load import walk_bundle

BASE = Path(__file__).parent / "fixtures" / "broken" / "_base"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    out = tmp_path / "bundle"
    shutil.copytree(BASE, out)
    return out


def validate(root: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[tuple]]:
    code = main(["validate", "--format", "json", str(root)])
    report = json.loads(capsys.readouterr().out)
    return code, [(Path(e["path"]).relative_to(root).as_posix(), e["line"], e["col"],
                   e["message"]) for e in report["errors"]]


def test_a_dangling_symlink_is_an_error_naming_it(root, capsys):
    (root / "extra.yaml").symlink_to("gone.yaml")
    assert validate(root, capsys) == (1, [
        ("extra.yaml", 1, 1, "dangling symlink: it points at gone.yaml, which does not exist; "
                             "fix the link or remove it"),
    ])


def test_two_links_that_point_at_each_other_are_each_an_error(root, capsys):
    (root / "a.yaml").symlink_to("b.yaml")
    (root / "b.yaml").symlink_to("a.yaml")
    assert validate(root, capsys) == (1, [
        ("a.yaml", 1, 1, "symlink loop: the link to b.yaml leads back to itself; fix the link "
                         "or remove it"),
        ("b.yaml", 1, 1, "symlink loop: the link to a.yaml leads back to itself; fix the link "
                         "or remove it"),
    ])


def test_a_link_to_a_directory_that_contains_it_is_an_error_not_a_walk(root, capsys):
    (root / "sub").mkdir()
    (root / "sub" / "up").symlink_to("..")
    (root / "self").symlink_to(".")
    message = "symlink loop: the link to {} leads to a directory that contains it; remove it"
    assert validate(root, capsys) == (1, [
        ("self", 1, 1, message.format(".")),
        ("sub/up", 1, 1, message.format("..")),
    ])


def test_a_fifo_among_the_policy_files_is_an_error_and_is_never_opened(root, capsys):
    os.mkfifo(root / "plans.yaml")  # opening it to read would block forever
    os.mkfifo(root / "notes.txt")  # not named as policy: not policy
    assert validate(root, capsys) == (1, [
        ("plans.yaml", 1, 1, "a FIFO (named pipe), not a regular file; a policy file must be a "
                             "regular file (or a link to one)"),
    ])


def test_a_link_out_of_the_bundle_is_refused(root, tmp_path, capsys):
    outside = tmp_path / "shared.yaml"
    outside.write_text((BASE / "calendar.yaml").read_text().replace("id: desk", "id: other"))
    (root / "shared.yaml").symlink_to(outside)
    (tmp_path / "README.md").write_text("# shared\n")
    (root / "README.md").symlink_to(tmp_path / "README.md")  # not policy: not read, not refused
    assert validate(root, capsys) == (1, [
        ("shared.yaml", 1, 1, f"symlink to {outside.resolve()}, outside the bundle: policy is "
                              "only read from inside the bundle directory; copy the file in"),
    ])


def test_links_inside_the_bundle_are_read_once_even_through_hidden_directories(root, capsys):
    """A Kubernetes ConfigMap volume: each file is a link into the hidden `..data` directory."""
    data = root / "..2026_01_01" / "more"
    data.mkdir(parents=True)
    (data / "cal.yaml").write_text(
        (BASE / "calendar.yaml").read_text().replace("id: desk", "id: other"))
    (root / "..data").symlink_to("..2026_01_01")
    (root / "cal.yaml").symlink_to("..data/more/cal.yaml")
    (root / "linked").symlink_to("..data/more")  # the same file again, through a folder link
    (root / "plan-copy.yaml").symlink_to("plan.yaml")  # plan.yaml again: read once
    assert validate(root, capsys) == (0, [])
    assert [p.relative_to(root).as_posix() for p in walk_bundle(root).files] == [
        "cal.yaml", "calendar.yaml", "contract.yaml", "plan.yaml", "sla.yaml",
    ]


def test_one_broken_link_is_the_only_error_of_an_otherwise_empty_bundle(tmp_path, capsys):
    root = tmp_path / "bundle"
    root.mkdir()
    (root / "plans.yaml").symlink_to("nowhere.yaml")
    code, errors = validate(root, capsys)
    assert code == 1 and [e[0] for e in errors] == ["plans.yaml"]  # not also "no policy files"
