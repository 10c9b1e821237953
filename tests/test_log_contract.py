"""The event log's contract (``core/log_store.py``), one suite for both backends: ``file``
(``EventLog``, events.jsonl) and ``redis`` (``RedisEventLog``, a Redis Stream on the real
redis-server of tests/redis_server.py). Append and acknowledge under each durability mode, seq
contiguity (a gap or a duplicate refused), replay after N, the tail, the log's own line bytes,
reopening, and a subscriber that stalls (disconnected, never skipped; it resumes from the log).
"""

from __future__ import annotations

import asyncio
import inspect
from pathlib import Path
from typing import Protocol

import pytest
import redis.asyncio

from hive_server.core.bus import EventBus
from hive_server.core.eventlog import Durability, EventLog, OpenInfo
from hive_server.core.eventlog_redis import RedisEventLog
from hive_server.core.log_store import LogStore
from hive_server.core.redis_conn import connect
from hive_server.models.events import Event, EventType
from tests.redis_server import REDIS_MARKS

SESSION = "s-contract"


def make_event(seq: int) -> Event:
    text = "word " * (seq * 7 % 40) + "\u2028 \u00e9 \r"  # odd characters kept byte for byte
    return Event(seq=seq, type=EventType.LLM_TEXT_DELTA, session_id=SESSION,
                 data={"content": text, "i": seq})


class Backend(Protocol):
    async def open(self, durability: Durability = Durability.FSYNC) -> tuple[LogStore,
                                                                             OpenInfo]: ...


class FileBackend:
    def __init__(self, path: Path):
        self.path = path

    async def open(self, durability: Durability = Durability.FSYNC) -> tuple[LogStore,
                                                                             OpenInfo]:
        log = EventLog(self.path, durability)
        return log, await log.open()


class RedisBackend:
    """Each open connects as a node does at start (``connect``: PING and the durability
    check against the fixture's server, which persists as ``fsync`` needs)."""

    def __init__(self, url: str):
        self.url = url
        self.clients: list[redis.asyncio.Redis] = []

    async def open(self, durability: Durability = Durability.FSYNC) -> tuple[LogStore,
                                                                             OpenInfo]:
        self.clients.append(await connect(self.url, durability))
        log = RedisEventLog(self.clients[-1], SESSION)
        return log, await log.open()


@pytest.fixture(params=["file", pytest.param("redis", marks=REDIS_MARKS)])
async def backend(request: pytest.FixtureRequest, tmp_path: Path):
    if request.param == "file":
        yield FileBackend(tmp_path / "events.jsonl")
        return
    redis_backend = RedisBackend(request.getfixturevalue("redis_url"))
    yield redis_backend
    for client in redis_backend.clients:
        await client.aclose()


@pytest.fixture
async def opened(backend: Backend):
    log, _ = await backend.open()
    yield log
    await log.close()


async def append_all(log: LogStore, first: int, last: int) -> list[Event]:
    events = [make_event(seq) for seq in range(first, last + 1)]
    await asyncio.gather(*(log.append(event) for event in events))
    return events


def test_both_backends_have_the_surface_of_log_store():
    members = [name for name in dir(LogStore) if not name.startswith("_")]
    assert {"append", "flush", "close", "read_after", "read_tail", "quiet"} <= set(members)
    for cls in (EventLog, RedisEventLog):
        for name in members:
            ours, theirs = getattr(LogStore, name), getattr(cls, name)
            if isinstance(ours, property):
                assert isinstance(theirs, property), (cls, name)
                continue
            assert (list(inspect.signature(theirs).parameters)
                    == list(inspect.signature(ours).parameters)), (cls, name)


@pytest.mark.parametrize("durability", list(Durability))
async def test_appends_are_acknowledged_and_read_back_in_order(backend, durability):
    log, info = await backend.open(durability)
    assert (info.last_seq, info.truncated_bytes, log.last_seq) == (0, 0, 0)
    events = await append_all(log, 1, 60)  # appended without waiting: one batch or a few
    assert log.last_seq == 60
    assert [e.to_json() for e in await log.read_after(0)] == [e.to_json() for e in events]
    await log.close()


async def test_a_gap_or_a_duplicate_is_refused_and_nothing_is_stored(opened):
    await append_all(opened, 1, 2)
    for seq in (4, 2, 1, 0):
        with pytest.raises(ValueError, match="does not follow 2"):
            opened.append(make_event(seq))
    assert opened.last_seq == 2
    await append_all(opened, 3, 3)
    assert [e.seq for e in await opened.read_after(0)] == [1, 2, 3]


async def test_replay_after_n_with_limits_and_chunks(opened):
    await append_all(opened, 1, 10)
    assert [e.seq for e in await opened.read_after(4)] == [5, 6, 7, 8, 9, 10]
    assert [e.seq for e in await opened.read_after(4, limit=3)] == [5, 6, 7]
    assert await opened.read_after(10) == []
    chunks = [[e.seq for e in chunk] async for chunk in opened.iter_after(0, chunk=3)]
    assert chunks == [[1, 2, 3], [4, 5, 6], [7, 8, 9], [10]]


async def test_reads_wait_for_the_appends_made_before_them(opened):
    opened.append(make_event(1))
    opened.append(make_event(2))  # not awaited: a read still sees both
    assert [e.seq for e in await opened.read_after(0)] == [1, 2]
    opened.append(make_event(3))
    assert [e.seq for e in await opened.read_tail(5)] == [1, 2, 3]


async def test_the_tail_with_limit_and_before_seq(opened):
    await append_all(opened, 1, 10)
    assert [e.seq for e in await opened.read_tail(3)] == [8, 9, 10]
    assert [e.seq for e in await opened.read_tail(3, before_seq=5)] == [2, 3, 4]
    assert [e.seq for e in await opened.read_tail(10, before_seq=3)] == [1, 2]
    assert await opened.read_tail(3, before_seq=1) == []
    assert [e.seq for e in await opened.read_tail(2, before_seq=99)] == [9, 10]


async def test_lines_are_the_logs_own_bytes(opened):
    events = await append_all(opened, 1, 5)
    lines = [line async for chunk in opened.iter_lines_after(2, chunk=2) for line in chunk]
    assert [line.seq for line in lines] == [3, 4, 5]
    assert [line.raw for line in lines] == [e.to_json() for e in events[2:]]
    assert [line.sse_frame() for line in lines] == [e.sse_frame() for e in events[2:]]
    assert [line.type for line in lines] == [EventType.LLM_TEXT_DELTA.value] * 3


async def test_a_reopened_log_goes_on_from_its_last_seq(backend):
    log, _ = await backend.open()
    await append_all(log, 1, 5)
    await log.close()
    await log.close()  # idempotent
    with pytest.raises(RuntimeError, match="not open"):
        log.append(make_event(6))
    again, info = await backend.open()
    assert (info.last_seq, again.last_seq) == (5, 5)
    await append_all(again, 6, 7)
    assert [e.seq for e in await again.read_after(0)] == [1, 2, 3, 4, 5, 6, 7]
    await again.close()


async def test_a_stalled_subscriber_is_disconnected_and_resumes_from_the_log(opened):
    bus = EventBus(SESSION, default_maxsize=4)
    stalled = bus.subscribe()
    stored = []
    for seq in range(1, 21):  # as the journal does: the log first, then the bus
        event = make_event(seq)
        stored.append(opened.append(event))
        bus.publish(event)
    await asyncio.gather(*stored)
    seen = [event.seq async for event in stalled]  # its buffer, then the end: no skipping
    assert seen == [1, 2, 3, 4] and stalled.end_reason == "lagged"
    resumed = [e.seq for e in await opened.read_after(seen[-1])]
    assert seen + resumed == list(range(1, 21))
