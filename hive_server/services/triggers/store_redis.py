"""A session's saved trigger state in Redis (issue 14): ``TriggerStore``'s interface with the
exact ``triggers.json`` bytes in ``hive:{<sid>}:triggers``, so the node that takes a session
over reads the state its old owner stored. Imported only by the Redis backend.

A value that cannot be read whole is renamed to ``hive:{<sid>}:triggers.corrupt-<UTC
timestamp>`` (same hash tag) and reported as the file store reports a kept-aside file; what
could be read of it is used. With ``lease`` (the session's ``LeaseToken.value``) a save is
fenced as the log's appends are: one script stores the state only while the session's lease
key holds that value, else ``LogFenced`` (another node took the session over; what it read
must not be overwritten by this stale owner: ``claims_redis.py`` relies on it). A Redis that
fails a call raises ``TriggerStateUnavailable`` (503).

Held fires of a session parked by its spend limit stay in the node's session folder
(``hold.py``): ``read_trigger_state_redis`` counts none. ``peek_trigger_states`` reads the
state of sessions another node runs (the webhook ingress: which of them have the trigger
active, with which config), renaming nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime

import redis.asyncio
from redis.exceptions import RedisError

from hive_server.core.eventlog_redis import session_key
from hive_server.errors.backend import LogFenced
from hive_server.errors.triggers import TriggerStateUnavailable
from hive_server.services.triggers.session_triggers import TriggerFiles
from hive_server.services.triggers.store import KeptAside, SavedTriggers, parse_saved

# KEYS[1] the state, KEYS[2] the lease; ARGV[1] the bytes, ARGV[2] the lease value ('' for
# none). 1 stored, 0 fenced.
SAVE_SCRIPT = """
if ARGV[2] ~= '' and redis.call('GET', KEYS[2]) ~= ARGV[2] then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
return 1
"""
ASIDE_TRIES = 100  # names tried for a kept-aside value within one second


class RedisTriggerStore:
    """See the module docstring; the interface is ``TriggerStore``'s (``load``, ``save``)."""

    def __init__(self, client: redis.asyncio.Redis, session_id: str, *,
                 lease: str | None = None):
        self._client = client
        self._session_id = session_id
        self._lease = lease
        self.key = session_key(session_id, "triggers")
        self._save = client.register_script(SAVE_SCRIPT)

    async def load(self) -> tuple[SavedTriggers, KeptAside | None]:
        try:
            data = await self._client.get(self.key)
            if data is None:
                return SavedTriggers(), None
            problems: list[str] = []
            saved = parse_saved(data, problems)
            if not problems:
                return saved, None
            kept_as = await self._keep_aside()
        except RedisError as exc:
            raise TriggerStateUnavailable(self._session_id, exc) from exc
        return saved, KeptAside("; ".join(problems)[:2000], kept_as)

    async def _keep_aside(self) -> str:
        """Rename the value to a free ``<key>.corrupt-<UTC timestamp>[-n]``; its new key."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        aside = f"{self.key}.corrupt-{stamp}"
        for count in range(2, ASIDE_TRIES + 2):
            if await self._client.renamenx(self.key, aside):
                return aside
            aside = f"{self.key}.corrupt-{stamp}-{count}"
        raise RedisError(f"no free name to keep {self.key} aside")

    async def save(self, saved: SavedTriggers) -> None:
        """Stored when this returns (as Redis persists: ``--durability``)."""
        try:
            stored = await self._save(keys=[self.key, session_key(self._session_id, "lease")],
                                      args=[saved.to_json(), self._lease or ""])
        except RedisError as exc:
            raise TriggerStateUnavailable(self._session_id, exc) from exc
        if not stored:
            raise LogFenced(self._session_id, self._lease or "")


async def read_trigger_state_redis(client: redis.asyncio.Redis, session_id: str) -> TriggerFiles:
    """``read_trigger_files`` for a session whose state is in Redis (no held fires: they stay
    node-local files, see the module docstring)."""
    return await RedisTriggerStore(client, session_id).load(), 0


async def peek_trigger_states(client: redis.asyncio.Redis,
                              session_ids: list[str]) -> dict[str, SavedTriggers]:
    """The saved trigger state of sessions other nodes run, read in one MGET for the webhook
    ingress (what can be read of each; a corrupt value is left to its owner to keep aside).
    A session with none saved yet has an empty one."""
    try:
        values = await client.mget([session_key(sid, "triggers") for sid in session_ids])
    except RedisError as exc:
        raise TriggerStateUnavailable(", ".join(session_ids), exc) from exc
    return {sid: SavedTriggers() if value is None else parse_saved(value, [])
            for sid, value in zip(session_ids, values, strict=True)}
