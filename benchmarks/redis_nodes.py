"""Cross-node figures on one Redis (issue 14), not yet a part of ``./scripts/bench``:

- forward latency: ``Forwarder.forward`` from one client to a ``CommandLoop`` on another whose
  handle appends the command to the session's ``RedisEventLog`` (a chat acknowledged once
  stored), one at a time: p50 / p90 / p99;
- append to feed: an event appended by the owner's log until a ``RedisFeed`` subscriber on
  another client has it, one at a time: p50 / p99;
- the feed's CPU per event: a stream entry's line parsed back into an ``Event``
  (``to_line`` + ``to_event``), against orjson.loads alone on the same bytes.

``python -m benchmarks.redis_nodes --url redis://127.0.0.1:6379/0 [--n 500]`` (it deletes the
keys of its own session, ``bench-nodes``, before and after).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import orjson
import redis.asyncio

from hive_server.core.eventlog_lines import to_line
from hive_server.core.eventlog_redis import RedisEventLog, session_key
from hive_server.core.redis_feed import RedisFeed
from hive_server.core.redis_forward import Command, CommandLoop, Forwarder
from hive_server.models.events import Event, EventType
from scripts.bench_eventlog import realistic_event

SESSION = "bench-nodes"


def quantiles(samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    cuts = statistics.quantiles(ms, n=100)
    return f"p50 {cuts[49]:.3f} ms, p90 {cuts[89]:.3f} ms, p99 {cuts[98]:.3f} ms (n={len(ms)})"


async def forwards(owner: redis.asyncio.Redis, sender: redis.asyncio.Redis, n: int) -> str:
    log = RedisEventLog(owner, SESSION)
    await log.open()

    async def handle(command: Command) -> int:
        event = Event(seq=log.last_seq + 1, type=EventType.CLIENT_INPUT_RECEIVED,
                      session_id=SESSION, data=command.body)
        await log.append(event)
        return event.seq

    loop = CommandLoop(owner, SESSION, "node-a", handle)
    loop.start()
    forwarder, samples = Forwarder(sender), []
    for i in range(n):
        started = time.perf_counter()
        await forwarder.forward(SESSION, {"message": f"hello {i}"}, 5.0)
        samples.append(time.perf_counter() - started)
    await loop.stop()
    await log.close()
    return quantiles(samples)


async def feed_latency(owner: redis.asyncio.Redis, reader: redis.asyncio.Redis, n: int) -> str:
    log = RedisEventLog(owner, SESSION)
    await log.open()
    feed = RedisFeed(reader)
    sub = await feed.subscribe(SESSION)
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        await log.append(realistic_event(log.last_seq + 1))
        await sub.get_all()
        samples.append(time.perf_counter() - started)
    await feed.close()
    await log.close()
    return quantiles(samples)


def parse_cost(n: int) -> str:
    raws = [realistic_event(seq).to_json() for seq in range(1, n + 1)]
    started = time.process_time()
    for raw in raws:
        to_line(0, raw).to_event()
    ours = time.process_time() - started
    started = time.process_time()
    for raw in raws:
        orjson.loads(raw)
    loads = time.process_time() - started
    return (f"{ours / n * 1e6:.2f} us CPU per event ({loads / n * 1e6:.2f} us of it "
            f"orjson.loads alone; {len(raws[0])} byte lines)")


async def main(url: str, n: int) -> None:
    clients = [redis.asyncio.Redis.from_url(url) for _ in range(2)]
    keys = [session_key(SESSION, "log"), session_key(SESSION, "cmd")]
    try:
        await clients[0].delete(*keys)
        print("forward (XADD -> owner stores -> reply):", await forwards(*clients, n))
        await clients[0].delete(*keys)
        print("append -> feed subscriber on another client:", await feed_latency(*clients, n))
        print("feed parse:", parse_cost(20_000))
    finally:
        await clients[0].delete(*keys)
        for client in clients:
            await client.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--n", type=int, default=500)
    options = parser.parse_args()
    asyncio.run(main(options.url, options.n))
