"""``./scripts/bench --quick`` end to end (its Python entry, the quick sizes): every part
runs, every measure is printed with ours, raw and ratio where it has a baseline, and the
report is written. It starts about ten servers, so it takes about 20 s (more on a loaded
machine); it checks the harness, never a figure. With redis-server installed it runs
``--redis`` too (about 10 s more: a redis-server and four server processes, two of them
Redis nodes; tests/redis_server.py's rule: without it the Redis rows are left out, except
under CI=true, where that is a failure)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import __main__ as bench
from benchmarks.redis_proc import INSTALL
from benchmarks.report import END, START
from tests.server_process import server_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
ROOT = Path(__file__).resolve().parents[1]
MEASURES = [
    "idle RSS, no sessions", "GET /api/health (vs hello)", "GET /api/sessions/{id} (vs hello)",
    "GET /api/health server CPU per answer (vs hello)",
    "GET /api/sessions/{id} server CPU per answer (vs hello)",
    "POST /api/sessions/{id}/chat (vs echo)", "events/history tail, 50 events",
    "events/history tail server CPU per answer, 50 events",
    "acked appends, 1 publisher, batch (vs write+flush)",
    "acked appends, 1 publisher, fsync (vs write+fsync)",
    "replay 5000 events from the middle (vs seek+parse)",
    "SSE p50 publish→client, 10 subscribers, 300 ev/s",
    "SSE server CPU per delivered event, 10 subscribers",
    "SSE p50 publish→client, 50 subscribers, 300 ev/s",
    "SSE server CPU per delivered event, 50 subscribers",
    "boot to health, 20 live sessions (vs empty home)", "boot to all resumed, 20 live sessions",
    "history list, 100 sessions, limit=50, p50", "RSS per idle live session (20 sessions)",
    "idle CPU, 50 armed timers",
]
REDIS_MEASURES = [
    "chat→SSE p50, another node (n2) via Redis (vs file backend), 20 chats/s",
    "chat→SSE p95, another node (n2) via Redis (vs file backend), 20 chats/s",
    "chat→SSE p50, the owner (n1) via Redis (vs file backend), 20 chats/s",
    "chat→SSE p95, the owner (n1) via Redis (vs file backend), 20 chats/s",
    "acked chats, batch: Redis everysec, sent to the owner (vs file backend)",
    "acked chats, batch: Redis everysec, sent to another node (forwarded) (vs file backend)",
    "acked chats, fsync: Redis always, sent to the owner (vs file backend)",
    "acked appends, 1 publisher, batch: Redis everysec (vs file log)",
    "publisher's CPU per acked append, 1 publisher, batch: Redis (vs file log)",
    "acked appends, 1 publisher, fsync: Redis always (vs file log)",
    "acked appends, 50 in flight, fsync: Redis always (vs file log)",
]
WITH_RAW = {"idle RSS", "(vs", "SSE p50"}  # idle CPU: the raw app may use none at all


def redis_flag() -> list[str]:
    """``--redis`` when redis-server is installed (tests/redis_server.py's rule otherwise)."""
    if shutil.which("redis-server"):
        return ["--redis"]
    if os.environ.get("CI") == "true":
        pytest.fail(f"{INSTALL}; under CI=true the Redis rows must run", pytrace=False)
    return []


def test_quick_bench_runs_every_part_and_prints_every_measure(tmp_path):
    report = tmp_path / "benchmarks.md"
    report.write_text("# Benchmarks\n\nOlder figures stay below the generated table.\n")
    flags = redis_flag()
    measures = MEASURES + (REDIS_MEASURES if flags else [])
    done = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", *flags, "--out",
                           str(report)],
                          cwd=ROOT, capture_output=True, text=True, env=server_env(),
                          timeout=850)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = done.stdout.rsplit("\n\n", 1)[1]  # the final table, after the parts' own
    lines = [line for line in summary.splitlines() if not line.startswith("written: ")]
    assert lines[0].split() == ["measure", "ours", "raw", "ratio", "target", "result"]
    for measure in measures:
        [line] = [line for line in lines if line.startswith(measure)]
        if any(marker in measure for marker in WITH_RAW):
            assert re.search(r" \d+\.\d\d\u00d7( |$)", line), line  # a ratio was computed
    assert len(lines) == 1 + len(measures)
    text = report.read_text()
    assert text.startswith("# Benchmarks\n") and "Older figures stay" in text
    generated = text.split(START, 1)[1].split(END, 1)[0]
    assert f"./scripts/bench --quick{' --redis' if flags else ''}`" in generated
    assert "cores" in generated
    assert all(measure.replace("|", "\\|") in generated for measure in measures)


def test_redis_without_redis_server_exits_2_saying_how_to_install_it(tmp_path, monkeypatch,
                                                                      capsys):
    monkeypatch.setenv("PATH", str(tmp_path))  # no redis-server on it
    assert bench.main(["--quick", "--redis", "--out", str(tmp_path / "report.md")]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == f"scripts/bench --redis: {INSTALL}\n"
    assert not (tmp_path / "report.md").exists()
