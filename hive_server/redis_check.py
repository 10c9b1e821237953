"""``hive-server serve --redis URL`` at start: before anything else the node connects to Redis,
which must answer PING and persist as ``--durability`` needs (``core/redis_conn.py``), or the
server does not start (one line, exit code 2). With Redis the sessions' event logs, metas,
index, leases and triggers, the webhook inbox and the day's spend are kept there, shared by
every node on it; each node keeps its own ``--home`` (config, workspaces). README, "Running
several nodes"."""

from __future__ import annotations

import asyncio

from hive_server.core.eventlog import Durability
from hive_server.errors import HiveError


def redis_problem(url: str, durability: Durability) -> str | None:
    """Why the server cannot start with this Redis (one line), or None when it can."""
    return asyncio.run(_probe(url, durability))


async def _probe(url: str, durability: Durability) -> str | None:
    # Imported here, not at the top: redis-py takes about 160 ms to import, which only a
    # server started with --redis pays (the default, files only, never imports it).
    from hive_server.core.redis_conn import connect

    try:
        client = await connect(url, durability)
    except HiveError as exc:  # RedisUnreachable, RedisDurabilityRefused
        return exc.message
    await client.aclose()
    return None
