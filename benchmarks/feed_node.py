"""The other node of ``./scripts/bench --redis``'s latency rows: a process that does not own
the session follows it from Redis as a node would (``RedisFeed``: one reader task, ``XREAD
BLOCK`` from the last id it saw, publishing each event on this process's own bus) with one
subscriber on that bus (no HTTP: the SSE route does not use the feed yet). Each event's
``content`` is ``@@<time.monotonic() at publish>@@`` (a clock every process of the machine
shares); the delay to its arrival at the subscriber is recorded. ``@@END@@`` ends the run; it
prints one JSON object, ``{"delays": [seconds, ...]}``.

    python -m benchmarks.feed_node --url redis://127.0.0.1:PORT/0 --session SESSION
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Protocol

import redis.asyncio

from hive_server.core.redis_feed import RedisFeed

END = "END"


class Batches(Protocol):
    """A bus ``Subscription`` or a ``FeedSubscription``: their live items are ``Event``s."""

    async def get_all(self) -> list: ...


async def delays(sub: Batches) -> list[float]:
    """Publish -> arrival of every event until ``@@END@@`` (read by the subscriber itself)."""
    found: list[float] = []
    while batch := await sub.get_all():
        now = time.monotonic()
        for event in batch:
            value = event.data["content"].strip("@")
            if value == END:
                return found
            found.append(now - float(value))
    raise RuntimeError("the subscription ended before the last event")


async def follow(url: str, session: str, timeout: float) -> list[float]:
    client = redis.asyncio.Redis.from_url(url)
    feed = RedisFeed(client)
    try:
        sub = await feed.subscribe(session)
        print("subscribed", flush=True)
        return await asyncio.wait_for(delays(sub), timeout)
    finally:
        await feed.close()
        await client.aclose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--session", required=True)
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args(argv)
    found = asyncio.run(follow(args.url, args.session, args.timeout))
    print(json.dumps({"delays": found}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
