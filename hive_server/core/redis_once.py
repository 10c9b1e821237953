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

A claim is at most once: a node that claims a tick and dies before its fire reaches the log
leaves that tick unfired; the record says which node claimed it (``fire_claimer``), so a new
owner can tell such a tick from one fired (the log holds its event) when it takes over.
"""

from __future__ import annotations

import redis.asyncio

FIRE_TTL = 7 * 86400  # seconds
DELIVERY_TTL = 7 * 86400  # seconds


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
    """True when this call claimed the tick (fire it); False when it was claimed before."""
    return bool(await client.set(fire_key(session_id, trigger_id, tick), node_id,
                                 nx=True, ex=_check(ttl)))


async def fire_claimer(client: redis.asyncio.Redis, session_id: str, trigger_id: str,
                       tick: str) -> str | None:
    """The node that claimed the tick (None: nobody yet, or the record expired)."""
    value = await client.get(fire_key(session_id, trigger_id, tick))
    return value.decode() if isinstance(value, bytes) else value


async def claim_delivery(client: redis.asyncio.Redis, delivery_id: str,
                         ttl: int = DELIVERY_TTL) -> bool:
    """True the first time ``delivery_id`` is claimed within ``ttl``; False: a duplicate."""
    return bool(await client.set(delivery_key(delivery_id), 1, nx=True, ex=_check(ttl)))


async def release_delivery(client: redis.asyncio.Redis, delivery_id: str) -> None:
    """Forget a claimed delivery id (it could not be accepted: let the retry through)."""
    await client.delete(delivery_key(delivery_id))
