"""scripts/setup's apt-get steps (Debian's chromium and redis-server), run for real in a
sandbox (the fakes of test_setup_script, plus a PATH without chromium and redis-server and
stand-ins for ``id`` and ``apt-get``): as root each says it installs the package and runs
apt-get (``apt-get update`` once for both); its HIVE_SKIP_* variable skips it; without root it
says what will be skipped and how to install it. Nothing is installed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.test_setup_script import pip_calls, repo, run_setup

pytestmark = pytest.mark.slow  # every test here starts a process

__all__ = ["repo"]  # the fixture, used by name below

APT = '#!/usr/bin/env bash\necho "$*" >> "$APT_CALLS"\n'
TOOLS = ("chromium", "redis-server")


def sandbox_path(tmp_path: Path, uid: int) -> str:
    """A PATH holding every command of this one except chromium, redis-server, apt-get and id
    (faked)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for folder in os.environ["PATH"].split(os.pathsep):
        if not Path(folder).is_dir():
            continue
        for tool in Path(folder).iterdir():
            name = tool.name
            if name.startswith(TOOLS) or name in ("apt-get", "id"):
                continue
            if not (bindir / name).exists():
                (bindir / name).symlink_to(tool)
    (bindir / "apt-get").write_text(APT)
    (bindir / "id").write_text(f"#!/usr/bin/env bash\necho {uid}\n")
    for fake in ("apt-get", "id"):
        (bindir / fake).chmod(0o755)
    return str(bindir)


CHROMIUM_ROOT = ("setup: installing Debian's chromium for the console test with apt-get "
                 "(HIVE_SKIP_CHROMIUM=1 skips this)")
REDIS_ROOT = ("setup: installing Debian's redis-server for the Redis tests with apt-get "
              "(HIVE_SKIP_REDIS=1 skips this)")


@pytest.mark.parametrize(("uid", "skip", "lines", "apt"), [
    (0, {}, [CHROMIUM_ROOT, REDIS_ROOT],
     ["update -qq", "install -y -qq chromium", "install -y -qq redis-server"]),
    (0, {"HIVE_SKIP_CHROMIUM": "1"}, [REDIS_ROOT], ["update -qq", "install -y -qq redis-server"]),
    (0, {"HIVE_SKIP_REDIS": "1"}, [CHROMIUM_ROOT], ["update -qq", "install -y -qq chromium"]),
    (0, {"HIVE_SKIP_CHROMIUM": "1", "HIVE_SKIP_REDIS": "1"}, [], []),
    (1000, {}, ["setup: chromium not found; the console test will be skipped (install it "
                "with: sudo apt-get install chromium)",
                "setup: redis-server not found; the Redis tests will be skipped (install it "
                "with: sudo apt-get install redis-server)"], []),
])
def test_apt_steps(repo, tmp_path, uid, skip, lines, apt):
    calls = tmp_path / "apt-calls"
    env = {"HIVE_SKIP_CHROMIUM": "", "HIVE_SKIP_REDIS": "", **skip}
    done = run_setup(repo, PATH=sandbox_path(tmp_path, uid), APT_CALLS=str(calls), **env)
    assert done.returncode == 0, done.stderr
    out = done.stdout.splitlines()
    assert [x for x in out if x.split()[1].startswith(TOOLS) or "Debian's" in x] == lines
    assert out[-1].startswith("setup: done in ")
    assert (calls.read_text().splitlines() if calls.exists() else []) == apt
    assert len(pip_calls(repo)) == 1


def test_a_failed_install_says_so_in_one_line(repo, tmp_path):
    """apt-get failing (no network, no such package): one line naming its log, setup goes on."""
    path = sandbox_path(tmp_path, 0)
    (Path(path) / "apt-get").write_text("#!/usr/bin/env bash\necho 'E: no such package'; "
                                        "exit 100\n")
    done = run_setup(repo, PATH=path, HIVE_SKIP_CHROMIUM="1", HIVE_SKIP_REDIS="")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1:-1][-2:] == [
        REDIS_ROOT, "setup: redis-server could not be installed (.venv/apt-redis-server.log); "
        "the Redis tests will be skipped"]
    assert "E: no such package" in (repo / ".venv" / "apt-redis-server.log").read_text()
