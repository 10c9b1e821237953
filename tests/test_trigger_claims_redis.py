"""Fire claims and trigger state in Redis (services/triggers/claims_redis.py, store_redis.py)
on the real redis-server of tests/redis_server.py: two owners racing for a tick (one fires),
a new lease taking over a tick an older lease claimed and did not fire, a stale owner refused,
a failover between two apps (the old owner claimed the next tick and stopped: the new owner
fires it once); the saved state's bytes, a corrupt value kept aside, fenced saves."""

from __future__ import annotations

import asyncio
import logging
import shutil

import orjson
import pytest
import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from hive_server import keys
from hive_server.core.clock import FakeClock
from hive_server.core.eventlog_redis import session_key
from hive_server.core.redis_once import claim_fire, fire_claimer
from hive_server.errors.backend import LogFenced
from hive_server.errors.triggers import TriggerStateUnavailable
from hive_server.models.triggers import TriggerSpec, TriggerState
from hive_server.services.triggers.claims import tick_text
from hive_server.services.triggers.claims_redis import (
    older_lease,
    redis_fire_claim,
    under_lease,
)
from hive_server.services.triggers.store import SavedTriggers, TriggerStore
from hive_server.services.triggers.store_redis import (
    RedisTriggerStore,
    peek_trigger_states,
    read_trigger_state_redis,
)
from tests.conftest import make_settings
from tests.hive_api import HiveApi
from tests.redis_server import REDIS_MARKS
from tests.trigger_support import fired, ms, next_fired, timer

pytestmark = list(REDIS_MARKS)
TICK = 1_800_000_600.0
INTERVAL = 600


# -- claims ---------------------------------------------------------------------------------------

async def test_of_two_owners_racing_for_a_tick_one_fires_it(redis_url, redis_client):
    other = redis.asyncio.Redis.from_url(redis_url)
    try:
        answers = await asyncio.gather(*(
            redis_fire_claim(client, "s", lease)("tick", TICK)
            for client, lease in ((redis_client, "node-a:4"), (other, "node-b:4"))))
    finally:
        await other.aclose()
    assert sorted(answers) == [False, True]


async def test_a_new_lease_fires_a_tick_an_older_lease_claimed_once(redis_client):
    assert await claim_fire(redis_client, "s", "tick", tick_text(TICK), "node-a:1")
    racers = [redis_fire_claim(redis_client, "s", lease) for lease in ("node-b:2", "node-c:2")]
    answers = await asyncio.gather(*(claim("tick", TICK) for claim in racers))
    assert sorted(answers) == [False, True]  # two new owners (a split): one takes it over
    winner = ("node-b:2", "node-c:2")[answers.index(True)]
    assert await fire_claimer(redis_client, "s", "tick", tick_text(TICK)) == winner
    assert not await redis_fire_claim(redis_client, "s", winner)("tick", TICK)  # asked again


async def test_a_stale_owner_never_fires_a_tick_a_newer_lease_claimed(redis_client):
    assert await redis_fire_claim(redis_client, "s", "node-b:7")("tick", TICK)
    assert not await redis_fire_claim(redis_client, "s", "node-a:6")("tick", TICK)
    assert await fire_claimer(redis_client, "s", "tick", tick_text(TICK)) == "node-b:7"
    assert await redis_fire_claim(redis_client, "s", "node-a:6")("tick", TICK + INTERVAL)


async def test_claims_are_per_session_trigger_and_tick(redis_client):
    claim = redis_fire_claim(redis_client, "s", "node-a:1")
    assert await claim("tick", TICK) and await claim("other", TICK)
    assert await claim("tick", TICK + INTERVAL)
    assert await redis_fire_claim(redis_client, "t", "node-b:1")("tick", TICK)


def test_only_a_smaller_fencing_token_is_an_older_lease():
    assert older_lease("node-a:9", "node-b:10")
    assert not older_lease("node-b:10", "node-a:9")
    assert not older_lease("node-a:9", "node-a:9")
    assert not older_lease("node-a", "node-b:10")  # a claimant that is not a lease value
    assert older_lease("host:with:colons-1:3", "other:4")


async def test_an_unreachable_redis_fails_the_claim(unused_tcp_port):
    client = redis.asyncio.Redis(port=unused_tcp_port, socket_connect_timeout=1,
                                 retry=Retry(NoBackoff(), 0))  # refused at once, no retries
    try:
        with pytest.raises(redis.exceptions.ConnectionError):
            await redis_fire_claim(client, "s", "node-a:1")("tick", TICK)
    finally:
        await client.aclose()


async def test_a_failover_fires_the_tick_the_old_owner_claimed_once(
        make_client, tmp_path, redis_client):
    """Node A fires the first tick, claims the second and stops before firing it; node B
    resumes the same saved state with a newer lease: it fires the second tick (retaken) and
    the third."""
    clock = FakeClock(1_800_000_000.25)
    t0 = clock.time()
    first, second = make_settings(tmp_path / "a"), make_settings(tmp_path / "b")
    node_a = await make_client(first, clock=clock)
    api = HiveApi(node_a)
    await api.create_session(session_id="s")
    node_a.app[keys.SESSIONS].get("s").triggers.fire_claim = redis_fire_claim(
        redis_client, "s", "node-a:1")
    stream = await api.events("s")
    await api.add_trigger("s", timer("tick", interval_minutes=10))
    await clock.advance(INTERVAL)
    await next_fired(stream)
    stream.close()
    assert await claim_fire(redis_client, "s", "tick", tick_text(t0 + 2 * INTERVAL), "node-a:1")
    await node_a.close()

    shutil.copytree(first.home / "sessions" / "s", second.home / "sessions" / "s")
    node_b = await make_client(second, clock=clock)
    node_b.app[keys.SESSIONS].get("s").triggers.fire_claim = redis_fire_claim(
        redis_client, "s", "node-b:2")
    stream = await HiveApi(node_b).events("s")
    await clock.advance(2 * INTERVAL)
    events = []
    while len(fired(events)) < 3:
        events += (await next_fired(stream))[1]
    assert [e["data"]["tick"] for e in fired(events)] == [
        ms(t0 + INTERVAL), ms(t0 + 2 * INTERVAL), ms(t0 + 3 * INTERVAL)]
    assert await fire_claimer(redis_client, "s", "tick", tick_text(t0 + 2 * INTERVAL)) == (
        "node-b:2")
    stream.close()


async def _under_lease(make_client, tmp_path, redis_url, clock: FakeClock):
    """Session "s" on a Redis node n1, its triggers run under its lease (``under_lease``)."""
    node = await make_client(make_settings(tmp_path, redis=redis_url, node_id="n1"),
                             clock=clock)
    api = HiveApi(node)
    await api.create_session(session_id="s")
    live = node.app[keys.SESSIONS].get("s")
    under_lease(live.triggers, node.app[keys.REDIS_NODE].client, live.lease)
    return api, live


async def test_a_session_under_its_lease_claims_its_ticks_and_keeps_its_state_in_redis(
        make_client, tmp_path, redis_url, redis_client):
    clock = FakeClock()
    t0 = clock.time()
    api, live = await _under_lease(make_client, tmp_path, redis_url, clock)
    stream = await api.events("s")
    await api.add_trigger("s", timer("tick", interval_minutes=10))
    await clock.advance(INTERVAL)
    fired_event, _ = await next_fired(stream)
    stream.close()
    assert fired_event["data"]["tick"] == ms(t0 + INTERVAL)
    assert await fire_claimer(redis_client, "s", "tick", tick_text(t0 + INTERVAL)) == (
        live.lease.value)
    saved, _ = await RedisTriggerStore(redis_client, "s").load()
    assert saved.state["tick"].fire_count == 1 and saved.state["tick"].last_tick == t0 + INTERVAL
    assert not (tmp_path / "home" / "sessions" / "s" / "triggers.json").exists()


async def test_a_tick_refused_by_the_fenced_log_halts_the_triggers_in_one_line(
        make_client, tmp_path, redis_url, redis_client, caplog):
    """Another node took the session over before this one knew: the tick's state save is
    refused (fenced as the log is); the triggers fire nothing more (the queen gets nothing),
    logged once, with no traceback from the scheduler."""
    caplog.set_level(logging.INFO, logger="hive_server.services.triggers")
    clock = FakeClock()
    api, _ = await _under_lease(make_client, tmp_path, redis_url, clock)
    await api.add_trigger("s", timer("tick", interval_minutes=10))
    before = await _stream_types(redis_client, "s")
    await redis_client.set(session_key("s", "lease"), "n2:99")  # taken over, n1 unaware
    await clock.advance(INTERVAL)
    await _logged(caplog, "its triggers fire nothing more")  # the tick's claim and save: I/O
    await clock.advance(INTERVAL)
    assert caplog.text.count("its triggers fire nothing more") == 1
    assert "callback" not in caplog.text
    assert await _stream_types(redis_client, "s") == before


async def _logged(caplog, text: str, timeout: float = 10.0) -> None:
    """Wait for ``text`` in the captured log (a callback waiting on Redis replies)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while text not in caplog.text:
        assert asyncio.get_running_loop().time() < deadline, f"never logged: {text}"
        await asyncio.sleep(0.01)


async def _stream_types(client: redis.asyncio.Redis, sid: str) -> list[str]:
    entries = await client.xrange(session_key(sid, "log"))
    return [orjson.loads(fields[b"e"])["type"] for _, fields in entries]


# -- the saved state ------------------------------------------------------------------------------

def some_state() -> SavedTriggers:
    spec = TriggerSpec.parse(timer("tick", interval_minutes=10))
    return SavedTriggers(api={"tick": spec}, removed={"old"}, agent_id="agent",
                         state={"tick": TriggerState(active=True, anchor=TICK, last_tick=TICK)})


async def test_the_state_is_the_files_bytes_in_one_key(redis_client, tmp_path):
    store = RedisTriggerStore(redis_client, "s")
    assert await store.load() == (SavedTriggers(), None)
    await store.save(some_state())
    await TriggerStore(tmp_path).save(some_state())
    assert await redis_client.get(session_key("s", "triggers")) == (
        tmp_path / "triggers.json").read_bytes()
    assert await read_trigger_state_redis(redis_client, "s") == ((some_state(), None), 0)


async def test_a_corrupt_value_is_kept_aside_and_what_can_be_read_is_used(redis_client):
    key = session_key("s", "triggers")
    data = some_state().to_json().replace(b'"removed"', b'"removed": 7, "x"')
    await redis_client.set(key, data)
    saved, aside = await RedisTriggerStore(redis_client, "s").load()
    assert saved.api == some_state().api and saved.removed == set()
    assert aside is not None and aside.error == "removed is not a list of ids"
    assert aside.kept_as.startswith(f"{key}.corrupt-")
    assert await redis_client.get(aside.kept_as) == data
    assert await redis_client.exists(key) == 0
    await redis_client.set(key, b"{not json")  # a second one within the same second
    _, again = await RedisTriggerStore(redis_client, "s").load()
    assert again is not None and again.kept_as == f"{aside.kept_as}-2"


async def test_a_save_under_a_lease_taken_over_is_refused(redis_client):
    await redis_client.set(session_key("s", "lease"), "node-a:1")
    await RedisTriggerStore(redis_client, "s", lease="node-a:1").save(some_state())
    await redis_client.set(session_key("s", "lease"), "node-b:2")
    with pytest.raises(LogFenced):
        await RedisTriggerStore(redis_client, "s", lease="node-a:1").save(SavedTriggers())
    assert await RedisTriggerStore(redis_client, "s").load() == (some_state(), None)


async def test_an_unreachable_redis_is_503_trigger_state_unavailable(unused_tcp_port):
    client = redis.asyncio.Redis(port=unused_tcp_port, socket_connect_timeout=1,
                                 retry=Retry(NoBackoff(), 0))  # refused at once, no retries
    store = RedisTriggerStore(client, "s")
    try:
        with pytest.raises(TriggerStateUnavailable):
            await store.save(some_state())
        with pytest.raises(TriggerStateUnavailable):
            await store.load()
        with pytest.raises(TriggerStateUnavailable):
            await peek_trigger_states(client, ["s"])
    finally:
        await client.aclose()


async def test_another_node_peeks_at_saved_states_renaming_nothing(redis_client):
    await RedisTriggerStore(redis_client, "s").save(some_state())
    await redis_client.set(session_key("t", "triggers"), b"{not json")
    peeked = await peek_trigger_states(redis_client, ["s", "t", "u"])
    assert peeked == {"s": some_state(), "t": SavedTriggers(), "u": SavedTriggers()}
    assert await redis_client.get(session_key("t", "triggers")) == b"{not json"
    assert await redis_client.keys("*corrupt*") == []
