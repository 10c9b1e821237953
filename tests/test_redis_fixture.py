"""tests/redis_server.py without redis-server: a Redis test is skipped, saying how to install
it, except under CI=true, where it fails. A pytest session of its own runs one Redis test of
the suite with no redis-server on PATH (nothing is installed or removed). It runs in this
process (``pytester``'s in-process run: a session of its own, with the repo's conftest; the
modules it imports are dropped after), not in a new interpreter, which cost 2 s of CPU each."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]
A_REDIS_TEST = "tests/test_redis_backend.py::test_a_fenced_log_without_any_lease_stores_nothing"


def run_without_redis(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                      ci: str) -> pytest.RunResult:
    empty = pytester.path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setenv("CI", ci)
    monkeypatch.chdir(ROOT)
    return pytester.runpytest_inprocess("-q", "-rs", "-p", "no:cacheprovider", "-p", "no:xdist",
                                        "--rootdir", str(ROOT), str(ROOT / A_REDIS_TEST))


def test_without_redis_server_a_redis_test_is_skipped_with_how_to_install_it(pytester,
                                                                             monkeypatch):
    done = run_without_redis(pytester, monkeypatch, "")
    out = done.stdout.str()
    assert done.ret == pytest.ExitCode.OK, out
    assert "1 skipped" in out
    assert "redis-server is not installed: `sudo apt-get install redis-server`" in out


def test_under_ci_a_missing_redis_server_is_a_failure(pytester, monkeypatch):
    done = run_without_redis(pytester, monkeypatch, "true")
    out = done.stdout.str()
    assert done.ret == pytest.ExitCode.TESTS_FAILED, out
    assert "1 error" in out and "skipped" not in out
    assert "under CI=true the Redis tests fail instead of skipping" in out
