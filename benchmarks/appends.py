"""The event log in this process against raw file calls on the same lines:

- acknowledged appends, one publisher awaiting each, ``batch`` against ``write()+flush()``
  (scripts/bench_eventlog.py's ``bench_acked_vs_raw``, best of three each);
- the same in ``fsync`` mode against ``write()`` + ``fsync()`` per line;
- replay from the middle of a log against a seek to the middle and parsing the lines.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import orjson

from benchmarks.sizes import Sizes
from benchmarks.table import Row, ratio_at_least
from hive_server.core.eventlog import Durability, EventLog
from hive_server.models.events import Event, EventType
from scripts.bench_eventlog import bench_acked_vs_raw, build_log, realistic_event


async def run(root: Path, sizes: Sizes, rows: list[Row]) -> None:
    batch = await bench_acked_vs_raw(root, sizes.appends, Durability.BATCH)
    rows.append(Row("acked appends, 1 publisher, batch (vs write+flush)", batch["acked_per_s"],
                    batch["raw_per_s"], "ev/s", ratio_at_least(0.8)))
    rows.append(await fsync_appends(root, sizes.fsync_appends))
    rows.append(await replay(root, sizes.replay_log, sizes.replay_events))


def raw_write_fsync(path: Path, n: int) -> float:
    started = time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for seq in range(1, n + 1):
            os.write(fd, realistic_event(seq).to_json() + b"\n")
            os.fsync(fd)
    finally:
        os.close(fd)
    return time.perf_counter() - started


async def fsync_appends(root: Path, n: int) -> Row:
    raw = min(raw_write_fsync(root / f"raw-fsync-{i}.jsonl", n) for i in range(3))
    ours = []
    for i in range(3):
        log = EventLog(root / f"fsync-{i}.jsonl", Durability.FSYNC)
        await log.open()
        started = time.perf_counter()
        for seq in range(1, n + 1):
            await log.append(realistic_event(seq))
        ours.append(time.perf_counter() - started)
        await log.close()
    return Row("acked appends, 1 publisher, fsync (vs write+fsync)", n / min(ours), n / raw,
               "ev/s")


async def replay(root: Path, count: int, events: int) -> Row:
    """``iter_lines_after`` (what SSE replay reads) from the middle seq for ``events`` events,
    against seeking to the middle byte and parsing as many lines (best of three each)."""
    path = root / "replay.jsonl"
    small = Event(seq=1, type=EventType.LLM_TEXT_DELTA, session_id="s", data={"content": "hi"})
    build_log(path, count, small)
    log = EventLog(path, Durability.NONE)
    await log.open()
    ours = []
    for _ in range(3):
        got, started = 0, time.perf_counter()
        async for chunk in log.iter_lines_after(count // 2, chunk=1000):
            got += len(chunk)
            if got >= events:
                break
        ours.append(time.perf_counter() - started)
    await log.close()
    raw = min(raw_replay(path, events) for _ in range(3))
    return Row(f"replay {events} events from the middle (vs seek+parse)", events / min(ours),
               events / raw, "ev/s")


def raw_replay(path: Path, events: int) -> float:
    started = time.perf_counter()
    with path.open("rb") as file:
        file.seek(path.stat().st_size // 2)
        file.readline()  # the rest of a cut line
        for _ in range(events):
            orjson.loads(file.readline())
    return time.perf_counter() - started
