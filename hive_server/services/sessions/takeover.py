"""The takeover loop of a node on Redis (issue 14): a live session whose owner's lease lapsed
(the node died, or was cut off from Redis) is resumed by another node.

Every ``interval`` (a third of the lease ttl) the loop reads the sessions the index shows as
live (``RedisSessionStore.live_ids``), leaves out those this node runs or is starting, and
asks Redis which of the others have no lease; each of those is taken over
(``SessionManager.take_over``: the lease acquired, one winner cluster-wide, then the session
resumed from its stream as the boot resumes from files). One failure is logged and the next
round tries again (a session whose takeover failed waits ``RETRY_FAILED`` seconds before it
is tried again); a Redis outage is logged and retried at the next round.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import redis.asyncio
from redis.exceptions import RedisError

from hive_server.core.eventlog_redis import session_key
from hive_server.core.redis_backoff import honour_cancel

log = logging.getLogger(__name__)
RETRY_FAILED = 30.0  # seconds before a session whose takeover failed is tried again


class TakeoverLoop:
    """See the module docstring. ``start``, then ``close``."""

    def __init__(self, client: redis.asyncio.Redis, interval: float,
                 live_ids: Callable[[], Awaitable[set[str]]],
                 held_here: Callable[[str], bool],
                 take_over: Callable[[str], Awaitable[bool]], *,
                 clock: Callable[[], float] = time.monotonic):
        self._client = client
        self._interval = interval
        self._live_ids = live_ids
        self._held_here = held_here
        self._take_over = take_over
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
        self._failed: dict[str, float] = {}  # session -> monotonic time of its next try

    async def orphans(self) -> list[str]:
        """The live sessions with no lease that this node does not hold."""
        candidates = sorted(sid for sid in await self._live_ids() if not self._held_here(sid))
        if not candidates:
            return []
        async with self._client.pipeline(transaction=False) as pipe:
            for sid in candidates:
                pipe.exists(session_key(sid, "lease"))
            held = await pipe.execute()
        return [sid for sid, exists in zip(candidates, held, strict=True) if not exists]

    async def round(self) -> list[str]:
        """One round: the sessions this node took over. One that failed is tried again
        ``RETRY_FAILED`` seconds later (its error logged once per try, not every round)."""
        taken, now = [], self._clock()
        for sid in await self.orphans():
            if self._failed.get(sid, 0.0) > now:
                continue
            try:
                if await self._take_over(sid):
                    taken.append(sid)
                self._failed.pop(sid, None)
            except Exception:  # one session that cannot be resumed never stops the others
                log.exception("taking over session %s failed; next try in %g s", sid,
                              RETRY_FAILED)
                self._failed[sid] = now + RETRY_FAILED
        return taken

    def start(self) -> None:
        if self._task is not None:
            raise RuntimeError("the takeover loop was already started")
        self._task = asyncio.create_task(self._run(), name="session-takeover")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            try:
                await self.round()
            except (RedisError, OSError) as exc:  # Redis unreachable: the next round retries
                log.warning("takeover round failed: %r", exc)
            honour_cancel()
            await asyncio.sleep(self._interval)
