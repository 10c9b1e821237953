"""Session leases with fencing: which node runs a session, on Redis (issue 14).

Two keys of the session (its hash tag, ``eventlog_redis.session_key``, so one script may touch
both, also on a Redis Cluster):

- ``hive:{<sid>}:lease``: ``<node id>:<token>`` with a PX ttl: the node that runs the session.
- ``hive:{<sid>}:fence``: an integer, INCR at every acquire and never expiring: the fencing
  token. Tokens of a session only grow, so a lease value is never handed out twice.

``LeaseStore`` holds the scripts: ``acquire`` (one script: when the lease key is absent or
already the node's, INCR the fence and SET the lease with its ttl; else nothing), ``renew``
(compare and PEXPIRE), ``release`` (compare and DEL), ``owner`` (GET). A node that acquires a
lease it already holds gets a new token (a new incarnation: a writer of its own still holding
the old token is fenced as well). ``LeaseToken.value`` is the string ``RedisEventLog(lease=)``
holds: its append script refuses a batch once the lease key no longer holds it (``LogFenced``),
so an old owner's appends are refused after a takeover, whatever it still believes.

``LeaseKeeper`` keeps a node's leases alive; its contract is in its own docstring.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import redis.asyncio
from redis.exceptions import RedisError

from hive_server.core.clock import Clock, MonotonicClock
from hive_server.core.eventlog_redis import session_key
from hive_server.core.redis_backoff import honour_cancel
from hive_server.core.stats import LEASE_RENEW_SECONDS, LEASES_LOST, Histogram

logger = logging.getLogger(__name__)

# KEYS[1] the lease, KEYS[2] the fence; ARGV[1] the node id, ARGV[2] the ttl in ms.
# Returns the new token, or nil when another node holds the lease.
ACQUIRE_SCRIPT = """
local held = redis.call('GET', KEYS[1])
if held and string.match(held, '^(.*):%d+$') ~= ARGV[1] then return false end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. token, 'PX', ARGV[2])
return token
"""
# KEYS[1] the lease; ARGV[1] the value held, ARGV[2] the ttl in ms. 1 renewed, 0 lost.
RENEW_SCRIPT = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('PEXPIRE', KEYS[1], ARGV[2])
"""
# KEYS[1] the lease; ARGV[1] the value held. 1 released, 0 not ours (left alone).
RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
"""


@dataclass(frozen=True, slots=True)
class LeaseToken:
    """A lease as acquired: the node, and the fencing token it got."""

    session_id: str
    node_id: str
    token: int

    @property
    def value(self) -> str:
        """``<node id>:<token>``: the lease key's value, and ``RedisEventLog``'s ``lease``."""
        return f"{self.node_id}:{self.token}"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _check_ttl(ttl_ms: int) -> int:
    if not isinstance(ttl_ms, int) or ttl_ms <= 0:
        raise ValueError(f"a lease ttl is a positive number of milliseconds, not {ttl_ms!r}")
    return ttl_ms


class LeaseStore:
    """The lease scripts on one client (the process's connection pool)."""

    def __init__(self, client: redis.asyncio.Redis):
        self._client = client
        self._acquire = client.register_script(ACQUIRE_SCRIPT)
        self._renew = client.register_script(RENEW_SCRIPT)
        self._release = client.register_script(RELEASE_SCRIPT)

    async def acquire(self, session_id: str, node_id: str, ttl_ms: int) -> LeaseToken | None:
        """The lease for ``node_id`` with a new fencing token, or None: another node holds
        it. Taken when the lease key is absent or already ``node_id``'s."""
        if not node_id:
            raise ValueError("a node id is needed to hold a lease")
        token = await self._acquire(
            keys=[session_key(session_id, "lease"), session_key(session_id, "fence")],
            args=[node_id, _check_ttl(ttl_ms)])
        return None if token is None else LeaseToken(session_id, node_id, int(token))

    async def renew(self, lease: LeaseToken, ttl_ms: int) -> bool:
        """Extend ``lease`` to ``ttl_ms`` from now; False when it is no longer held (lapsed
        or taken over: nothing is changed then)."""
        return bool(await self._renew(keys=[session_key(lease.session_id, "lease")],
                                      args=[lease.value, _check_ttl(ttl_ms)]))

    async def renew_many(self, leases: Sequence[LeaseToken], ttl_ms: int) -> list[bool]:
        """``renew`` for every lease in one pipeline (one round trip); in order."""
        _check_ttl(ttl_ms)
        async with self._client.pipeline(transaction=False) as pipe:
            for lease in leases:
                await self._renew(keys=[session_key(lease.session_id, "lease")],
                                  args=[lease.value, ttl_ms], client=pipe)
            return [bool(answer) for answer in await pipe.execute()]

    async def release(self, lease: LeaseToken) -> bool:
        """Delete the lease if it is still ``lease`` (True); another node's is left alone."""
        return bool(await self._release(keys=[session_key(lease.session_id, "lease")],
                                        args=[lease.value]))

    async def owner(self, session_id: str) -> LeaseToken | None:
        """Who holds the session's lease now (None: nobody)."""
        value = await self._client.get(session_key(session_id, "lease"))
        if value is None:
            return None
        node_id, _, token = _text(value).rpartition(":")
        return LeaseToken(session_id, node_id, int(token))


OnLost = Callable[[str], None]


@dataclass(slots=True, eq=False)
class _Held:
    lease: LeaseToken
    valid_until: float
    """Keeper clock time until which Redis holds the lease for sure (see ``LeaseKeeper``)."""


class LeaseKeeper:
    """The one task of a node that keeps its session leases alive.

    Contract for callers:

    * ``acquire(sid)`` takes a lease for the node and keeps it from then on; ``release(sid)``
      stops keeping it and deletes it in Redis. ``owned`` is what the node holds now.
    * Every ``interval`` (ttl / 3) a round (``tick``) renews every kept lease in one pipeline
      (after redis-py's SCRIPT EXISTS check: two round trips); its duration is observed in
      ``renew_seconds``. Its CPU grows with the leases: redis-py packs and parses each
      command in Python.
    * ``on_lost(sid)`` is called once for each lease the keeper gives up, and the keeper stops
      keeping it: the node must stop that session's work (its queen, workers, timers) at once,
      without awaiting anything. A callback that raises is logged; the others are still called.
      Given up: a renew that Redis refused (the lease lapsed or another node took it), or a
      lease whose ``valid_until`` (below) would pass before the next round could renew it.
    * The math. Redis starts a ttl when it runs the SET or PEXPIRE, after the node sent it, so
      a lease renewed by a round that started at keeper time ``s`` is held until at least
      ``s + ttl`` on Redis's clock. Clock rates differ a little (taken as 1 % + 2 ms of the
      ttl, as Redlock does), so the keeper counts on it until ``valid_until = s + ttl - drift``.
      A failed round (Redis unreachable, an error, no answer within ``interval``) leaves
      ``valid_until`` as it was, and the lease is given up at the first failed round after
      which ``now + interval >= valid_until``. With rounds on time that is the second failed
      one (``s + 2 ttl/3``): ``on_lost`` runs ttl/3 - drift before another node may acquire.
    * A lease past ``valid_until`` when a round starts (the keeper's task was starved, the
      process stopped, the machine suspended) is given up without being renewed, even when
      Redis would still say it is the node's: the node cannot know how long its work went on
      unrenewed, and a lease given up must never come back (its work was stopped; renewing it
      would keep the session held by a node that no longer runs it).
    * The keeper's clock must be monotonic (``MonotonicClock``); tests inject a ``FakeClock``
      and may drive ``tick`` directly instead of ``start``.
    """

    DRIFT = 0.01  # clock rate difference allowed, as a fraction of the ttl (plus 2 ms)

    def __init__(self, store: LeaseStore, node_id: str, ttl_ms: int, on_lost: OnLost, *,
                 clock: Clock | None = None, renew_seconds: Histogram = LEASE_RENEW_SECONDS):
        self._store = store
        self.node_id = node_id
        self.ttl_ms = _check_ttl(ttl_ms)
        self._on_lost = on_lost
        self._clock = clock or MonotonicClock()
        self.renew_seconds = renew_seconds
        self._held: dict[str, _Held] = {}
        self._task: asyncio.Task[None] | None = None

    @property
    def interval(self) -> float:
        """Seconds between renew rounds: a third of the ttl."""
        return self.ttl_ms / 3000

    @property
    def validity(self) -> float:
        """Seconds after a renew round started that its leases are surely held in Redis."""
        return self.ttl_ms / 1000 * (1 - self.DRIFT) - 0.002

    @property
    def owned(self) -> list[LeaseToken]:
        return [held.lease for held in self._held.values()]

    @property
    def owned_count(self) -> int:
        """``len(owned)`` without building the list (``/api/health`` reads it)."""
        return len(self._held)

    async def acquire(self, session_id: str) -> LeaseToken | None:
        """Acquire the session's lease (``LeaseStore.acquire``) and keep it; None: another
        node holds it."""
        started = self._clock.time()
        lease = await self._store.acquire(session_id, self.node_id, self.ttl_ms)
        if lease is not None:
            self._held[session_id] = _Held(lease, started + self.validity)
        return lease

    async def release(self, session_id: str) -> None:
        """Stop keeping the session's lease and delete it (if it is still ours)."""
        held = self._held.pop(session_id, None)
        if held is not None:
            await self._store.release(held.lease)

    async def tick(self) -> list[str]:
        """One renew round; returns the sessions given up (``on_lost`` was called for each)."""
        started = self._clock.time()
        lost = [sid for sid, held in self._held.items() if held.valid_until <= started]
        for sid in lost:
            del self._held[sid]
        kept = list(self._held.items())
        if kept:
            answers = await self._round([held.lease for _, held in kept])
            lost += self._settle(kept, answers, started)
        for sid in lost:
            self._lost(sid)
        return lost

    async def _round(self, leases: list[LeaseToken]) -> list[bool] | None:
        """Renew ``leases`` in one pipeline; None when the round failed or took too long."""
        began = time.perf_counter()
        try:
            async with asyncio.timeout(self.interval):
                answers = await self._store.renew_many(leases, self.ttl_ms)
        except (RedisError, OSError, TimeoutError) as exc:  # unreachable, refused, too slow
            logger.warning("lease renewal of %d sessions failed: %r", len(leases), exc)
            return None
        self.renew_seconds.observe(time.perf_counter() - began)
        return answers

    def _settle(self, kept: list[tuple[str, _Held]], answers: list[bool] | None,
                started: float) -> list[str]:
        """Apply a round's answers to the leases it renewed; the ones given up, removed."""
        lost = []
        deadline = self._clock.time() + self.interval  # when the next round may renew
        for index, (sid, held) in enumerate(kept):
            if self._held.get(sid) is not held:
                continue  # released or acquired anew during the round
            if answers is not None and answers[index]:
                held.valid_until = started + self.validity
            elif answers is not None or deadline >= held.valid_until:
                del self._held[sid]
                lost.append(sid)
        return lost

    def _lost(self, session_id: str) -> None:
        LEASES_LOST.add()
        logger.warning("node %s lost the lease of session %s", self.node_id, session_id)
        try:
            self._on_lost(session_id)
        except Exception:  # the node's callback: logged, the other leases are still reported
            logger.exception("on_lost(%s) failed", session_id)

    def start(self) -> None:
        """Run rounds every ``interval`` in the keeper's own task (until ``close``)."""
        if self._task is not None:
            raise RuntimeError("the lease keeper was already started")
        self._task = asyncio.create_task(self._run(), name=f"lease-keeper:{self.node_id}")

    async def close(self) -> None:
        """Stop the rounds (the leases are left to lapse: release them first to hand over)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            await self._clock.sleep_until(self._clock.time() + self.interval)
            try:
                await self.tick()
            except Exception:  # a fault of the round itself: logged, the next round still runs
                logger.exception("lease renewal round of node %s failed", self.node_id)
            honour_cancel()  # a cancel redis-py lost during the round still stops the keeper
