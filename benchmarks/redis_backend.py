"""``./scripts/bench --redis``: the Redis backend (issue 14) beside the file backend, in the
same run. A redis-server of the part's own (``redis_proc.py``: a free loopback port,
``appendonly yes``, files in the part's temp folder) starts with ``appendfsync everysec``, the
persistence ``batch`` needs, and is switched to ``always`` (``CONFIG SET``) for ``fsync``; each
switch is checked as a node checks it at start (``redis_conn``). Rows (ours: Redis, raw: the
file backend):

- the servers (``redis_cluster.py``): two ``--redis`` node processes and file-backend server
  processes, over HTTP: chat -> SSE latency on another node and on the owner, acknowledged
  chats per second (to the owner and forwarded from another node; ``batch`` and ``fsync``)
  and the servers' CPU per chat;
- the event log alone, in this process, on the same event lines: acknowledged appends, one
  publisher awaiting each, ``RedisEventLog`` against ``EventLog``, ``batch`` (everysec) and
  ``fsync`` (always), rounds alternating, the best of each; in ``batch`` also this process's
  CPU per append (the publisher's side: the log, its client); and with ``BURST`` appends in
  flight under ``fsync``: both logs' group commit (Redis: one script call, so one AOF write
  and fsync, for what was queued meanwhile).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import redis.asyncio

from benchmarks import redis_cluster
from benchmarks.redis_proc import redis_server
from benchmarks.sizes import Sizes
from benchmarks.table import Row
from hive_server.core.eventlog import Durability, EventLog
from hive_server.core.eventlog_redis import RedisEventLog
from hive_server.core.log_store import LogStore
from hive_server.core.redis_conn import connect
from scripts.bench_eventlog import realistic_event

BURST = 50  # appends in flight in the group commit row
Opener = Callable[[], Awaitable[LogStore]]  # a new, empty, opened log


async def run(root: Path, sizes: Sizes, rows: list[Row]) -> None:
    async with redis_server(root, "everysec") as url:
        client = await connect(url, Durability.BATCH)  # refuses unless everysec or always
        try:
            await redis_cluster.run(root, url, client, sizes, rows)
            await append_rows(root, client, Durability.BATCH, sizes, rows)
            await redis_cluster.set_appendfsync(client, "always")
            await append_rows(root, client, Durability.FSYNC, sizes, rows)
        finally:
            await client.aclose()


async def append_rows(root: Path, client: redis.asyncio.Redis, durability: Durability,
                      sizes: Sizes, rows: list[Row]) -> None:
    ours, raw = redis_logs(client), file_logs(root, durability)
    setting = "everysec" if durability is Durability.BATCH else "always"
    n = sizes.redis_appends if durability is Durability.BATCH else sizes.fsync_appends
    runs = [(1, n, "1 publisher")]
    if durability is Durability.FSYNC:
        runs.append((BURST, n * 5, f"{BURST} in flight"))
    for in_flight, count, label in runs:
        rates, cpus = await versus(ours, raw, count, in_flight, sizes.redis_rounds)
        rows.append(Row(f"acked appends, {label}, {durability}: Redis {setting} (vs file log)",
                        *rates, "ev/s"))
        if durability is Durability.BATCH:
            rows.append(Row(f"publisher's CPU per acked append, {label}, {durability}: Redis "
                            "(vs file log)", *cpus, "µs"))


def redis_logs(client: redis.asyncio.Redis) -> Opener:
    numbers = itertools.count(1)

    async def opened() -> LogStore:
        log = RedisEventLog(client, f"bench-appends-{next(numbers)}")
        await log.open()
        return log

    return opened


def file_logs(root: Path, durability: Durability) -> Opener:
    numbers = itertools.count(1)

    async def opened() -> LogStore:
        log = EventLog(root / f"appends-{durability}-{next(numbers)}.jsonl", durability)
        await log.open()
        return log

    return opened


async def versus(ours: Opener, raw: Opener, n: int, in_flight: int,
                 rounds: int) -> tuple[tuple[float, float], tuple[float, float]]:
    """Each one's best acknowledged appends per second and least CPU of this process per
    append (µs), their rounds alternating: ((ours, raw), (ours, raw))."""
    found: tuple[list[tuple[float, float]], ...] = ([], [])
    for _ in range(rounds):
        for opener, runs in zip((ours, raw), found, strict=True):
            log = await opener()
            try:
                runs.append(await acked(log, n, in_flight))
            finally:
                await log.close()
    best = [(n / min(wall for wall, _ in runs), min(cpu for _, cpu in runs) * 1e6 / n)
            for runs in found]
    return (best[0][0], best[1][0]), (best[0][1], best[1][1])


async def acked(log: LogStore, n: int, in_flight: int) -> tuple[float, float]:
    """Seconds and this process's CPU seconds until ``n`` appends are acknowledged,
    ``in_flight`` publishers each awaiting its own before the next (``n`` a multiple)."""

    async def publisher(count: int) -> None:
        for _ in range(count):
            await log.append(realistic_event(log.last_seq + 1))

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(publisher(n // in_flight) for _ in range(in_flight)))
    return time.perf_counter() - started, time.process_time() - cpu
