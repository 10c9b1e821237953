"""The Redis connection of a node: one ``redis.asyncio`` client (one connection pool) per
process, made from a URL, answering PING, and persisting as the durability mode needs.

``connect(url, durability)`` returns the client or raises, in one line for the operator:
``RedisUnreachable`` when Redis does not answer, ``RedisDurabilityRefused`` when it cannot
persist as the mode needs. The mapping (checked once, at start, from ``CONFIG GET``):

- ``fsync``: every acknowledged event is on disk: ``appendonly yes``, ``appendfsync always``.
- ``batch``: at most about a second is lost on a power cut: ``appendonly yes`` with
  ``appendfsync everysec`` or ``always``.
- ``none``: anything (Redis may keep the events in memory only).

A Redis where CONFIG is disabled or renamed (a managed service) cannot show its settings:
``fsync`` and ``batch`` are refused there, saying so.
"""

from __future__ import annotations

import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import RedisError, ResponseError

from hive_server.core.eventlog import Durability
from hive_server.core.redis_url import check_url, shown
from hive_server.errors.backend import RedisDurabilityRefused, RedisUnreachable

CONNECT_TIMEOUT = 5.0  # seconds: a Redis that does not answer at start is reported, not awaited
# A connection lost or timed out is retried twice (redis-py's default is ten times, about 4 s
# against a refused port and a minute against a stalled Redis): a blip is absorbed, an outage
# answers 503 within seconds. A command whose reply was lost may be sent twice: the log's
# append script refuses a seq stored already, and every other write is idempotent or guarded.
RETRIES = 2
FSYNC_NEEDED = {Durability.FSYNC: ("always",), Durability.BATCH: ("everysec", "always")}
SET_HINT = {Durability.FSYNC: "always", Durability.BATCH: "everysec"}


async def connect(url: str, durability: Durability) -> redis.asyncio.Redis:
    """The process's client for ``url`` once Redis answered PING and persists as
    ``durability`` needs (see the module docstring); the caller closes it (``aclose``)."""
    client = redis.asyncio.Redis.from_url(
        check_url(url), socket_connect_timeout=CONNECT_TIMEOUT, socket_timeout=CONNECT_TIMEOUT,
        retry=Retry(ExponentialWithJitterBackoff(cap=0.25, base=0.02), RETRIES))
    try:
        try:
            await client.ping()
        except (RedisError, OSError) as exc:  # refused, timed out, auth, TLS, bad db number
            raise RedisUnreachable(shown(url), exc) from exc
        await check_durability(client, durability)
    except BaseException:
        await client.aclose()
        raise
    return client


async def check_durability(client: redis.asyncio.Redis, durability: Durability) -> None:
    """Refuse (``RedisDurabilityRefused``) a mode that Redis's persistence cannot honour."""
    if durability is Durability.NONE:
        return
    mode = durability.value
    try:
        config = await client.config_get("append*")
    except ResponseError as exc:  # CONFIG disabled or renamed: the settings cannot be read
        raise RedisDurabilityRefused(
            f"--durability {mode} needs Redis's persistence settings, but this Redis refuses "
            f"CONFIG GET ({exc}); use --durability none with it, or a Redis whose CONFIG "
            "is available") from exc
    values = {_text(key): _text(value) for key, value in config.items()}
    appendonly, appendfsync = values.get("appendonly"), values.get("appendfsync")
    if appendonly == "yes" and appendfsync in FSYNC_NEEDED[durability]:
        return
    wanted = SET_HINT[durability]
    raise RedisDurabilityRefused(
        f"--durability {mode} needs Redis's append-only file synced "
        f"{'on every write' if durability is Durability.FSYNC else 'every second or better'}"
        f", but Redis has appendonly {appendonly}, appendfsync {appendfsync}; run "
        f"`redis-cli CONFIG SET appendonly yes` and `redis-cli CONFIG SET appendfsync {wanted}`"
        f" (and `redis-cli CONFIG REWRITE`, or put `appendonly yes` and `appendfsync {wanted}` "
        "in redis.conf), or choose a weaker --durability")


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value
