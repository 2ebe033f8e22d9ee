"""`entitle --version`, `entitle completion`, and arguments refused before any connection."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def entitle(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "entitle", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_version_names_the_policy_revision_of_the_local_bundle(tmp_path):
    from entitle import __version__
    from entitle.engine.bundle import load_policy

    out = entitle("--version")
    policy, _ = load_policy(REPO / "policies")
    assert out.returncode == 0
    assert out.stdout.splitlines() == [
        f"entitle {__version__}", f"policy revision {policy.revision} (policies/)"
    ]
    elsewhere = entitle("--version", cwd=tmp_path)
    assert elsewhere.stdout == f"entitle {__version__}\n"
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "x.yaml").write_text("kind: Plan\nid: p\n")
    broken = entitle("--version", cwd=tmp_path)
    assert "invalid" in broken.stdout and "entitle validate policies" in broken.stdout


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_completion_scripts_know_every_command(shell, tmp_path):
    out = entitle("completion", shell)
    assert out.returncode == 0
    for command in ("validate", "serve", "check", "call", "diff", "health"):
        assert command in out.stdout
    if shell == "bash" and shutil.which("bash"):
        script = tmp_path / "entitle.bash"
        script.write_text(out.stdout)
        assert subprocess.run(["bash", "-n", str(script)]).returncode == 0


@pytest.mark.parametrize("args", [
    ["alerts", "--after", "-1"],
    ["alerts", "--after", str(2**64)],  # beyond a uint64 cursor
    ["alerts", "--after", "1.5"],
    ["alerts", "--timeout", "0"],
    ["alerts", "--follow", "--timeout", "-3"],
    ["call", "Ping", "{}", "--timeout", "nan"],
    ["health", "--timeout", "0"],
])
def test_bad_numeric_arguments_are_usage_errors(args, capsys):
    from entitle.cli import main

    with pytest.raises(SystemExit) as info:
        main([*args, "--server", "127.0.0.1:1"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {args[-2]}:" in err and "Traceback" not in err


def test_the_largest_cursor_is_accepted(capsys):
    from entitle.cli import main

    # parsed fine, then no server answers on port 1: an RPC error, not a usage error
    assert main(["alerts", "--after", str(2**64 - 1), "--timeout", "2",
                 "--server", "127.0.0.1:1"]) == 1
    assert "UNAVAILABLE" in capsys.readouterr().err


def test_the_operations_guide_documents_every_serve_flag_and_environment_variable():
    import argparse
    import re

    from entitle.cli import serve

    guide = (REPO / "docs" / "operations.md").read_text()
    sub = argparse.ArgumentParser().add_subparsers()
    serve.add_parser(sub)
    flags = {o for a in sub.choices["serve"]._actions for o in a.option_strings if o[1] == "-"}
    flags.discard("--help")
    assert {f for f in flags if f"| `{f}" not in guide} == set()  # a row of a flag table

    code = "\n".join(p.read_text() for p in (REPO / "entitle").rglob("*.py"))
    names = set(re.findall(r'^[A-Z_]+_ENV = "([A-Z_]+)"', code, re.M))
    names |= set(re.findall(r'environ(?:\.get\(|\[)"([A-Z_]+)"', code))
    assert names >= {"ENTITLE_FAKE_NOW", "ENTITLE_TOKEN"}
    assert {n for n in names if f"| `{n}" not in guide} == set()


def test_help_says_what_entitle_does():
    out = " ".join(entitle("--help").stdout.split())
    assert "Support entitlements as code" in out and "over gRPC" in out
    assert "module" not in out
