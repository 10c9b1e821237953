"""Exactly-once records in Redis, shared by every node (issue 14): a timer tick's fire and a
webhook delivery id, each claimed by one ``SET NX`` so that one claimant in the cluster wins.

- ``hive:fire:{<sid>}:<trigger id>:<tick>`` (the session's hash tag): the node that claimed
  that tick of that trigger. ``claim_fire`` is True for exactly one caller per tick, whether
  two nodes race for it or a new owner retries a tick the old owner claimed before it died or
  was cut off. The record lives ``FIRE_TTL`` (7 days) so that it outlasts any failover and any
  catch-up that could retry the tick: a takeover comes within a lease ttl (seconds), and the
  scheduler's catch-up retries the latest missed tick of a session resumed after an outage
  (``misfire="fire_once"``), which an operator brings back within days, not weeks. A node
  stopped or cut off past its lease has given the lease up (``LeaseKeeper``), and its appends
  are fenced (``RedisEventLog``), whatever it claims.
- ``hive:webhook:delivery:<id>``: a delivery id taken. ``claim_delivery`` is True the first
  time in ``DELIVERY_TTL`` (7 days, as the file ``DeliveryStore`` keeps its ids: far beyond
  the 5-minute timestamp tolerance of Standard Webhooks); ``release_delivery`` undoes a claim
  whose delivery could not be accepted after all, so the sender's retry is not a duplicate.
  The caller scopes and bounds the id (the webhook service passes a hash of agent, trigger
  and delivery id).

A claim by itself is at most once: a node that claims a tick and dies before its fire reaches
the log leaves that tick unfired. With the session's lease it is exactly once: claim as the
lease's value (``LeaseToken.value``). A new owner that finds a tick claimed by an older lease
(``fire_claimer``) and no fire of it in the log, read after its acquire (from then on the
fence refuses the old owner's appends, so the log is final for the old lease), takes the
claim over with ``retake_fire`` and fires it; of several racing for that, one wins.
"""

from __future__ import annotations

import redis.asyncio

FIRE_TTL = 7 * 86400  # seconds
DELIVERY_TTL = 7 * 86400  # seconds

# KEYS[1] the fire record; ARGV[1] the claimant it must hold, ARGV[2] the new claimant,
# ARGV[3] the ttl in seconds. 1 taken over, 0 not (someone else's, or no record).
RETAKE_SCRIPT = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
"""


def fire_key(session_id: str, trigger_id: str, tick: str) -> str:
    """``hive:fire:{<session id>}:<trigger id>:<tick>`` (``tick``: the tick's ISO time)."""
    return f"hive:fire:{{{session_id}}}:{trigger_id}:{tick}"


def delivery_key(delivery_id: str) -> str:
    return f"hive:webhook:delivery:{delivery_id}"


def _check(ttl: int) -> int:
    if not isinstance(ttl, int) or ttl <= 0:
        raise ValueError(f"a record's ttl is a positive number of seconds, not {ttl!r}")
    return ttl


async def claim_fire(client: redis.asyncio.Redis, session_id: str, trigger_id: str,
                     tick: str, node_id: str, ttl: int = FIRE_TTL) -> bool:
    """True when this call claimed the tick (fire it); False when it was claimed before.
    ``node_id`` is the claimant: the node's id, or its lease's value for exactly once."""
    return bool(await client.set(fire_key(session_id, trigger_id, tick), node_id,
                                 nx=True, ex=_check(ttl)))


async def fire_claimer(client: redis.asyncio.Redis, session_id: str, trigger_id: str,
                       tick: str) -> str | None:
    """The claimant of the tick (None: nobody yet, or the record expired)."""
    value = await client.get(fire_key(session_id, trigger_id, tick))
    return value.decode() if isinstance(value, bytes) else value


async def retake_fire(client: redis.asyncio.Redis, session_id: str, trigger_id: str,
                      tick: str, previous: str, claimant: str, ttl: int = FIRE_TTL) -> bool:
    """Claim a tick that ``previous`` claimed and did not fire (see the module docstring): True
    when the record still held ``previous`` and now holds ``claimant``; False otherwise."""
    script = client.register_script(RETAKE_SCRIPT)
    return bool(await script(keys=[fire_key(session_id, trigger_id, tick)],
                             args=[previous, claimant, _check(ttl)]))


async def claim_delivery(client: redis.asyncio.Redis, delivery_id: str,
                         ttl: int = DELIVERY_TTL) -> bool:
    """True the first time ``delivery_id`` is claimed within ``ttl``; False: a duplicate."""
    return bool(await client.set(delivery_key(delivery_id), 1, nx=True, ex=_check(ttl)))


async def release_delivery(client: redis.asyncio.Redis, delivery_id: str) -> None:
    """Forget a claimed delivery id (it could not be accepted: let the retry through)."""
    await client.delete(delivery_key(delivery_id))
