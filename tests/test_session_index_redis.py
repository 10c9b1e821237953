"""The sessions index in Redis (``services/sessions/index_redis.py``) against the SQLite index
(``index_sql``) on the same metas: the same pages, totals and cursors for every filter, paged to
the end; the same ``matching`` and ``usage_by_agent``; a session's meta and rows written and
removed together, and never seen half changed. On the real redis-server of tests/redis_server.py.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import redis.asyncio
from hypothesis import given, settings
from hypothesis import strategies as st

from hive_server.models.session import SESSION_STATUSES, SessionMeta
from hive_server.models.session_query import SessionFilter, parse_time
from hive_server.services.sessions import index_sql as sql
from hive_server.services.sessions.index_redis import RedisSessionIndex
from tests.redis_server import REDIS_MARKS, RedisServer

pytestmark = list(REDIS_MARKS)
IDS = ["a", "b", "B", "s-1", "s-10", "s.2", "Z_9", "zz", "a0", "m"]  # bytes order != case order
TIMES = ["2026-11-01T10:00:00+00:00", "2026-11-01T10:00:00.250001+00:00",
         "2026-11-02T08:30:00+00:00", "2026-11-02T08:30:00+02:00", "2026-11-03T00:00:00+00:00"]
TEXTS = [None, "Hello there", "HELLO world", "straße", "nothing", ""]
T = parse_time
WAYS = [  # walk the activity set in steps of 1 or 2 (ties across steps), or read a filter's set
    {"walk_chunk": 1, "plan": "walk"}, {"walk_chunk": 2, "plan": "walk"},
    {"walk_chunk": 2, "plan": "sets"}, {"walk_chunk": 2, "plan": "auto"}]
FILTERS = [
    SessionFilter(), SessionFilter(status=frozenset({"idle"})),
    SessionFilter(status=frozenset({"idle", "stopped", "failed"})),
    SessionFilter(agent_id="a1"), SessionFilter(queen_id="q2"),
    SessionFilter(created_after=T(TIMES[2])), SessionFilter(created_before=T(TIMES[1])),
    SessionFilter(active_after=T(TIMES[1]), active_before=T(TIMES[3])),
    SessionFilter(q="hello"), SessionFilter(q="STRASSE"), SessionFilter(q="o w"),
    SessionFilter(status=frozenset({"idle", "stopped"}), agent_id="a2", q="e"),
    SessionFilter(queen_id="q1", agent_id="a1", created_after=T(TIMES[0])),
    SessionFilter(status=frozenset({"idle", "stopped"}), active_after=T(TIMES[1])),
    SessionFilter(agent_id="a1", active_before=T(TIMES[2])),
]


@st.composite
def metas(draw: st.DrawFn, ids: list[str]) -> list[SessionMeta]:
    return [SessionMeta(
        session_id=sid, created_at=draw(st.sampled_from(TIMES)), updated_at=TIMES[0],
        queen_id=draw(st.sampled_from(["q1", "q2"])), queen_name="Q", model="m",
        agent_id=draw(st.sampled_from([None, "a1", "a2"])),
        status=draw(st.sampled_from(SESSION_STATUSES)),
        last_active_at=draw(st.sampled_from([None, *TIMES])),
        message_count=draw(st.sampled_from([None, 0, 3, 7])),
        title=draw(st.sampled_from(TEXTS)), first_message=draw(st.sampled_from(TEXTS)),
        last_message=draw(st.sampled_from(TEXTS))) for sid in ids]


def ids(**kwargs: int) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(IDS), unique=True, **kwargs)


async def pages(index: object, where: SessionFilter, limit: int) -> list[tuple]:
    """Every page of ``where`` from the first, following the cursors to the end."""
    seen, cursor = [], None
    while True:
        page = await _query(index, where, limit, cursor)
        seen.append(([m.session_id for m in page.metas], page.total, page.next_cursor))
        if page.next_cursor is None:
            return seen
        cursor = page.next_cursor


async def _query(index: object, where: SessionFilter, limit: int, cursor: str | None,
                 page: int | None = None) -> sql.SessionPage:
    if isinstance(index, sqlite3.Connection):
        return sql.query(index, (where, limit, cursor, page))
    assert isinstance(index, RedisSessionIndex)
    return await index.query(where, limit, cursor, page)


async def compare(url: str, first: list[SessionMeta], then: list[SessionMeta],
                  removed: list[str], ways: dict[str, float]) -> None:
    client = redis.asyncio.Redis.from_url(url)
    await client.flushall()
    index, db = RedisSessionIndex(client, **ways), sql.connect(Path(":memory:"))
    sql.prepare(db)
    for batch in (first, then):  # ``then`` changes some of ``first``
        sql.add_loaded(db, Path("/nonexistent"), [(meta.session_id, meta) for meta in batch])
        for meta in batch:
            await index.put(meta)
    sql.remove_many(db, removed)
    for sid in removed:
        await index.remove(sid)
    for where in FILTERS:
        for limit in (1, 3, 50):
            assert await pages(index, where, limit) == await pages(db, where, limit), where
        for page in (1, 2):
            assert await _query(index, where, 2, None, page) == sql.query(db, (where, 2, None,
                                                                                page))
        assert await index.matching(where) == sql.matching(db, where)
    assert await index.usage_by_agent() == sql.usage_by_agent(db)
    await client.aclose()


@settings(max_examples=25, deadline=None)  # each example: a Redis index and a SQLite one
@given(st.data())
def test_pages_totals_and_cursors_are_the_sqlite_index_s(redis_server: RedisServer,
                                                         data: st.DataObject) -> None:
    first = data.draw(metas(data.draw(ids(min_size=1))))
    then = data.draw(metas(data.draw(ids(max_size=4))))
    removed = data.draw(ids(max_size=3))
    ways = data.draw(st.sampled_from(WAYS))
    asyncio.run(compare(redis_server.url, first, then, removed, ways))


def meta(sid: str, status: str = "idle", **fields: object) -> SessionMeta:
    return SessionMeta(session_id=sid, created_at=TIMES[0], updated_at=TIMES[0],
                       queen_id="q1", queen_name="Q", model="m", status=status, **fields)


async def test_the_meta_is_the_meta_json_bytes_and_remove_leaves_no_trace(redis_client):
    index = RedisSessionIndex(redis_client)
    await index.put(meta("s-1", agent_id="a1", title="Hi"))
    stored = await redis_client.get("hive:{s-1}:meta")
    assert stored == meta("s-1", agent_id="a1", title="Hi").model_dump_json(indent=2).encode()
    assert await index.meta("s-1") == meta("s-1", agent_id="a1", title="Hi")
    await index.put(meta("s-1", "stopped", agent_id="a2"))  # leaves its old sets
    assert await redis_client.smembers("hive:{sessions}:status:idle") == set()
    assert await redis_client.smembers("hive:{sessions}:agent:a1") == set()
    assert await redis_client.smembers("hive:{sessions}:agent:a2") == {b"s-1"}
    await index.remove("s-1")
    assert await redis_client.keys("*") == []
    assert await index.meta("s-1") is None and not await index.exists("s-1")


async def test_a_reader_never_sees_a_session_half_changed(redis_client):
    index = RedisSessionIndex(redis_client)
    sids = [f"s-{n}" for n in range(20)]
    for sid in sids:
        await index.put(meta(sid))
    idle = SessionFilter(status=frozenset({"idle"}))

    async def flip(round_: int) -> None:
        for sid in sids:
            await index.put(meta(sid, "stopped" if (round_ + int(sid[2:])) % 2 else "idle"))

    async def read() -> None:
        for _ in range(30):
            page = await index.query(idle, 500)
            assert page.total == len(page.metas)  # the count and the rows agree
            assert {m.status for m in page.metas} <= {"idle"}  # row and status set agree

    await asyncio.gather(*(flip(n) for n in range(6)), read(), read())
