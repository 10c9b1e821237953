"""Fire claims in Redis (issue 14): ``redis_fire_claim`` builds the ``fire_claim`` of a session
run under a lease (``SessionTriggers.fire_claim``, ``claims.py``). Imported only by the Redis
backend (redis-py is a lazy import).

A tick is claimed with ``core/redis_once.claim_fire`` under the tick's UTC ISO time
(``claims.tick_text``), the claimant being the lease's value (``<node id>:<fencing token>``).
A tick someone claimed before is fired by this owner only when the claimant is an OLDER lease
of the session (a smaller fencing token): ``retake_fire`` then moves the claim over, and of
several owners racing for it one wins. A claim by a newer lease is refused: this owner is the
stale one (cut off, its appends fenced).

Why an older lease's claim never hides a fire that is in the log: the scheduler only offers a
tick later than the last tick of the saved state, and the new owner reads that state after it
acquired its lease (the session's resume). The old owner stores the state with the tick as
its last one before it logs ``trigger_fired``, and once the new lease is acquired the old
owner can neither log (``RedisEventLog`` is fenced) nor store the state
(``store_redis.RedisTriggerStore`` is fenced the same way). So if the old lease's fire of the
tick were in the log, the state read would hold that tick and the scheduler would not offer
it: a tick offered and claimed by an older lease was not fired. This needs the trigger state
in Redis, fenced (``RedisTriggerStore(..., lease=...)``), read after the lease is acquired.

``under_lease`` sets both on a session's ``SessionTriggers``: call it before the session's
``start`` (which arms the timers: a resumed session's catch-up tick fires right there).
"""

from __future__ import annotations

import redis.asyncio

from hive_server.core.redis_lease import LeaseToken
from hive_server.core.redis_once import claim_fire, fire_claimer, retake_fire
from hive_server.services.triggers.claims import FireClaim, tick_text
from hive_server.services.triggers.session_triggers import SessionTriggers
from hive_server.services.triggers.store_redis import RedisTriggerStore


def under_lease(triggers: SessionTriggers, client: redis.asyncio.Redis,
                lease: LeaseToken) -> None:
    """Run a session's triggers as the holder of ``lease``: their state in Redis, its saves
    fenced by the lease, and every scheduled tick claimed (see the module docstring)."""
    triggers.store = RedisTriggerStore(client, lease.session_id, lease=lease.value)
    triggers.fire_claim = redis_fire_claim(client, lease.session_id, lease.value)


def redis_fire_claim(client: redis.asyncio.Redis, session_id: str,
                     lease_value: str) -> FireClaim:
    """The ``fire_claim`` of ``session_id`` run under the lease ``lease_value``
    (``LeaseToken.value``). A Redis failure is raised (the tick is then not fired)."""

    async def claim(trigger_id: str, tick: float) -> bool:
        name = tick_text(tick)
        if await claim_fire(client, session_id, trigger_id, name, lease_value):
            return True
        holder = await fire_claimer(client, session_id, trigger_id, name)
        if holder is None:  # the record expired in between (FIRE_TTL): claim it again
            return await claim_fire(client, session_id, trigger_id, name, lease_value)
        if not older_lease(holder, lease_value):
            return False
        return await retake_fire(client, session_id, trigger_id, name, holder, lease_value)

    return claim


def older_lease(holder: str, mine: str) -> bool:
    """True when ``holder`` is a lease value with a smaller fencing token than ``mine``."""
    theirs, ours = _token(holder), _token(mine)
    return theirs is not None and ours is not None and theirs < ours


def _token(value: str) -> int | None:
    _, colon, token = value.rpartition(":")
    return int(token) if colon and token.isdigit() else None
