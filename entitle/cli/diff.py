"""`entitle diff`: breaking changes of a bundle against the same directory at a git ref."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import replace
from functools import cache
from pathlib import Path

from entitle.engine.bundle import load_policy
from entitle.engine.diagnostics import Diagnostic
from entitle.engine.diff import Change, diff_policies
from entitle.engine.load import policy_files
from entitle.engine.model import Policy, Source, frozen_map

EMPTY = Policy("", frozen_map(), frozen_map(), frozen_map(), frozen_map(), frozen_map())


class UsageError(Exception):
    """The comparison cannot be made (no git, unknown ref, DIR outside the repository): exit 2."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "diff",
        help="report breaking changes of a bundle against a git ref",
        description=(
            "Compares the bundle in DIR (as it is on disk) with the same directory at git "
            "ref REF. Exit 0: no breaking change; 1: a breaking change, or the bundle on disk "
            "is invalid; 2: usage error (no git repository, unknown ref, invalid base bundle)."
        ),
    )
    p.add_argument("dir", type=Path, nargs="?", default=Path("policies"), help="bundle directory")
    p.add_argument("--base", required=True, metavar="REF",
                   help="git ref to compare against, e.g. origin/main or HEAD")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    shown = args.dir
    if not shown.is_dir():
        print(f"entitle diff: {shown} is not a directory", file=sys.stderr)
        return 2
    head, head_diags = load_policy(shown)
    if head is None:
        _print_invalid(args, head_diags)
        return 1
    with tempfile.TemporaryDirectory(prefix="entitle-diff-") as tmp:
        try:
            base_root = materialize(shown, args.base, Path(tmp))
        except UsageError as exc:
            print(f"entitle diff: {exc}", file=sys.stderr)
            return 2
        if base_root is None or not policy_files(base_root):
            missing = "does not exist" if base_root is None else "has no policy files"
            print(f"entitle diff: {shown} {missing} at {args.base}; everything in it is new",
                  file=sys.stderr)
            base = EMPTY
        else:
            base, base_diags = load_policy(base_root)
            if base is None:
                errors = [_relocate_diag(d, base_root, shown) for d in base_diags
                          if d.severity == "error"]
                print(f"entitle diff: the bundle {shown} at {args.base} is invalid; "
                      "nothing compared:", file=sys.stderr)
                for d in errors:
                    print(f"  {d}", file=sys.stderr)
                return 2
        changes = [
            replace(c, source=_relocate(c.source, base_root, shown)) if base_root else c
            for c in diff_policies(base, head)
        ]
    breaking = sum(c.breaking for c in changes)
    if args.format == "json":
        print(json.dumps({
            "base": args.base,
            "dir": str(shown),
            "changes": [c.to_json() for c in changes],
            "breaking": breaking,
            "non_breaking": len(changes) - breaking,
        }, indent=2))
    else:
        for c in changes:
            print(c if c.source else f"{'BREAKING' if c.breaking else 'ok'} {shown}: {c.message}")
        print(_summary(changes, breaking, args.base), file=sys.stderr)
    return 1 if breaking else 0


def _summary(changes: list[Change], breaking: int, ref: str) -> str:
    if not changes:
        return f"no changes against {ref}"
    return f"{breaking} breaking, {len(changes) - breaking} non-breaking changes against {ref}"


def _print_invalid(args: argparse.Namespace, diagnostics: list[Diagnostic]) -> None:
    """The bundle on disk must validate before it can be compared: show why it does not."""
    if args.format == "json":
        print(json.dumps({
            "base": args.base,
            "dir": str(args.dir),
            "diagnostics": [d.to_json() for d in diagnostics],
            "changes": [],
        }, indent=2))
        return
    for d in diagnostics:
        print(d)
    errors = sum(d.severity == "error" for d in diagnostics)
    noun = "error" if errors == 1 else "errors"
    print(f"entitle diff: {args.dir} is invalid ({errors} {noun}); run `entitle validate "
          f"{args.dir}`; nothing compared", file=sys.stderr)


# --- git -----------------------------------------------------------------------------------


def _git(cwd: Path, *argv: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    git = shutil.which("git")
    if git is None:
        raise UsageError("git is not installed (or not on PATH)")
    return subprocess.run(
        [git, "-C", str(cwd), *argv], input=stdin, capture_output=True, check=False
    )


def materialize(directory: Path, ref: str, into: Path) -> Path | None:
    """Write `directory` as of git `ref` under `into`; its root there, or None if absent at ref."""
    absolute = directory.resolve()
    top = _git(absolute, "rev-parse", "--show-toplevel")
    if top.returncode != 0:
        raise UsageError(f"{directory} is not inside a git repository")
    toplevel = Path(top.stdout.decode().strip()).resolve()
    try:
        inside = absolute.relative_to(toplevel).as_posix()
    except ValueError:
        raise UsageError(f"{directory} is not inside the git repository {toplevel}") from None
    commit = _git(toplevel, "rev-parse", "--verify", "--quiet", "--end-of-options",
                  f"{ref}^{{commit}}")
    if commit.returncode != 0:
        raise UsageError(f"unknown git ref {ref!r} (for a pull request's base branch, fetch it: "
                         "actions/checkout with fetch-depth: 0)")
    sha = commit.stdout.decode().strip()
    spec = f"{sha}:{inside}" if inside != "." else f"{sha}:"
    kind = _git(toplevel, "cat-file", "-t", spec)
    if kind.returncode != 0:
        return None
    if kind.stdout.decode().strip() != "tree":
        raise UsageError(f"{directory} is not a directory at {ref}")
    root = into / "tree"
    _write_tree(toplevel, sha, inside, root)
    return root / inside


def _write_tree(toplevel: Path, sha: str, inside: str, root: Path) -> None:
    """Copy every regular file under `inside` at `sha` (blobs as stored: no export attributes)."""
    listing = _git(toplevel, "ls-tree", "-r", "-z", "--full-tree", sha, "--", inside)
    if listing.returncode != 0:
        raise UsageError(listing.stderr.decode(errors="replace").strip())
    entries = []
    for record in listing.stdout.split(b"\0"):
        if not record:
            continue
        meta, _, name = record.partition(b"\t")
        mode, kind, obj = meta.split(b" ")
        if kind == b"blob" and mode in (b"100644", b"100755"):  # no symlinks or submodules
            entries.append((obj, name.decode("utf-8", errors="surrogateescape")))
    if not entries:
        root.joinpath(inside).mkdir(parents=True, exist_ok=True)
        return
    batch = _git(toplevel, "cat-file", "--batch", stdin=b"".join(o + b"\n" for o, _ in entries))
    if batch.returncode != 0:
        raise UsageError(batch.stderr.decode(errors="replace").strip())
    out, pos = batch.stdout, 0
    for _, name in entries:
        header_end = out.index(b"\n", pos)
        size = int(out[pos:header_end].split(b" ")[2])
        body = out[header_end + 1 : header_end + 1 + size]
        pos = header_end + 1 + size + 1  # content is followed by a newline
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(body)


# --- locations -----------------------------------------------------------------------------


@cache
def _shown_path(path: str, base_root: Path, shown: Path) -> str:
    """A base file's temporary path as the user knows it: under DIR as given."""
    p = Path(path)
    try:
        rel = (p if p.is_absolute() else Path.cwd() / p).resolve().relative_to(base_root.resolve())
    except (ValueError, OSError):
        return path
    return str(shown / rel)


def _relocate(source: Source | None, base_root: Path, shown: Path) -> Source | None:
    if source is None:
        return None
    return replace(source, path=_shown_path(source.path, base_root, shown))


def _relocate_diag(d: Diagnostic, base_root: Path, shown: Path) -> Diagnostic:
    return replace(d, path=_shown_path(d.path, base_root, shown))
