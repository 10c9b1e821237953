"""A node's feed of a session it does not own (``core/redis_feed.py``), on the real
redis-server of tests/redis_server.py. The owner's side is a real ``RedisEventLog`` appending
to the session's stream; the feed reads it through a client of its own (another node's).
Waits are bounded and wait on Redis itself (the events arriving through it)."""

from __future__ import annotations

import asyncio
import logging

import pytest
import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from hive_server.core.eventlog_redis import RedisEventLog
from hive_server.core.redis_backoff import Backoff
from hive_server.core.redis_feed import FeedSubscription, RedisFeed
from hive_server.core.stats import BUS_DROPS
from hive_server.errors.backend import FeedUnavailable
from tests.redis_server import REDIS_MARKS, _free_port
from tests.test_log_contract import SESSION, append_all

pytestmark = list(REDIS_MARKS)
WAIT = 10.0  # seconds: a bound on waiting for events through Redis, never reached when green


def node_client(url: str) -> redis.asyncio.Redis:
    """Another node's client, without redis-py's own retries: a failure reaches the feed."""
    return redis.asyncio.Redis.from_url(url, retry=Retry(NoBackoff(), 0))


@pytest.fixture
async def log(redis_client):
    owner = RedisEventLog(redis_client, SESSION)
    await owner.open()
    yield owner
    await owner.close()


@pytest.fixture
async def feed(redis_url):
    client = node_client(redis_url)
    node = RedisFeed(client, backoff=(0.01, 0.05))
    yield node
    try:
        async with asyncio.timeout(WAIT):  # a reader that never stops fails, never hangs
            await node.close()
    finally:
        await client.aclose()


async def take(sub: FeedSubscription, upto: int) -> list:
    """What ``sub`` hands out until seq ``upto`` (or its end), within ``WAIT``."""
    items: list = []
    async with asyncio.timeout(WAIT):
        while not items or items[-1].seq < upto:
            batch = await sub.get_all()
            if not batch:
                break
            items += batch
    return items


def seqs(items: list) -> list[int]:
    return [item.seq for item in items]


async def stopped(feed: RedisFeed) -> None:
    """The feed's stopped readers ended, within ``WAIT``: a stop whose cancel was lost in
    redis-py (see ``redis_backoff.honour_cancel``) takes one XREAD block at most."""
    async with asyncio.timeout(WAIT):
        await feed.wait_stopped()


def feed_tasks() -> list[asyncio.Task]:
    return [task for task in asyncio.all_tasks() if task.get_name().startswith("redis-feed:")]


async def test_live_events_reach_every_subscriber_in_order_from_one_reader(feed, log):
    subs = [await feed.subscribe(SESSION) for _ in range(3)]
    assert feed.streaming == [SESSION] and len(feed_tasks()) == 1
    await append_all(log, 1, 50)
    got = [await take(sub, 50) for sub in subs]
    await append_all(log, 51, 51)  # and nothing comes twice before it
    got = [items + await take(sub, 51) for items, sub in zip(got, subs, strict=True)]
    assert [seqs(items) for items in got] == [list(range(1, 52))] * 3
    assert all(a is b for a, b in zip(got[0], got[1], strict=True))  # one Event, one frame
    assert got[0][7].sse_frame() == (await log.read_after(7, 1))[0].sse_frame()


async def test_a_resume_replays_then_hands_over_to_live_with_no_gap_or_duplicate(feed, log):
    """Events are appended after the resuming subscriber joined the bus and before, during and
    after its replay: some of them both replayed and buffered (seen by the witness first)."""
    feed.replay_chunk = 7
    await append_all(log, 1, 30)
    witness = await feed.subscribe(SESSION)
    resumed = await feed.subscribe(SESSION, after=10)
    await append_all(log, 31, 40)
    assert seqs(await take(witness, 40)) == list(range(31, 41))  # now in both places
    items = await resumed.get_all()  # the first replay chunk: 11..17
    await append_all(log, 41, 60)  # while it replays
    items += await take(resumed, 60)
    await append_all(log, 61, 70)  # live
    items += await take(resumed, 70)
    assert seqs(items) == list(range(11, 71))
    assert items[0].sse_frame() == (await log.read_after(10, 1))[0].sse_frame()


async def test_a_resume_point_past_the_end_resumes_from_the_end(feed, log):
    await append_all(log, 1, 5)
    sub = await feed.subscribe(SESSION, after=99)  # an older incarnation's id
    await append_all(log, 6, 8)
    assert seqs(await take(sub, 8)) == [6, 7, 8]


async def test_a_types_filter_applies_to_the_replay_and_the_live_events(feed, log):
    await append_all(log, 1, 4)
    sub = await feed.subscribe(SESSION, after=0, types=frozenset({"session_started"}))
    other = await feed.subscribe(SESSION)
    await append_all(log, 5, 6)  # none of them is a session_started
    await take(other, 6)
    sub.close()
    assert await take(sub, 6) == [] and sub.end_reason == "closed"


async def test_closing_a_subscription_ends_its_replay(feed, log):
    feed.replay_chunk = 2
    await append_all(log, 1, 10)
    sub = await feed.subscribe(SESSION, after=0)
    assert seqs(await sub.get_all()) == [1, 2]
    sub.close()
    assert await sub.get_all() == [] and sub.end_reason == "closed"


async def test_a_stalled_subscriber_is_dropped_and_resumes_from_the_stream(feed, log):
    drops = BUS_DROPS.value
    stalled = await feed.subscribe(SESSION, maxsize=4)
    witness = await feed.subscribe(SESSION)
    await append_all(log, 1, 20)
    assert seqs(await take(witness, 20)) == list(range(1, 21))
    seen = seqs(await take(stalled, 20))  # its buffer, then the end: never a skip
    assert seen == [1, 2, 3, 4] and stalled.end_reason == "lagged"
    assert BUS_DROPS.value == drops + 1
    again = await feed.subscribe(SESSION, after=seen[-1])
    assert seen + seqs(await take(again, 20)) == list(range(1, 21))


async def test_the_reader_stops_with_its_last_subscriber_and_leaves_no_task(feed, log):
    first, second = await feed.subscribe(SESSION), await feed.subscribe(SESSION)
    first.close()
    first.close()  # idempotent
    await stopped(feed)
    assert feed.streaming == [SESSION] and len(feed_tasks()) == 1
    second.close()
    await stopped(feed)
    assert feed.streaming == [] and feed_tasks() == []
    assert await take(second, 1) == []
    third = await feed.subscribe(SESSION)  # a new reader
    await append_all(log, 1, 2)
    assert seqs(await take(third, 2)) == [1, 2]
    await feed.close()
    assert feed_tasks() == [] and third.end_reason == "feed_stopped"


async def test_a_subscriber_of_an_unreachable_redis_is_refused_and_no_reader_is_left():
    client = node_client(f"redis://127.0.0.1:{_free_port()}/0")
    node = RedisFeed(client)
    with pytest.raises(FeedUnavailable, match="cannot stream its events from Redis") as info:
        await node.subscribe(SESSION, after=0)
    assert "connecting to 127.0.0.1" in info.value.message  # why, not only "stopped"
    await node.wait_stopped()
    assert node.streaming == [] and feed_tasks() == []
    await client.aclose()


async def blocked_reader(client: redis.asyncio.Redis) -> str:
    """The id of the connection blocked in the feed's XREAD, once there is one."""
    async with asyncio.timeout(WAIT):
        while True:
            for info in await client.client_list():
                if info["cmd"] == "xread" and "b" in info["flags"]:
                    return info["id"]


async def test_the_reader_reconnects_after_its_connection_is_killed(feed, log, redis_client,
                                                                    caplog):
    caplog.set_level(logging.WARNING, "hive_server.core.redis_feed")
    sub = await feed.subscribe(SESSION)
    await append_all(log, 1, 5)
    items = await take(sub, 5)
    assert await redis_client.client_kill_filter(_id=await blocked_reader(redis_client)) == 1
    await append_all(log, 6, 10)
    items += await take(sub, 10)
    assert seqs(items) == list(range(1, 11)) and sub.end_reason is None
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 2, messages
    assert "Redis failed" in messages[0] and "answers again" in messages[1]


async def test_a_long_outage_logs_one_warning_and_the_reader_reads_on(feed, log, redis_client,
                                                                     caplog):
    """Redis refuses the reader's new connections for a while (a password set, its connection
    killed): it retries with its backoff and warns once; then it reads on from its last id."""
    caplog.set_level(logging.WARNING, "hive_server.core.redis_feed")
    sub = await feed.subscribe(SESSION)
    await append_all(log, 1, 2)
    items = await take(sub, 2)
    connections = (await redis_client.info("stats"))["total_connections_received"]
    await redis_client.config_set("requirepass", "r4-secret")  # this connection stays in
    try:
        await redis_client.client_kill_filter(_id=await blocked_reader(redis_client))
        async with asyncio.timeout(WAIT):  # several refused attempts
            while (await redis_client.info("stats"))["total_connections_received"] < (
                    connections + 4):
                await append_all(log, log.last_seq + 1, log.last_seq + 1)
    finally:
        await redis_client.config_set("requirepass", "")
    await append_all(log, log.last_seq + 1, log.last_seq + 1)
    items += await take(sub, log.last_seq)
    assert seqs(items) == list(range(1, log.last_seq + 1))
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 2 and "Redis failed" in messages[0], messages
    assert "answers again after" in messages[1] and "after 1 failed" not in messages[1]


def test_the_backoff_doubles_from_first_up_to_its_cap():
    backoff = Backoff("test", logging.getLogger("test"), first=0.05, cap=2.0)
    delays = []
    for failures in range(8):
        backoff.failures = failures
        delays.append(backoff.next_delay)
    assert delays == [0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0]
    with pytest.raises(ValueError, match="0 < first <= cap"):
        Backoff("test", logging.getLogger("test"), first=3, cap=2)
