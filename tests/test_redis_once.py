"""Exactly-once records (``core/redis_once.py``, ``services/webhooks/deliveries_redis.py``) and
the cold-agent inbox in Redis (``services/webhooks/inbox_redis.py``) on the real redis-server
of tests/redis_server.py: racing claims of one tick or delivery (one wins), a new owner's retry
of a claimed tick, delivery dedupe scoped as the file store's, and the inbox's order, bound and
hand-over, compared with the file inbox doing the same."""

from __future__ import annotations

import asyncio
import socket

import orjson
import pytest
import redis.asyncio

from hive_server.core.redis_once import (
    DELIVERY_TTL,
    FIRE_TTL,
    claim_delivery,
    claim_fire,
    fire_claimer,
    release_delivery,
    retake_fire,
)
from hive_server.errors.triggers import (
    InboxUnavailable,
    InvalidId,
    NotSerialisable,
    WebhookInboxFull,
)
from hive_server.services.webhooks.deliveries_redis import RedisDeliveryStore
from hive_server.services.webhooks.inbox import WebhookInbox
from hive_server.services.webhooks.inbox_redis import RedisWebhookInbox
from tests.redis_server import REDIS_MARKS

pytestmark = list(REDIS_MARKS)
TICK = "2026-11-29T17:00:00+00:00"


async def test_one_of_many_racing_claims_of_a_tick_fires_it(redis_url, redis_client):
    node_b = redis.asyncio.Redis.from_url(redis_url)
    claims = [claim_fire(client, "s-1", "every-minute", TICK, node)
              for _ in range(25) for client, node in ((redis_client, "a"), (node_b, "b"))]
    won = await asyncio.gather(*claims)
    assert won.count(True) == 1
    winner = "ab"[won.index(True) % 2]
    assert await fire_claimer(node_b, "s-1", "every-minute", TICK) == winner
    await node_b.aclose()


async def test_a_new_owner_retrying_a_claimed_tick_does_not_fire_it_again(redis_client):
    assert await claim_fire(redis_client, "s-1", "hourly", TICK, "node-a")
    assert not await claim_fire(redis_client, "s-1", "hourly", TICK, "node-b")  # after failover
    assert await fire_claimer(redis_client, "s-1", "hourly", TICK) == "node-a"
    ttl = await redis_client.ttl(f"hive:fire:{{s-1}}:hourly:{TICK}")  # the session's hash tag
    assert FIRE_TTL - 5 < ttl <= FIRE_TTL and ttl > 86400  # days: it outlives any failover
    for other in (("s-1", "hourly", "2026-11-29T18:00:00+00:00"), ("s-1", "daily", TICK),
                  ("s-2", "hourly", TICK)):  # another tick, trigger or session: its own record
        assert await claim_fire(redis_client, *other, "node-b")
    assert await fire_claimer(redis_client, "s-1", "hourly", "2026-11-30T00:00:00Z") is None


async def test_a_tick_claimed_by_a_lost_lease_is_taken_over_by_one_new_claimant(
        redis_client):
    """node-a (lease token 1) claimed the tick and was cut off before firing it; node-b and
    node-c race to take the claim over: one wins, and only from the claimant it held."""
    assert await claim_fire(redis_client, "s-1", "hourly", TICK, "node-a:1")
    retakes = [retake_fire(redis_client, "s-1", "hourly", TICK, "node-a:1", claimant)
               for _ in range(10) for claimant in ("node-b:2", "node-c:3")]
    won = await asyncio.gather(*retakes)
    assert won.count(True) == 1
    winner = ("node-b:2", "node-c:3")[won.index(True) % 2]
    assert await fire_claimer(redis_client, "s-1", "hourly", TICK) == winner
    assert not await retake_fire(redis_client, "s-1", "hourly", TICK, "node-a:1", "node-d:4")
    assert await redis_client.ttl(f"hive:fire:{{s-1}}:hourly:{TICK}") > FIRE_TTL - 5
    assert not await retake_fire(redis_client, "s-1", "daily", TICK, "node-a:1", "node-b:2")
    assert await fire_claimer(redis_client, "s-1", "daily", TICK) is None  # none made


async def test_a_delivery_id_is_claimed_once_until_released(redis_client):
    won = await asyncio.gather(*(claim_delivery(redis_client, "d-1") for _ in range(30)))
    assert won.count(True) == 1
    assert DELIVERY_TTL - 5 < await redis_client.ttl("hive:webhook:delivery:d-1") <= DELIVERY_TTL
    await release_delivery(redis_client, "d-1")  # not accepted after all: the retry gets in
    assert await claim_delivery(redis_client, "d-1")
    assert not await claim_delivery(redis_client, "d-1")
    assert await claim_delivery(redis_client, "d-2", ttl=60)
    assert 55 < await redis_client.ttl("hive:webhook:delivery:d-2") <= 60
    for ttl in (0, -1, 0.5):
        with pytest.raises(ValueError, match="positive number of seconds"):
            await claim_delivery(redis_client, "d-3", ttl)
        with pytest.raises(ValueError, match="positive number of seconds"):
            await claim_fire(redis_client, "s-1", "t", TICK, "node-a", ttl)
    assert await redis_client.exists("hive:webhook:delivery:d-3") == 0


async def test_the_delivery_store_dedupes_per_agent_and_trigger_as_the_file_one(redis_client):
    store = RedisDeliveryStore(redis_client)
    assert await store.record("agent", "push", "d-1")
    assert not await store.record("agent", "push", "d-1")
    assert await store.record("agent", "pull", "d-1")  # another trigger: its own ids
    assert await store.record("other", "push", "d-1")
    await store.forget("agent", "push", "d-1")
    assert await store.record("agent", "push", "d-1")
    keys = [key.decode() async for key in redis_client.scan_iter("hive:webhook:delivery:*")]
    assert len(keys) == 3 and not any("d-1" in key for key in keys)  # hashed, never raw


def delivery(n: int, size: int = 10) -> dict:
    return {"delivery_id": f"d-{n}", "received_at": 1_000 + n,
            "headers": {"webhook-id": f"d-{n}"}, "payload": "x" * size}


async def test_the_inbox_holds_in_order_and_hands_over_once(redis_client):
    inbox = RedisWebhookInbox(redis_client)
    for n in range(5):
        await inbox.put("agent", "push", delivery(n))
    await inbox.put("agent", "pull", delivery(9))
    takes = await asyncio.gather(*(inbox.take("agent", "push") for _ in range(4)))
    assert sorted(takes, key=len) == [[], [], [], [delivery(n) for n in range(5)]]
    assert await inbox.take("agent", "pull") == [delivery(9)]
    assert await redis_client.keys("hive:{inbox}:*") == []  # nothing left behind


async def test_the_inbox_is_bounded_and_held_as_the_file_inbox(redis_client, tmp_path):
    """The same puts on the file inbox and the Redis one (bound: a byte short of three
    lines): the same ones refused once a trigger's list holds that much, the same held
    listing, the same takes."""
    bound = 3 * len(orjson.dumps(delivery(0, size=40)) + b"\n") - 1
    inboxes = [WebhookInbox(tmp_path, max_bytes=bound),
               RedisWebhookInbox(redis_client, max_bytes=bound)]
    puts = [("b-agent", "push", n) for n in range(6)] + [("agent", "pull", 7),
                                                         ("agent-2", "push", 8)]
    outcomes = []
    for inbox in inboxes:
        refused = []
        for agent_id, trigger_id, n in puts:
            try:
                await inbox.put(agent_id, trigger_id, delivery(n, size=40))
            except WebhookInboxFull:
                refused.append(n)
        outcomes.append((refused, (await inbox.held()).model_dump(),
                         await inbox.take("b-agent", "push")))
    assert outcomes[0] == outcomes[1]
    refused, held, taken = outcomes[1]
    assert refused == [3, 4, 5] and [d["delivery_id"] for d in taken] == ["d-0", "d-1", "d-2"]
    assert [(h["agent_id"], h["trigger_id"], h["count"]) for h in held["held"]] == [
        ("agent", "pull", 1), ("agent-2", "push", 1), ("b-agent", "push", 3)]
    assert held["total"] == 5 and (await inboxes[1].held()).total == 2


async def test_the_inbox_refuses_bad_ids_and_values_and_a_redis_that_fails(redis_client):
    inbox = RedisWebhookInbox(redis_client)
    for agent_id, trigger_id in (("a:b", "push"), ("agent", "../x"), ("", "push")):
        with pytest.raises(InvalidId):
            await inbox.put(agent_id, trigger_id, delivery(1))
    with pytest.raises(NotSerialisable):
        await inbox.put("agent", "push", {"payload": object()})
    assert (await inbox.held()).total == 0
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens there once it is closed
    gone = redis.asyncio.Redis.from_url(f"redis://127.0.0.1:{port}/0")
    for call in (RedisWebhookInbox(gone).put("agent", "push", delivery(1)),
                 RedisWebhookInbox(gone).take("agent", "push"), RedisWebhookInbox(gone).held()):
        with pytest.raises(InboxUnavailable):
            await call
    await gone.aclose()
