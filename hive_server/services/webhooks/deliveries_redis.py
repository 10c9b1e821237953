"""Webhook delivery ids deduplicated in Redis (issue 14): ``DeliveryStore``'s interface
(``record``, ``forget``) over ``core/redis_once.py``'s claims, so a delivery retried to any
node is acknowledged once cluster-wide. The claimed id is ``delivery_hash`` of (agent,
trigger, delivery id), as the file store keys it: untrusted ids never reach a key unbounded.
Kept ``DELIVERY_TTL`` (7 days, the file store's retention); Redis expires them itself. A Redis
that fails a call raises ``DeliveryStoreUnavailable`` (503: nothing accepted, retry later).
"""

from __future__ import annotations

import redis.asyncio
from redis.exceptions import RedisError

from hive_server.core.redis_once import DELIVERY_TTL, claim_delivery, release_delivery
from hive_server.errors.triggers import DeliveryStoreUnavailable
from hive_server.services.webhooks.deliveries import delivery_hash


class RedisDeliveryStore:
    """Remembers delivery ids in Redis so a repeated delivery is acknowledged once."""

    def __init__(self, client: redis.asyncio.Redis, *, retention_seconds: int = DELIVERY_TTL):
        self._client = client
        self._retention = retention_seconds

    async def record(self, agent_id: str, trigger_id: str, delivery_id: str) -> bool:
        """True if the delivery is new (now recorded), False for a duplicate."""
        try:
            return await claim_delivery(self._client, delivery_hash(
                agent_id, trigger_id, delivery_id), self._retention)
        except RedisError as exc:
            raise DeliveryStoreUnavailable(exc) from exc

    async def forget(self, agent_id: str, trigger_id: str, delivery_id: str) -> None:
        """Undo ``record`` for a delivery that could not be accepted after all."""
        try:
            await release_delivery(self._client, delivery_hash(agent_id, trigger_id,
                                                               delivery_id))
        except RedisError as exc:
            raise DeliveryStoreUnavailable(exc) from exc
