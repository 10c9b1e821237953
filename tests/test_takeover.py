"""The takeover loop (``services/sessions/takeover.py``) on a real Redis: which sessions it
tries, and a session whose takeover failed is tried again only ``RETRY_FAILED`` later."""

from __future__ import annotations

import redis.asyncio

from hive_server.core.eventlog_redis import session_key
from hive_server.services.sessions.takeover import RETRY_FAILED, TakeoverLoop
from tests.redis_server import redis_test


class Taker:
    """``take_over`` that fails for the ids in ``failing`` and records every try."""

    def __init__(self, failing: set[str]):
        self.failing = failing
        self.tried: list[str] = []

    async def __call__(self, session_id: str) -> bool:
        self.tried.append(session_id)
        if session_id in self.failing:
            raise RuntimeError(f"{session_id} cannot be resumed")
        return True


@redis_test
async def test_orphans_only_and_a_failed_one_waits_before_its_next_try(
        redis_client: redis.asyncio.Redis) -> None:
    now = [1000.0]
    await redis_client.set(session_key("leased", "lease"), "n9:1")

    async def live_ids() -> set[str]:
        return {"leased", "here", "broken", "orphan"}

    taker = Taker({"broken"})
    loop = TakeoverLoop(redis_client, 1.0, live_ids, lambda sid: sid == "here", taker,
                        clock=lambda: now[0])
    assert await loop.round() == ["orphan"]
    assert sorted(taker.tried) == ["broken", "orphan"]
    taker.tried.clear()
    now[0] += RETRY_FAILED - 1
    await loop.round()
    assert "broken" not in taker.tried
    taker.failing.clear()
    now[0] += 2
    assert "broken" in await loop.round()
