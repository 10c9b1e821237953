"""Sessions on Redis (``--redis``, issue 14): the Redis backend's ``SessionStore``.

What lives where (keys: docs/scale-out.md):

- the event log: the stream ``hive:{<sid>}:log`` (``RedisEventLog``), written only by the
  node holding the session's lease (each append checks it: fencing);
- the meta and the sessions index: ``hive:{<sid>}:meta`` and ``hive:{sessions}:*``
  (``RedisSessionIndex``, one script per write);
- the triggers' saved state: ``hive:{<sid>}:triggers`` (``RedisTriggerStore``);
- node-local, under ``$HIVE_HOME/sessions/<sid>/``: the workspace and the held fires of a
  session parked by its spend limit (a shared volume keeps them when sessions move).

The surface is ``SessionStore``'s (``store.py``), so the manager and the routes use either
backend alike. A resume rebuilds the queen's conversation from the stream's lines. The index
follows every in-memory meta change through ``MetaFollower`` (latest meta per session, one
writer task), as the SQLite index does; the meta writes of a session that lost its lease are
dropped (``forget``).
"""

from __future__ import annotations

import asyncio
import io
import logging
import shutil
from pathlib import Path

import redis.asyncio
from redis.exceptions import RedisError

from hive_server.core.eventlog import Durability
from hive_server.core.eventlog_file import OpenInfo
from hive_server.core.eventlog_redis import RedisEventLog, seq_of, session_key
from hive_server.core.redis_lease import LeaseToken
from hive_server.errors.sessions import InvalidSessionId, SessionNotFound
from hive_server.models.session import SESSION_STATUSES, SessionMeta, is_safe_id
from hive_server.services.journal.journal import utc_iso
from hive_server.services.runtime.conversation import Rebuilt, rebuild_from_open
from hive_server.services.sessions.index_redis import KEYS, RedisSessionIndex
from hive_server.services.sessions.log_reads_redis import RedisReads
from hive_server.services.sessions.store import SessionFiles
from hive_server.services.triggers.claims_redis import under_lease
from hive_server.services.triggers.session_triggers import SessionTriggers
from hive_server.services.triggers.store_redis import read_trigger_state_redis

log = logging.getLogger(__name__)
LIVE_STATUSES = tuple(status for status in SESSION_STATUSES if status != "stopped")
SESSION_PARTS = ("log", "meta", "triggers", "cmd")  # deleted with the session


class MetaFollower:
    """The index (and the meta key) follow a live session's meta: ``put`` is synchronous (the
    journal calls it on every change), the latest meta of each session is written by one
    task, in order."""

    def __init__(self, index: RedisSessionIndex):
        self.index = index
        self._pending: dict[str, SessionMeta] = {}
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None

    def put(self, meta: SessionMeta) -> None:
        self._pending[meta.session_id] = meta
        self._idle.clear()
        self._wakeup.set()
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="redis-meta-follower")

    def forget(self, session_id: str) -> None:
        """Drop a queued meta of ``session_id`` (its lease is lost: it is not ours to write)."""
        self._pending.pop(session_id, None)

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
                batch, self._pending = self._pending, {}
                for meta in batch.values():
                    try:
                        await self.index.put(meta)
                    except (RedisError, OSError) as exc:  # the next change writes it again
                        log.warning("session %s: index update failed: %r", meta.session_id, exc)
            self._idle.set()

    async def drain(self) -> None:
        """Wait until every queued meta is written."""
        await self._idle.wait()

    async def close(self) -> None:
        await self.drain()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


class RedisIndex:
    """``SessionIndex``'s surface over Redis (the routes and services call it alike)."""

    def __init__(self, index: RedisSessionIndex, follower: MetaFollower):
        self.redis = index
        self.follower = follower
        self.put = follower.put
        self.query = index.query
        self.matching = index.matching
        self.usage_by_agent = index.usage_by_agent

    def remove(self, session_id: str) -> None:
        """Forget the session's queued meta (``RedisSessionStore.delete`` removes its row)."""
        self.follower.forget(session_id)

    async def corrupt(self) -> list:
        return []  # a meta in Redis is written whole by one script: never torn

    def warm(self) -> None:
        """Nothing to open: Redis holds the index."""

    async def close(self) -> None:
        await self.follower.close()


class RedisSessionStore:
    """See the module docstring."""

    backend = "redis"

    def __init__(self, home: Path, client: redis.asyncio.Redis):
        self.root = home / "sessions"  # node-local: workspaces, held fires
        self.client = client
        index = RedisSessionIndex(client)
        self.index = RedisIndex(index, MetaFollower(index))
        self.reads = RedisReads(client)  # history pages, exports, totals: from the stream

    def path(self, session_id: str) -> Path:
        """The session's node-local folder (its workspace); 400 for an unsafe id."""
        if not is_safe_id(session_id):
            raise InvalidSessionId(session_id)
        return self.root / session_id

    async def has(self, session_id: str) -> bool:
        self.path(session_id)
        return await self.index.redis.exists(session_id)

    async def read_meta(self, session_id: str) -> SessionMeta:
        self.path(session_id)
        meta = await self.index.redis.meta(session_id)
        if meta is None:
            raise SessionNotFound(session_id)
        return meta

    async def update(self, session_id: str, changes: dict[str, object]) -> SessionMeta:
        meta = await self.read_meta(session_id)
        meta = meta.model_copy(update={**changes, "updated_at": utc_iso()})
        await self.index.redis.put(meta)
        return meta

    async def write_meta(self, meta: SessionMeta, directory: Path) -> None:
        """A live session's meta write (``SessionJournal``): meta and row in one script."""
        await self.index.redis.put(meta)

    def new_log(self, session_id: str, durability: Durability,
                lease: LeaseToken | None) -> RedisEventLog:
        return RedisEventLog(self.client, session_id,
                             lease=None if lease is None else lease.value)

    def under_lease(self, triggers: SessionTriggers, lease: LeaseToken | None) -> None:
        """The session's triggers run as the lease's holder: their state in Redis (saves
        fenced), every scheduled tick claimed (``claims_redis.under_lease``)."""
        if lease is not None:
            under_lease(triggers, self.client, lease)

    async def start_log(self, event_log: RedisEventLog, files: SessionFiles) -> OpenInfo:
        return await event_log.open()

    async def open_files(self, session_id: str, resumed: bool,
                         opened: object = None) -> SessionFiles:
        """The workspace folder made, the conversation rebuilt from the stream (a resume),
        the triggers' saved state read."""
        await asyncio.to_thread((self.path(session_id) / "workspace").mkdir, parents=True,
                                exist_ok=True)
        history = await self._rebuild(session_id) if resumed else Rebuilt([], [])
        triggers = await read_trigger_state_redis(self.client, session_id)
        return SessionFiles(None, history, triggers)

    async def _rebuild(self, session_id: str) -> Rebuilt:
        reader = RedisEventLog(self.client, session_id)
        await reader.open_reader()
        blob = io.BytesIO()
        async for lines in reader.iter_lines_after(0):
            blob.write(b"".join(line.raw + b"\n" for line in lines))
        return await asyncio.to_thread(rebuild_from_open, blob)

    async def reader(self, session_id: str) -> RedisEventLog:
        """A read-only view of the session's log (a cold session, or one another node runs)."""
        reader = RedisEventLog(self.client, session_id)
        await reader.open_reader()
        return reader

    async def last_seq(self, session_id: str) -> int:
        top = await self.client.xrevrange(session_key(session_id, "log"), "+", "-", count=1)
        return seq_of(top[0][0]) if top else 0

    async def live_ids(self) -> set[str]:
        """The sessions the index shows as live (any status but ``stopped``)."""
        async with self.client.pipeline(transaction=False) as pipe:
            for status in LIVE_STATUSES:
                pipe.smembers(KEYS.field("status", status))
            found = await pipe.execute()
        return {member.decode() for members in found for member in members}

    async def delete(self, session_id: str) -> None:
        if not await self.has(session_id):
            raise SessionNotFound(session_id)
        self.index.follower.forget(session_id)
        await self.index.redis.remove(session_id)
        await self.client.delete(*(session_key(session_id, part) for part in SESSION_PARTS))
        await asyncio.to_thread(shutil.rmtree, self.path(session_id), ignore_errors=True)

    # the boot's resume has nothing to do: the takeover loop resumes sessions (takeover.py)
    def folders(self) -> list[str]:
        return []

    def live_opened(self, names: object) -> list:
        return []
