"""Session leases with fencing (``core/redis_lease.py``) on the real redis-server of
tests/redis_server.py: nodes racing for a lease, renew and release by a node that lost it,
a takeover that fences the old owner's appends, and the ``LeaseKeeper``'s rounds driven with a
``FakeClock`` (its ``tick`` called directly; Redis expiry forced with PEXPIRE 1)."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio

from hive_server.core.clock import FakeClock
from hive_server.core.eventlog_redis import RedisEventLog, session_key
from hive_server.core.redis_lease import LeaseKeeper, LeaseStore, LeaseToken
from hive_server.core.stats import Histogram
from hive_server.errors.backend import LogFenced
from tests.redis_server import REDIS_MARKS
from tests.test_log_contract import SESSION, append_all, make_event

pytestmark = list(REDIS_MARKS)
TTL = 3000  # ms
LEASE = session_key(SESSION, "lease")


async def lapse(client: redis.asyncio.Redis, key: str = LEASE) -> None:
    """Let ``key`` expire as a lapsed lease does (PEXPIRE 1), once Redis no longer has it."""
    await client.pexpire(key, 1)
    deadline = asyncio.get_running_loop().time() + 5
    while await client.exists(key):
        assert asyncio.get_running_loop().time() < deadline, f"{key} did not expire"


async def test_one_of_many_racing_nodes_gets_the_lease(redis_client):
    store = LeaseStore(redis_client)
    won = await asyncio.gather(*(store.acquire(SESSION, f"node-{i}", TTL) for i in range(40)))
    winners = [lease for lease in won if lease is not None]
    assert len(winners) == 1
    assert await store.owner(SESSION) == winners[0] == LeaseToken(SESSION, winners[0].node_id, 1)


async def test_two_nodes_racing_many_times_one_node_holds_it(redis_url, redis_client):
    """Two nodes, each its own client (connection pool), 20 attempts each at once: one node
    wins every attempt it gets; the lease holds its latest token."""
    node_b = redis.asyncio.Redis.from_url(redis_url)
    stores = {"a": LeaseStore(redis_client), "b": LeaseStore(node_b)}
    attempts = [stores[node].acquire(SESSION, node, TTL) for _ in range(20) for node in "ab"]
    won = [lease for lease in await asyncio.gather(*attempts) if lease is not None]
    assert len({lease.node_id for lease in won}) == 1
    assert sorted(lease.token for lease in won) == list(range(1, len(won) + 1))
    assert await stores["a"].owner(SESSION) == max(won, key=lambda lease: lease.token)
    await node_b.aclose()


async def test_a_held_lease_is_refused_to_others_and_renewed_anew_for_its_node(redis_client):
    store = LeaseStore(redis_client)
    first = await store.acquire(SESSION, "node-a", TTL)
    assert await store.acquire(SESSION, "node-b", TTL) is None
    assert await store.acquire(SESSION, "node", TTL) is None  # a prefix of the holder's id
    again = await store.acquire(SESSION, "node-a", TTL)  # a new incarnation: a new token
    assert (first.token, again.token) == (1, 2)
    assert not await store.renew(first, TTL)  # the old incarnation is fenced
    assert await redis_client.get(LEASE) == b"node-a:2"
    assert 0 < await redis_client.pttl(LEASE) <= TTL


async def test_renew_after_the_lease_lapsed_or_was_taken_is_false(redis_client):
    store = LeaseStore(redis_client)
    a = await store.acquire(SESSION, "node-a", TTL)
    await redis_client.pexpire(LEASE, 500)
    assert await store.renew(a, TTL)
    assert await redis_client.pttl(LEASE) > 500
    await lapse(redis_client)
    assert not await store.renew(a, TTL)  # lapsed: not brought back
    assert await redis_client.exists(LEASE) == 0
    b = await store.acquire(SESSION, "node-b", TTL)
    await redis_client.pexpire(LEASE, 1000)
    assert not await store.renew(a, TTL)  # taken over: b's lease is left as it is
    assert await redis_client.pttl(LEASE) <= 1000
    assert await store.owner(SESSION) == b


async def test_release_by_a_node_that_does_not_hold_the_lease_does_nothing(redis_client):
    store = LeaseStore(redis_client)
    a = await store.acquire(SESSION, "node-a", TTL)
    assert not await store.release(LeaseToken(SESSION, "node-b", a.token))
    assert not await store.release(LeaseToken(SESSION, "node-a", a.token + 1))
    assert await store.owner(SESSION) == a
    assert await store.release(a)
    assert await store.owner(SESSION) is None
    b = await store.acquire(SESSION, "node-b", TTL)
    assert b.token == a.token + 1  # the fence outlives the lease
    assert await redis_client.ttl(session_key(SESSION, "fence")) == -1  # never expires


async def test_a_ttl_that_is_not_positive_is_refused(redis_client):
    store = LeaseStore(redis_client)
    for ttl in (0, -5, 1.5):
        with pytest.raises(ValueError, match="positive number of milliseconds"):
            await store.acquire(SESSION, "node-a", ttl)
    with pytest.raises(ValueError, match="node id"):
        await store.acquire(SESSION, "", TTL)
    assert await redis_client.exists(LEASE, session_key(SESSION, "fence")) == 0


async def test_after_a_takeover_the_old_owners_appends_are_fenced(redis_url, redis_client):
    """Node A owns the session and appends; its lease lapses; node B takes over and resumes
    the stream: A's next append is refused (LogFenced), B's is stored, seq contiguous."""
    node_b = redis.asyncio.Redis.from_url(redis_url)
    a = await LeaseStore(redis_client).acquire(SESSION, "node-a", TTL)
    log_a = RedisEventLog(redis_client, SESSION, lease=a.value)
    await log_a.open()
    await append_all(log_a, 1, 2)
    await lapse(redis_client)
    b = await LeaseStore(node_b).acquire(SESSION, "node-b", TTL)
    assert b.token == a.token + 1
    log_b = RedisEventLog(node_b, SESSION, lease=b.value)
    assert (await log_b.open()).last_seq == 2
    with pytest.raises(LogFenced, match="'node-a:1' was taken over"):
        await log_a.append(make_event(3))
    await append_all(log_b, 3, 4)
    entries = await node_b.xrange(session_key(SESSION, "log"))
    assert [entry_id for entry_id, _ in entries] == [b"1-0", b"2-0", b"3-0", b"4-0"]
    await log_a.close()
    await log_b.close()
    await node_b.aclose()


class FlakyLeases(LeaseStore):
    """The real store, whose renew rounds fail while ``down`` (Redis unreachable)."""

    down = False
    rounds = 0

    async def renew_many(self, leases, ttl_ms):
        self.rounds += 1
        if self.down:
            raise ConnectionError("Redis is unreachable")
        return await super().renew_many(leases, ttl_ms)


def keeper_on(client, lost: list[str], clock: FakeClock, **kw) -> tuple[LeaseKeeper,
                                                                         FlakyLeases]:
    store = FlakyLeases(client)
    return LeaseKeeper(store, "node-a", TTL, lost.append, clock=clock, **kw), store


async def test_a_round_renews_every_kept_lease_and_times_itself(redis_client):
    lost: list[str] = []
    keeper, store = keeper_on(redis_client, lost, FakeClock(), renew_seconds=Histogram([1.0]))
    sessions = [f"s-{i}" for i in range(3)]
    for sid in sessions:
        assert (await keeper.acquire(sid)).value == "node-a:1"
        await redis_client.pexpire(session_key(sid, "lease"), 500)
    assert await keeper.tick() == []
    for sid in sessions:
        assert await redis_client.pttl(session_key(sid, "lease")) > 500
    assert (store.rounds, keeper.renew_seconds.cumulative()[0][-1]) == (1, ("+Inf", 1))
    assert [lease.session_id for lease in keeper.owned] == sessions and lost == []


async def test_rounds_on_time_keep_a_lease_well_past_its_ttl(redis_client):
    lost: list[str] = []
    clock = FakeClock()
    keeper, store = keeper_on(redis_client, lost, clock)
    await keeper.acquire(SESSION)
    for _ in range(12):  # 4 ttls
        await clock.advance(keeper.interval)
        assert await keeper.tick() == []
    assert keeper.owned and lost == [] and store.rounds == 12


async def test_a_lease_taken_over_is_reported_once_through_on_lost(redis_url, redis_client):
    lost: list[str] = []
    keeper, _ = keeper_on(redis_client, lost, FakeClock())
    await keeper.acquire("s-1")
    await keeper.acquire("s-2")
    await lapse(redis_client, session_key("s-1", "lease"))
    node_b = redis.asyncio.Redis.from_url(redis_url)
    b = await LeaseStore(node_b).acquire("s-1", "node-b", TTL)
    await node_b.pexpire(session_key("s-1", "lease"), 1000)
    assert await keeper.tick() == ["s-1"]
    assert await keeper.tick() == []
    assert lost == ["s-1"] and [lease.session_id for lease in keeper.owned] == ["s-2"]
    assert await LeaseStore(node_b).owner("s-1") == b
    assert await node_b.pttl(session_key("s-1", "lease")) <= 1000  # b's lease left alone
    await node_b.aclose()


async def test_a_node_cut_off_from_redis_gives_its_leases_up_before_they_can_lapse(
        redis_client):
    """ttl 3 s, rounds every 1 s, counted on until 3 - 0.032 s: the round at 1 s fails and
    keeps the lease (the next round, at 2 s, is in time); the one at 2 s fails and gives it
    up (the one at 3 s would be too late). Once Redis answers again, it is never renewed,
    although Redis still holds it for node-a."""
    lost: list[str] = []
    clock = FakeClock()
    keeper, store = keeper_on(redis_client, lost, clock)
    await keeper.acquire(SESSION)
    store.down = True
    await clock.advance(keeper.interval)
    assert await keeper.tick() == [] and keeper.owned
    await clock.advance(keeper.interval)
    assert await keeper.tick() == [SESSION] and lost == [SESSION] and not keeper.owned
    store.down = False
    await redis_client.pexpire(LEASE, 1000)
    assert await keeper.tick() == []
    assert await redis_client.get(LEASE) == b"node-a:1"
    assert await redis_client.pttl(LEASE) <= 1000 and store.rounds == 2 and lost == [SESSION]


async def test_a_lease_past_its_window_when_a_round_starts_is_given_up_unrenewed(redis_client):
    """The keeper did not run for a whole ttl (a stopped process): Redis still says the lease
    is node-a's, but the node cannot know what happened meanwhile, so it gives it up."""
    lost: list[str] = []
    clock = FakeClock()
    keeper, store = keeper_on(redis_client, lost, clock)
    await keeper.acquire(SESSION)
    await keeper.acquire("s-2")
    await redis_client.pexpire(LEASE, 1000)
    await clock.advance(TTL / 1000)
    assert await keeper.tick() == [SESSION, "s-2"]
    assert store.rounds == 0 and await redis_client.pttl(LEASE) <= 1000


async def test_the_keepers_task_runs_rounds_on_its_clock_until_closed(redis_url, redis_client):
    clock = FakeClock()
    reported = asyncio.Event()
    lost: list[str] = []

    def on_lost(sid: str) -> None:
        lost.append(sid)
        reported.set()

    keeper = LeaseKeeper(LeaseStore(redis_client), "node-a", TTL, on_lost, clock=clock)
    keeper.start()
    await keeper.acquire(SESSION)
    await lapse(redis_client)
    await clock.advance(keeper.interval)
    await asyncio.wait_for(reported.wait(), 5)
    assert lost == [SESSION]
    await keeper.close()
    assert clock.pending == 0


async def test_an_on_lost_that_raises_does_not_keep_the_others_unreported(redis_client):
    lost: list[str] = []

    def on_lost(sid: str) -> None:
        lost.append(sid)
        raise RuntimeError(f"cannot stop {sid}")

    keeper = LeaseKeeper(LeaseStore(redis_client), "node-a", TTL, on_lost, clock=FakeClock())
    for sid in ("s-1", "s-2"):
        await keeper.acquire(sid)
        await lapse(redis_client, session_key(sid, "lease"))
    assert await keeper.tick() == ["s-1", "s-2"] and lost == ["s-1", "s-2"]


class SwallowingLeases(LeaseStore):
    """The real store, whose renew round hangs and then swallows its task's cancel: what
    redis-py does on Python 3.11 when the cancel lands while it writes (CPython gh-86296)."""

    def __init__(self, client):
        super().__init__(client)
        self.in_round = asyncio.Event()

    async def renew_many(self, leases, ttl_ms):
        self.in_round.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            return [True] * len(leases)  # the cancel lost on the way
        return []


async def test_a_cancel_lost_in_a_round_still_stops_the_keeper(redis_client):
    clock = FakeClock()
    store = SwallowingLeases(redis_client)
    keeper = LeaseKeeper(store, "node-a", TTL, lambda sid: None, clock=clock)
    await keeper.acquire("s-1")
    keeper.start()
    await asyncio.sleep(0)  # the keeper's task sleeps until its first round
    await clock.advance(keeper.interval)
    await asyncio.wait_for(store.in_round.wait(), timeout=5)
    await asyncio.wait_for(keeper.close(), timeout=5)  # never waits for a next round
