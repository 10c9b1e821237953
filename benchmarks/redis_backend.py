"""``./scripts/bench --redis``: the Redis backend (issue 14) beside the file backend, in the
same run. A redis-server of the part's own (``redis_proc.py``: a free loopback port,
``appendonly yes``, files in the part's temp folder) starts with ``appendfsync everysec``, the
persistence ``batch`` needs, and is switched to ``always`` (``CONFIG SET``) for ``fsync``; each
switch is checked as a node checks it at start (``redis_conn``). Rows (ours: Redis, raw: the
file backend, on the same event lines):

- acknowledged appends, one publisher awaiting each: ``RedisEventLog`` against ``EventLog``,
  ``batch`` (everysec) and ``fsync`` (always), rounds alternating, the best of each; in
  ``batch`` also this process's CPU per append (the publisher's side: the log, its client);
- the same with ``BURST`` appends in flight under ``fsync``: both logs' group commit (Redis:
  one script call, so one AOF write and fsync, for what was queued meanwhile);
- publish -> subscriber p50 and p99 at a fixed rate: on another node, a second process that
  does not own the session (``feed_node.py``: ``RedisFeed`` into its own bus, one subscriber
  on that bus; no HTTP, the SSE route does not use the feed yet) while this process appends
  to the session's stream, against the file backend's own path, the same process's bus (the
  event appended to ``events.jsonl`` and published as ``SessionJournal.emit`` does).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import redis.asyncio

from benchmarks.feed_node import END, delays
from benchmarks.procs import scrubbed_env
from benchmarks.redis_proc import die_with_parent, redis_server
from benchmarks.sizes import Sizes
from benchmarks.sse import Publish, paced
from benchmarks.table import Row
from hive_server.core.bus import EventBus
from hive_server.core.eventlog import Durability, EventLog
from hive_server.core.eventlog_redis import RedisEventLog
from hive_server.core.log_store import LogStore
from hive_server.core.redis_conn import check_durability, connect
from hive_server.models.events import Event
from scripts.bench_eventlog import realistic_event

BURST = 50  # appends in flight in the group commit row
Opener = Callable[[], Awaitable[LogStore]]  # a new, empty, opened log


async def run(root: Path, sizes: Sizes, rows: list[Row]) -> None:
    async with redis_server(root, "everysec") as url:
        client = await connect(url, Durability.BATCH)  # refuses unless everysec or always
        try:
            await append_rows(root, client, Durability.BATCH, sizes, rows)
            await latency_rows(root, url, client, sizes, rows)
            await client.config_set("appendfsync", "always")
            await check_durability(client, Durability.FSYNC)
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


async def latency_rows(root: Path, url: str, client: redis.asyncio.Redis, sizes: Sizes,
                       rows: list[Row]) -> None:
    remote = await node_delays(url, client, sizes)
    local = await bus_delays(root, sizes)
    for name, fraction in (("p50", 0.5), ("p99", 0.99)):
        rows.append(Row(
            f"publish→bus subscriber {name}, another node via Redis (vs file: same process), "
            f"{sizes.sse_rate} ev/s", quantile(remote, fraction) * 1000,
            quantile(local, fraction) * 1000, "ms"))


def quantile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def appending(log: LogStore, session: str, bus: EventBus | None,
              ) -> tuple[Publish, list[asyncio.Future[None]]]:
    """``publish(value)``: append an event carrying ``@@value@@`` (and publish it on ``bus``,
    as ``SessionJournal.emit`` does); the list collects the appends' futures."""
    stored: list[asyncio.Future[None]] = []

    def publish(value: str) -> None:
        event = Event(seq=log.last_seq + 1, type="llm_text_delta", session_id=session,
                      data={"content": f"@@{value}@@", "snapshot": ""})
        stored.append(log.append(event))
        if bus is not None:
            bus.publish(event)

    return publish, stored


async def publish_paced(publish: Publish, stored: list[asyncio.Future[None]],
                        sizes: Sizes) -> None:
    await paced(publish, sizes.sse_rate, sizes.sse_seconds)
    publish(END)
    await asyncio.gather(*stored)


async def node_delays(url: str, client: redis.asyncio.Redis, sizes: Sizes) -> list[float]:
    """Publish -> arrival at the other node's bus subscriber (``feed_node.py``)."""
    log = RedisEventLog(client, "bench-feed")
    await log.open()
    node = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks.feed_node", "--url", url, "--session", "bench-feed",
        stdout=asyncio.subprocess.PIPE, env=scrubbed_env(), preexec_fn=die_with_parent)
    assert node.stdout is not None
    try:
        if await node.stdout.readline() != b"subscribed\n":
            raise RuntimeError(f"benchmarks.feed_node did not subscribe ({await node.wait()})")
        await publish_paced(*appending(log, "bench-feed", None), sizes)
        out, _ = await asyncio.wait_for(node.communicate(), 60)
    finally:
        if node.returncode is None:
            node.kill()
            await node.wait()
        await log.close()
    if node.returncode != 0:
        raise RuntimeError(f"benchmarks.feed_node failed ({node.returncode})")
    return json.loads(out)["delays"]


async def bus_delays(root: Path, sizes: Sizes) -> list[float]:
    """Publish -> arrival at a subscriber of the same process's bus, the file log's path."""
    log = EventLog(root / "bus.jsonl", Durability.BATCH)
    await log.open()
    bus = EventBus("bench-file")
    reader = asyncio.create_task(delays(bus.subscribe()))
    try:
        await publish_paced(*appending(log, "bench-file", bus), sizes)
        return await reader
    finally:
        reader.cancel()
        await log.close()
