"""scripts/setup: one line per step on the first run, silent when nothing changed.

The script runs for real (bash) in a copy of the repository's script and pyproject.toml, with
``PYTHON`` pointing to a stand-in: it answers the version check with this interpreter and makes
a ``.venv`` whose ``python`` only fakes ``pip install`` (prints pip's ``Collecting`` lines and
logs its arguments). Nothing is downloaded.
"""

from __future__ import annotations

import os
import pty
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # every test here starts a process

ROOT = Path(__file__).resolve().parents[1]

FAKE_PYTHON = """#!/usr/bin/env bash
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then
    mkdir -p "$3/bin" && cp "$FAKE_VENV_PYTHON" "$3/bin/python" && exit 0
fi
exec {python} "$@"
"""
FAKE_VENV_PYTHON = """#!/usr/bin/env bash
echo "$*" >> "$PIP_CALLS"
if [ -n "${FAKE_PIP_FAIL:-}" ]; then
    echo "ERROR: No matching distribution found for aiohttp>=99"; exit 1
fi
for i in $(seq 1 11); do echo "Collecting package$i>=1.0"; echo "  Using cached p$i.whl"; done
echo "Processing /opt/wheels/package12-1.0-py3-none-any.whl (from hive-server==0.1.0)"
echo "Successfully installed package1-1.0 package2-1.0 package3-1.0"
"""


@pytest.fixture
def repo(tmp_path) -> Path:
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy2(ROOT / "scripts" / "setup", repo / "scripts" / "setup")
    shutil.copy2(ROOT / "pyproject.toml", repo / "pyproject.toml")
    fakes = tmp_path / "fakes"
    fakes.mkdir()
    (fakes / "python").write_text(FAKE_PYTHON.format(python=sys.executable))
    (fakes / "venv-python").write_text(FAKE_VENV_PYTHON)
    for fake in fakes.iterdir():
        fake.chmod(0o755)
    return repo


def setup_env(repo: Path, **extra: str) -> dict[str, str]:
    fakes = repo.parent / "fakes"
    return {"PATH": os.environ["PATH"], "PYTHON": str(fakes / "python"),
            "FAKE_VENV_PYTHON": str(fakes / "venv-python"),
            "PIP_CALLS": str(repo.parent / "pip-calls"), "HIVE_SKIP_CHROMIUM": "1",
            "HIVE_SKIP_REDIS": "1", **extra}


def run_setup(repo: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(repo / "scripts" / "setup")], env=setup_env(repo, **extra),
                          capture_output=True, text=True, timeout=60, check=False)


def pip_calls(repo: Path) -> list[str]:
    calls = repo.parent / "pip-calls"
    return calls.read_text().splitlines() if calls.exists() else []


def test_first_run_prints_each_step_and_a_second_run_is_silent(repo):
    first = run_setup(repo)
    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    assert lines[0].startswith(f"setup: making .venv with {sys.executable} 3.")
    assert lines[1].startswith("setup: installing hive-server and its dev tools into .venv")
    assert lines[2] == "setup:   10 packages collected"  # a line per ten without a terminal
    assert lines[3] == "setup: 12 packages collected, 3 installed or updated"
    assert lines[4].startswith("setup: done in ") and lines[4].endswith(" s")
    assert len(lines) == 5 and first.stderr == ""
    assert pip_calls(repo) == ["-m pip install --disable-pip-version-check -e .[dev]"]
    assert "Collecting package11>=1.0" in (repo / ".venv" / "pip-install.log").read_text()

    second = run_setup(repo)
    assert (second.returncode, second.stdout, second.stderr) == (0, "", "")
    assert len(pip_calls(repo)) == 1


def test_a_changed_pyproject_installs_again_into_the_same_venv(repo):
    assert run_setup(repo).returncode == 0
    with (repo / "pyproject.toml").open("a") as fh:
        fh.write("\n# a new dependency\n")
    again = run_setup(repo)
    assert again.returncode == 0
    assert again.stdout.startswith("setup: installing ")  # no new venv
    assert len(pip_calls(repo)) == 2


def test_a_failed_install_shows_pips_error_and_is_retried_next_time(repo):
    failed = run_setup(repo, FAKE_PIP_FAIL="1")
    assert failed.returncode == 1
    assert "setup: pip install failed" in failed.stderr
    assert "No matching distribution found for aiohttp>=99" in failed.stderr
    assert not (repo / ".venv" / ".hive-installed").exists()
    retried = run_setup(repo)
    assert retried.returncode == 0 and "setup: done in " in retried.stdout
    assert len(pip_calls(repo)) == 2


def test_a_terminal_sees_a_running_count(repo):
    leader, follower = pty.openpty()
    try:
        code = subprocess.run(["bash", str(repo / "scripts" / "setup")], env=setup_env(repo),
                              stdout=follower, stderr=subprocess.PIPE, timeout=60,
                              check=False).returncode
        os.set_blocking(leader, False)
        out = os.read(leader, 65536).decode()
    finally:
        os.close(leader)
        os.close(follower)
    assert code == 0
    assert "\rsetup:   1 packages collected (package1>=1.0)" in out
    assert "\rsetup:   12 packages collected (package12-1.0-py3-none-any.whl)" in out
    assert "setup: 12 packages collected, 3 installed or updated" in out


def test_an_old_python_is_refused_with_a_hint(repo, tmp_path):
    old = tmp_path / "python3.10"
    old.write_text("#!/usr/bin/env bash\nexit 1\n")
    old.chmod(0o755)
    result = run_setup(repo, PYTHON=str(old))
    assert result.returncode == 1
    assert "needs Python >= 3.11" in result.stderr and not (repo / ".venv").exists()
