"""Today's spend across nodes (``services/budget/ledger_redis.py``) on a real Redis: two
ledgers are two nodes; rounds are driven with ``sync``/``flush`` (no sleeps); the day comes
from a fake clock; an outage is a port nothing listens on, then a forwarder to the Redis."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from hive_server.core.clock import FakeClock
from hive_server.services.budget.ledger import Spend, utc_day
from hive_server.services.budget.ledger_redis import (
    KEEP_DAYS,
    KEY_TTL,
    RedisSpendLedger,
    day_key,
    parse_day,
)
from tests.redis_server import RedisServer, redis_test

DAY = 86_400


@pytest.fixture
async def clients() -> AsyncIterator[list[redis.asyncio.Redis]]:
    made: list[redis.asyncio.Redis] = []
    yield made
    for client in made:
        await client.aclose()


def ledger(clients: list[redis.asyncio.Redis], url: str, clock: FakeClock) -> RedisSpendLedger:
    """A node's ledger on its own client, refused at once (no retries) when Redis is not there."""
    client = redis.asyncio.Redis.from_url(url, retry=Retry(NoBackoff(), 0))
    clients.append(client)
    return RedisSpendLedger(client, clock)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


@contextlib.asynccontextmanager
async def forwarder(port: int, redis_port: int) -> AsyncIterator[None]:
    """Redis answering on ``port`` for the block (nothing listens there before)."""
    pipes: set[asyncio.Task[None]] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", redis_port)
        for task in (_pipe(reader, up_writer), _pipe(up_reader, writer)):
            pipes.add(asyncio.create_task(task))

    server = await asyncio.start_server(serve, "127.0.0.1", port)
    try:
        yield
    finally:
        server.close()
        for task in pipes:
            task.cancel()
        await asyncio.gather(*pipes, return_exceptions=True)
        await server.wait_closed()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def nodes(clients, redis_url: str, clock: FakeClock) -> tuple[RedisSpendLedger, ...]:
    """Two nodes' ledgers on one Redis."""
    return ledger(clients, redis_url, clock), ledger(clients, redis_url, clock)


@redis_test
async def test_spend_on_one_node_is_seen_by_the_other_after_its_round(
        nodes, clock: FakeClock, redis_client: redis.asyncio.Redis) -> None:
    one, two = nodes
    await one.load()  # its rounds in its task: a flush waits for one
    await two.sync()  # two reads only when told to
    one.add("pricey", Spend(1000, 0.25))
    one.add(None, Spend(10, 0.0))
    assert one.total() == Spend(1010, 0.25)  # at once on its own node
    assert one.agent("pricey") == Spend(1000, 0.25)
    assert two.total() == Spend()  # not sent yet
    await one.flush()
    assert two.total() == Spend()  # sent, not read yet
    await two.sync()
    assert two.total() == Spend(1010, 0.25) and two.agent("pricey") == Spend(1000, 0.25)
    two.add("pricey", Spend(5, 0.5))
    assert two.total() == Spend(1015, 0.75)  # the cluster's plus its own unsent
    await two.sync()
    await one.sync()
    assert one.total() == two.total() == Spend(1015, 0.75)
    assert one.agent("pricey") == Spend(1005, 0.75) and one.agent("other") == Spend()
    key = day_key(utc_day(clock.time()))
    assert parse_day(await redis_client.hgetall(key)) == {"": Spend(1015, 0.75),
                                                          "pricey": Spend(1005, 0.75)}
    assert 0 < await redis_client.ttl(key) <= KEY_TTL
    await one.close()
    await two.close()


@redis_test
async def test_the_day_rolls_at_utc_midnight_and_late_spend_goes_to_its_own_day(
        nodes, clock: FakeClock, redis_client: redis.asyncio.Redis) -> None:
    one, two = nodes
    first_day = one.day
    one.add("a", Spend(700, 0.0))
    await one.sync()
    one.add("a", Spend(50, 0.0))  # settled before midnight, sent after it
    await clock.advance(DAY)
    assert one.day != first_day and one.total() == Spend()
    one.add("a", Spend(3, 0.0))
    await one.sync()
    await two.sync()
    assert two.day == one.day and two.total() == Spend(3, 0.0)
    old = parse_day(await redis_client.hgetall(day_key(first_day)))
    assert old == {"": Spend(750, 0.0), "a": Spend(750, 0.0)}


@redis_test
async def test_an_outage_keeps_the_increments_and_a_round_sends_them_later(
        clients, redis_url: str, redis_server: RedisServer, caplog: Any) -> None:
    clock, port = FakeClock(), free_port()
    down = ledger(clients, f"redis://127.0.0.1:{port}/0", clock)
    other = ledger(clients, redis_url, clock)
    caplog.set_level(logging.WARNING, "hive_server.services.budget.ledger_redis")
    await down.load()  # nothing listens: refused, started at 0, nothing raised
    down.add("a", Spend(400, 0.5))
    assert not await down.sync()
    down.add("a", Spend(100, 0.0))
    await down.flush()  # the task's round: refused too, never raised
    assert down.total() == Spend(500, 0.5)  # still counted here
    warned = [r for r in caplog.records if "Redis failed" in r.message]
    assert len(warned) == 1  # one per outage
    async with forwarder(port, redis_server.port):
        assert await down.sync()
        assert down.total() == Spend(500, 0.5)  # now from the hash, not counted twice
        await other.sync()
        assert other.total() == Spend(500, 0.5) and other.agent("a") == Spend(500, 0.5)
        assert any("answers again" in r.message for r in caplog.records)
        await down.close()


@redis_test
async def test_an_outage_keeps_at_most_two_days_of_increments(clients, caplog: Any) -> None:
    clock = FakeClock()
    down = ledger(clients, f"redis://127.0.0.1:{free_port()}/0", clock)
    caplog.set_level(logging.WARNING, "hive_server.services.budget.ledger_redis")
    for day in range(KEEP_DAYS + 1):
        down.add(None, Spend(10 + day, 0.0))
        assert not await down.sync()
        await clock.advance(DAY)
    assert [r.message for r in caplog.records if "dropped" in r.message] == [
        f"spend ledger: Redis unreachable since {utc_day(clock.time() - 3 * DAY)}; that "
        "day's 10 tokens / 0 USD of this node are dropped"]
    await down.close()  # one last try, refused: what is lost is said
    assert any(r.message == "spend ledger: 23 tokens / 0 USD of this node never reached Redis"
               for r in caplog.records)
