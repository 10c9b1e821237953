"""Session metas and the sessions index in Redis (issue 14; not used by the server yet).

A session's meta is the ``meta.json`` bytes at ``hive:{<sid>}:meta``. The index answers what
the SQLite index (``SessionIndex``) answers, with the same results for the same metas:
``query`` (a page, newest activity first, ties by id descending, with the total and a keyset
cursor on (last activity, id)), ``matching`` and ``usage_by_agent``. Its keys share the hash tag
``{sessions}`` (``hive:{sessions}:active`` ...; ``index_redis_lua`` lists them).

Every write is one Lua script: ``put`` writes the meta and the session's row in every structure
of the index, ``remove`` takes them all away, ``commit_import`` adopts a staged stream with its
meta and row; a read is one script too, so no reader sees a session in one structure and not
another. A write touches the session's slot and the index's: one Redis, not a Redis Cluster.

A query runs on the server and returns only the page's metas. The page walks the activity set
down from the cursor, checking each session against the filter (set membership, creation time,
search text), and stops once the page is full. The total is a set's size when the filter is the
activity range or the field sets alone; otherwise every session in the activity range is
checked, as the SQLite index counts its rows. A filter with field sets is answered from its
smallest set (or its statuses) instead, its matches sorted, when that reads fewer sessions.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Literal

import redis.asyncio
from redis.exceptions import ResponseError

from hive_server.core.eventlog_redis import session_key
from hive_server.errors.transfer import SessionExists
from hive_server.models.session import SessionMeta
from hive_server.models.session_query import Cursor, SessionFilter
from hive_server.services.sessions import index_redis_lua as lua
from hive_server.services.sessions.index_sql import (
    AgentUsage,
    SessionPage,
    active_epoch,
    epoch,
    search_text,
)

PREFIX = "hive:{sessions}:"
WALK_CHUNK = 256  # the largest step of a page's walk down the activity set (sessions)
Plan = Literal["auto", "walk", "sets"]  # how QUERY finds a page: its choice, or forced (tests)


@dataclasses.dataclass(frozen=True, slots=True)
class IndexKeys:
    active: str = PREFIX + "active"
    created: str = PREFIX + "created"
    rows: str = PREFIX + "rows"
    search: str = PREFIX + "search"
    member: str = PREFIX + "member"
    usage: str = PREFIX + "usage"

    def fixed(self) -> list[str]:
        """``KEYS[2..7]`` of the write scripts."""
        return [self.active, self.created, self.rows, self.search, self.member, self.usage]

    @staticmethod
    def field(name: str, value: str) -> str:
        """The set of the sessions whose ``name`` (status, agent, queen) is ``value``."""
        return f"{PREFIX}{name}:{value}"


KEYS = IndexKeys()


def meta_bytes(meta: SessionMeta) -> bytes:
    """The meta as ``meta.json`` holds it."""
    return meta.model_dump_json(indent=2).encode()


def _field_sets(meta: SessionMeta) -> list[str]:
    sets = [KEYS.field("status", meta.status), KEYS.field("queen", meta.queen_id)]
    if meta.agent_id is not None:
        sets.append(KEYS.field("agent", meta.agent_id))
    return sets


def _row_args(meta: SessionMeta) -> list[object]:
    """ARGV of the write scripts: the row's columns as the SQLite index computes them."""
    usage = "" if meta.agent_id is None else json.dumps([meta.agent_id, meta.message_count or 0])
    return [meta.session_id, active_epoch(meta), epoch(meta.created_at) or 0.0,
            meta_bytes(meta), search_text(meta), usage]


def _filter_args(where: SessionFilter) -> tuple[list[str], list[object]]:
    """The QUERY script's filter keys (after the four fixed ones) and its first six ARGV."""
    required = [KEYS.field(name, value) for name, value in (
        ("agent", where.agent_id), ("queen", where.queen_id)) if value is not None]
    statuses = [KEYS.field("status", status) for status in sorted(where.status or ())]
    return [*required, *statuses], [
        len(required), _bound(where.active_after), _bound(where.active_before),
        _bound(where.created_after), _bound(where.created_before),
        where.q.casefold() if where.q else ""]


def _bound(value: float | None) -> str:
    return "" if value is None else repr(value)


class RedisSessionIndex:
    """Metas and the sessions index on one Redis client (see the module docstring)."""

    def __init__(self, client: redis.asyncio.Redis, *, walk_chunk: int = WALK_CHUNK,
                 plan: Plan = "auto"):
        self._client = client
        self._walk: list[object] = [walk_chunk, plan]  # the QUERY script's last two ARGV
        self._put = client.register_script(lua.PUT)
        self._remove = client.register_script(lua.REMOVE)
        self._commit = client.register_script(lua.COMMIT_IMPORT)
        self._query = client.register_script(lua.QUERY)
        self._usage = client.register_script(lua.USAGE)

    # -- writes -------------------------------------------------------------------------------
    async def put(self, meta: SessionMeta) -> None:
        """Write ``meta`` and its row (a new or changed session), in one script."""
        keys = [session_key(meta.session_id, "meta"), *KEYS.fixed(), *_field_sets(meta)]
        await self._put(keys=keys, args=_row_args(meta))

    async def remove(self, session_id: str) -> None:
        """Remove the session's meta and row (its stream is the caller's)."""
        await self._remove(keys=[session_key(session_id, "meta"), *KEYS.fixed()],
                           args=[session_id])

    async def commit_import(self, staged: str, meta: SessionMeta, where: str) -> None:
        """Rename the stream ``staged`` (a key of the session's hash tag) to the session's,
        and write its meta and row, in one script: all of it, or nothing and
        ``SessionExists`` when the id is taken (``where``: the Redis, for the message)."""
        sid = meta.session_id
        keys = [session_key(sid, "meta"), *KEYS.fixed(), staged, session_key(sid, "log"),
                *_field_sets(meta)]
        try:
            await self._commit(keys=keys, args=_row_args(meta))
        except ResponseError as exc:
            if str(exc).startswith("EXISTS"):
                raise SessionExists(sid, where) from exc
            raise

    # -- reads --------------------------------------------------------------------------------
    async def meta(self, session_id: str) -> SessionMeta | None:
        raw = await self._client.get(session_key(session_id, "meta"))
        return None if raw is None else SessionMeta.model_validate_json(raw)

    async def exists(self, session_id: str) -> bool:
        """Whether the id is taken: a meta, a stream or a row."""
        keys = (session_key(session_id, "meta"), session_key(session_id, "log"))
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.exists(*keys).hexists(KEYS.rows, session_id)
            found, row = await pipe.execute()
        return bool(found or row)

    async def query(self, where: SessionFilter, limit: int, cursor: str | None = None,
                    page: int | None = None) -> SessionPage:
        """One page of the sessions matching ``where``, newest activity first, with the total
        and the next cursor (None on the last page), as ``SessionIndex.query``."""
        after = Cursor.decode(cursor) if cursor is not None else None
        skip = (page - 1) * limit if page is not None and after is None else 0
        total, rows = await self._run_query(where, after, skip, limit + 1)
        metas = [SessionMeta.model_validate_json(meta) for _, _, meta in rows[:limit]]
        if len(rows) <= limit:
            return SessionPage(metas, total, None)
        last_id, last_active, _ = rows[limit - 1]
        return SessionPage(metas, total, Cursor(active=last_active, session_id=last_id).encode())

    async def matching(self, where: SessionFilter) -> list[SessionMeta]:
        """Every session matching ``where``, newest activity first."""
        _, rows = await self._run_query(where, None, 0, 0)
        return [SessionMeta.model_validate_json(meta) for _, _, meta in rows]

    async def usage_by_agent(self) -> dict[str, AgentUsage]:
        """Per agent id: its sessions, the inputs handed to them, the last activity."""
        flat = await self._usage(keys=[KEYS.usage, KEYS.active])
        return {agent.decode(): AgentUsage(int(count), int(runs), float(last))
                for agent, count, runs, last in zip(*[iter(flat)] * 4, strict=True)}

    async def _run_query(self, where: SessionFilter, after: Cursor | None, skip: int,
                         rows: int) -> tuple[int, list[tuple[str, float, bytes]]]:
        """The total of ``where`` and up to ``rows`` (0: all) of its (id, activity, meta)
        after ``after`` and ``skip`` more."""
        filter_keys, filter_args = _filter_args(where)
        keys = [KEYS.active, KEYS.created, KEYS.rows, KEYS.search, *filter_keys]
        cursor = ["", ""] if after is None else [repr(after.active), after.session_id]
        reply = await self._query(keys=keys,
                                  args=[*filter_args, *cursor, skip, rows, *self._walk])
        found = [(sid.decode(), float(active), meta)
                 for sid, active, meta in zip(*[iter(reply[1:])] * 3, strict=True)]
        return int(reply[0]), found
