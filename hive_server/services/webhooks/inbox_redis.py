"""The cold-agent inbox in Redis (issue 14): ``WebhookInbox``'s contract (``inbox.py``) with
every node seeing the same deliveries, so a delivery held on one node is taken by whichever
node runs the agent's session next.

One Redis list per (agent, trigger), ``hive:{inbox}:list:<agent id>:<trigger id>``, one
delivery per element (its JSON bytes), oldest first; one hash ``hive:{inbox}:sizes`` with each
list's size in bytes (counted as the file's lines, newline included), whose fields
``<agent id>:<trigger id>`` are also the index of the lists that hold something (ids are safe
ids, never holding ``:``). Every key shares the hash tag ``{inbox}``, so one script updates
them together also on a Redis Cluster (one slot for the whole inbox: it is held webhooks, not
a hot path). ``put`` appends unless the list already holds ``max_bytes`` (``WebhookInboxFull``:
the sender retries later); ``take`` returns a list's deliveries in arrival order and deletes
it in the same script, so a hand-over is at most once, as the file's. A Redis that fails a
call raises ``InboxUnavailable``.
"""

from __future__ import annotations

import orjson
import redis.asyncio
from redis.exceptions import RedisError

from hive_server.core.jsonl import records_of
from hive_server.errors.triggers import InboxUnavailable, NotSerialisable, WebhookInboxFull
from hive_server.models.held import HeldWebhooks
from hive_server.services.webhooks.inbox import check_segment, held_trigger

SIZES = "hive:{inbox}:sizes"

# KEYS[1] the list, KEYS[2] the sizes; ARGV[1] the list's field, ARGV[2] the delivery's
# bytes, ARGV[3] the bound. 1 stored, 0 full.
PUT_SCRIPT = """
local size = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if size >= tonumber(ARGV[3]) then return 0 end
redis.call('RPUSH', KEYS[1], ARGV[2])
redis.call('HINCRBY', KEYS[2], ARGV[1], #ARGV[2] + 1)
return 1
"""
# KEYS[1] the list, KEYS[2] the sizes; ARGV[1] the list's field. The deliveries, oldest first.
TAKE_SCRIPT = """
local held = redis.call('LRANGE', KEYS[1], 0, -1)
redis.call('DEL', KEYS[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return held
"""


def _field(agent_id: str, trigger_id: str) -> str:
    return f"{check_segment(agent_id, 'agent id')}:{check_segment(trigger_id, 'trigger id')}"


def _list_key(field: str) -> str:
    return f"hive:{{inbox}}:list:{field}"


class RedisWebhookInbox:
    """Deliveries for an agent's trigger while no live session has it active, in Redis.
    See the module docstring; the interface is ``WebhookInbox``'s."""

    def __init__(self, client: redis.asyncio.Redis, *, max_bytes: int = 16 * 1024 * 1024):
        self._client = client
        self._max_bytes = max_bytes
        self._put = client.register_script(PUT_SCRIPT)
        self._take = client.register_script(TAKE_SCRIPT)

    async def put(self, agent_id: str, trigger_id: str, delivery: dict) -> None:
        field = _field(agent_id, trigger_id)
        try:
            data = orjson.dumps(delivery)
        except TypeError as exc:
            raise NotSerialisable(exc) from None
        try:
            stored = await self._put(keys=[_list_key(field), SIZES],
                                     args=[field, data, self._max_bytes])
        except RedisError as exc:  # unreachable, refused: the delivery is not held
            raise InboxUnavailable(exc) from exc
        if not stored:
            raise WebhookInboxFull()

    async def take(self, agent_id: str, trigger_id: str) -> list[dict]:
        field = _field(agent_id, trigger_id)
        try:
            held = await self._take(keys=[_list_key(field), SIZES], args=[field])
        except RedisError as exc:
            raise InboxUnavailable(exc) from exc
        return records_of(held)[0]

    async def held(self) -> HeldWebhooks:
        """Every delivery waiting in the inbox, by agent and trigger (without payloads)."""
        try:
            fields = sorted((field.decode() for field in await self._client.hkeys(SIZES)),
                            key=lambda field: field.split(":"))  # by agent, then trigger
            async with self._client.pipeline(transaction=False) as pipe:
                for field in fields:
                    pipe.lrange(_list_key(field), 0, -1)
                lists = await pipe.execute()
        except RedisError as exc:
            raise InboxUnavailable(exc) from exc
        held = []
        for field, items in zip(fields, lists, strict=True):
            agent_id, _, trigger_id = field.partition(":")
            if records := records_of(items)[0]:
                held.append(held_trigger(agent_id, trigger_id, records))
        return HeldWebhooks(held=held, total=sum(h.count for h in held))
