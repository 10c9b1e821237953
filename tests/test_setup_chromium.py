"""scripts/setup's Chromium step, run for real in a sandbox (the fakes of test_setup_script,
plus a PATH without chromium and stand-ins for ``id`` and ``apt-get``): as root it says it
installs Debian's chromium and runs apt-get; HIVE_SKIP_CHROMIUM=1 skips it; without root it
says the console test will be skipped. Nothing is installed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.test_setup_script import pip_calls, repo, run_setup

pytestmark = pytest.mark.slow  # every test here starts a process

__all__ = ["repo"]  # the fixture, used by name below

APT = '#!/usr/bin/env bash\necho "$*" >> "$APT_CALLS"\n'


def sandbox_path(tmp_path: Path, uid: int) -> str:
    """A PATH holding every command of this one except chromium, apt-get and id (faked)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for folder in os.environ["PATH"].split(os.pathsep):
        if not Path(folder).is_dir():
            continue
        for tool in Path(folder).iterdir():
            name = tool.name
            if name.startswith("chromium") or name in ("apt-get", "id"):
                continue
            if not (bindir / name).exists():
                (bindir / name).symlink_to(tool)
    (bindir / "apt-get").write_text(APT)
    (bindir / "id").write_text(f"#!/usr/bin/env bash\necho {uid}\n")
    for fake in ("apt-get", "id"):
        (bindir / fake).chmod(0o755)
    return str(bindir)


@pytest.mark.parametrize(("uid", "skip", "line", "apt"), [
    (0, "", "setup: installing Debian's chromium for the console test with apt-get "
     "(HIVE_SKIP_CHROMIUM=1 skips this)", ["update -qq", "install -y -qq chromium"]),
    (0, "1", None, []),
    (1000, "", "setup: chromium not found; the console test will be skipped (install it "
     "with: sudo apt-get install chromium)", []),
])
def test_chromium_step(repo, tmp_path, uid, skip, line, apt):
    calls = tmp_path / "apt-calls"
    done = run_setup(repo, PATH=sandbox_path(tmp_path, uid), HIVE_SKIP_CHROMIUM=skip,
                     APT_CALLS=str(calls))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [x for x in lines if "chromium" in x] == ([line] if line else [])
    assert lines[-1].startswith("setup: done in ")
    assert (calls.read_text().splitlines() if calls.exists() else []) == apt
    assert len(pip_calls(repo)) == 1
