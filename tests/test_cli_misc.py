"""`entitle --version` and `entitle completion`."""

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
    for command in ("validate", "serve", "check", "call", "diff"):
        assert command in out.stdout
    if shell == "bash" and shutil.which("bash"):
        script = tmp_path / "entitle.bash"
        script.write_text(out.stdout)
        assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
