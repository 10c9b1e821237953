"""The sessions index in Redis (``services/sessions/index_redis.py``): what one page costs Redis.

    redis-server --port 6390 --save "" --appendonly no &
    .venv/bin/python -m benchmarks.redis_index --redis redis://127.0.0.1:6390/0 --sessions 10000

N sessions are put (status one of three, 20 agents, 5 queens, activity spread over 28 days),
then each filter is paged 10 times by cursor, 50 rows a page. Redis's own CPU per page is read
from ``INFO commandstats`` (EVALSHA, reset before each filter): a query is one script, and Redis
runs nothing else meanwhile. The database must be empty (it is emptied at the end). Prints one
JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from typing import Any

import redis.asyncio

from hive_server.models.session import SessionMeta
from hive_server.models.session_query import SessionFilter
from hive_server.services.sessions.index_redis import RedisSessionIndex

FILTERS = {
    "none": SessionFilter(), "status": SessionFilter(status=frozenset({"idle"})),
    "agent": SessionFilter(agent_id="a3"), "agent_q": SessionFilter(agent_id="a3", q="title 1"),
    "q": SessionFilter(q="title 1"),
    "status_active": SessionFilter(status=frozenset({"idle"}), active_after=1.0),
}


def meta(n: int, rnd: random.Random) -> SessionMeta:
    day = 1 + n % 28
    return SessionMeta(
        session_id=f"s-{n}", created_at=f"2026-11-{day:02d}T10:00:00+00:00",
        updated_at="2026-11-01T10:00:00+00:00", queen_id=f"q{n % 5}", queen_name="Q",
        model="m", agent_id=f"a{n % 20}", status=rnd.choice(["idle", "stopped", "active"]),
        last_active_at=f"2026-11-{day:02d}T{n % 24:02d}:{n % 60:02d}:00+00:00",
        message_count=n % 9, title=f"title {n}", first_message="hello there")


async def page_costs(index: RedisSessionIndex, client: redis.asyncio.Redis) -> dict[str, Any]:
    costs: dict[str, Any] = {}
    for name, where in FILTERS.items():
        await client.config_resetstat()
        started, cursor, total = time.perf_counter(), None, 0
        for _ in range(10):
            page = await index.query(where, 50, cursor)
            cursor, total = page.next_cursor, page.total
        stats = (await client.info("commandstats"))["cmdstat_evalsha"]
        costs[name] = {"total": total, "redis_us_per_page": round(stats["usec"] / 10),
                       "wall_ms_per_page": round((time.perf_counter() - started) * 100, 2)}
    return costs


async def main(url: str, sessions: int) -> dict[str, Any]:
    client = redis.asyncio.Redis.from_url(url)
    if await client.dbsize():
        await client.aclose()
        sys.exit(f"benchmarks.redis_index: the database at {url} is not empty")
    try:
        index, rnd = RedisSessionIndex(client), random.Random(1)
        for n in range(sessions):
            await index.put(meta(n, rnd))
        await index.query(SessionFilter(), 1)  # the script loaded before the figures
        return {"sessions": sessions, "pages": await page_costs(index, client)}
    finally:
        await client.flushdb()
        await client.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", required=True, metavar="URL")
    parser.add_argument("--sessions", type=int, default=10_000)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.redis, args.sessions)), indent=2))
