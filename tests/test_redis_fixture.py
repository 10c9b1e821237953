"""tests/redis_server.py without redis-server: a Redis test is skipped, saying how to install
it, except under CI=true, where it fails. Run as a pytest process whose PATH has no
redis-server (nothing is installed or removed)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # every test here starts a process

ROOT = Path(__file__).resolve().parents[1]
A_REDIS_TEST = "tests/test_redis_backend.py::test_a_fenced_log_without_any_lease_stores_nothing"


def run_without_redis(tmp_path: Path, ci: str) -> subprocess.CompletedProcess[str]:
    empty = tmp_path / "bin"
    empty.mkdir()
    env = {**os.environ, "PATH": str(empty), "CI": ci}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "-p",
         "no:xdist", A_REDIS_TEST], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=120, check=False)


def test_without_redis_server_a_redis_test_is_skipped_with_how_to_install_it(tmp_path):
    done = run_without_redis(tmp_path, "")
    assert done.returncode == 0, done.stdout
    assert "1 skipped" in done.stdout
    assert "redis-server is not installed: `sudo apt-get install redis-server`" in done.stdout


def test_under_ci_a_missing_redis_server_is_a_failure(tmp_path):
    done = run_without_redis(tmp_path, "true")
    assert done.returncode == 1, done.stdout
    assert "1 error" in done.stdout and "skipped" not in done.stdout
    assert "under CI=true the Redis tests fail instead of skipping" in done.stdout
