"""Any node serves the reads of any session on the Redis backend (issue 14, step 3): the
events as SSE (resumable by ``Last-Event-ID``, on across a takeover), pages of the event log,
the detail, the export and the accounting of a session another node runs. Two or three nodes
in one process on one real Redis, as in ``test_cluster_wiring.py``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
import redis.asyncio
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from hive_server import keys
from hive_server.core.eventlog_redis import session_key
from tests.conftest import ClientFactory
from tests.hive_api import HiveApi, until, until_nth
from tests.redis_server import redis_test
from tests.sse_reader import read_frame, read_until
from tests.test_cluster_wiring import _eventually, _node, _stream, _true


async def _events(client: TestClient, sid: str, last_id: int | None = None,
                  query: str = "") -> ClientResponse:
    headers = {} if last_id is None else {"Last-Event-ID": str(last_id)}
    resp = await client.get(f"/api/sessions/{sid}/events{query}", headers=headers)
    assert resp.status == 200, await resp.text()
    return resp


async def _seqs_until(stream: ClientResponse, seq: int) -> list[int]:
    """The ids of the frames read up to and including seq ``seq``."""
    frames = await read_until(stream, lambda event: event["seq"] >= seq)
    return [frame["id"] for frame in frames]


async def _until_input(stream: ClientResponse, content: str) -> list[dict]:
    """The stream's events up to the ``client_input_received`` of ``content``."""
    events = await until(stream, "client_input_received")
    while events[-1]["data"].get("content") != content:
        events += await until(stream, "client_input_received")
    return events


async def _two(make_client: ClientFactory, tmp_path: Path,
               redis_url: str) -> tuple[TestClient, TestClient, str]:
    """Nodes n1 and n2, and a session n1 runs that had one chat answered."""
    owner = await make_client(_node(tmp_path, redis_url, "n1"))
    other = await make_client(_node(tmp_path, redis_url, "n2"))
    sid = (await HiveApi(owner).create_session())["session_id"]
    stream = await _events(owner, sid, 0)
    try:
        await HiveApi(owner).chat(sid, "first")
        await until(stream, "execution_completed")
    finally:
        stream.close()
    return owner, other, sid


Pair = tuple[TestClient, TestClient, str]


@pytest.fixture
async def pair(make_client: ClientFactory, tmp_path: Path, redis_url: str) -> Pair:
    return await _two(make_client, tmp_path, redis_url)


@redis_test
async def test_another_node_streams_a_session_and_resumes_with_no_gap_or_duplicate(
        pair: Pair, redis_client: redis.asyncio.Redis) -> None:
    owner, other, sid = pair
    stored = await _stream(redis_client, sid)
    stream = await _events(other, sid, 0)
    try:
        assert await _seqs_until(stream, stored[-1]["seq"]) == [e["seq"] for e in stored]
        await HiveApi(owner).chat(sid, "second")
        live = await until(stream, "execution_completed")
        assert [e["seq"] for e in live] == list(range(stored[-1]["seq"] + 1,
                                                      live[-1]["seq"] + 1))
    finally:
        stream.close()
    cut = live[1]["seq"]
    resumed = await _events(other, sid, cut)
    try:
        await HiveApi(other).chat(sid, "third")  # forwarded to n1
        after = await until(resumed, "execution_completed")
        after = after + await until(resumed, "execution_completed")
    finally:
        resumed.close()
    seqs = [e["seq"] for e in after]
    assert seqs == list(range(cut + 1, seqs[-1] + 1))
    assert [e["seq"] for e in await _stream(redis_client, sid)][cut:seqs[-1]] == seqs


@redis_test
async def test_no_cursor_opens_with_the_log_tail_elsewhere_and_a_snapshot_on_the_owner(
        pair: Pair, redis_client: redis.asyncio.Redis) -> None:
    owner, other, sid = pair
    last = (await _stream(redis_client, sid))[-1]["seq"]
    elsewhere = await _events(other, sid)
    here = await _events(owner, sid)
    try:
        assert await _seqs_until(elsewhere, last) == list(range(1, last + 1))
        opening = await read_frame(here)
        assert opening is not None and opening["id"] is None
        assert opening["event"]["type"] == "session_snapshot"
        assert await _seqs_until(here, last) == list(range(1, last + 1))
    finally:
        elsewhere.close()
        here.close()


@redis_test
async def test_a_stream_ends_at_the_sessions_stop_and_a_stopped_one_is_not_streamed(
        pair: Pair) -> None:
    owner, other, sid = pair
    stream = await _events(other, sid, 0, "?types=session_stopped")
    stopped = await owner.delete(f"/api/sessions/{sid}")
    assert stopped.status == 200, await stopped.text()
    frames = [frame async for frame in _frames(stream)]
    assert [frame["event"]["type"] for frame in frames] == ["session_stopped"]
    refused = await other.get(f"/api/sessions/{sid}/events")
    assert refused.status == 404
    assert (await refused.json())["code"] == "session_not_live"
    unknown = await other.get("/api/sessions/nope/events")
    assert (unknown.status, (await unknown.json())["code"]) == (404, "session_not_live")


async def _frames(stream: ClientResponse):
    while (frame := await read_frame(stream)) is not None:
        yield frame


@redis_test
@pytest.mark.parametrize("watcher", ["n1", "n3"])
async def test_a_stream_goes_on_across_a_takeover_on_the_old_owner_and_on_another_node(
        make_client: ClientFactory, tmp_path: Path, redis_url: str, pair: Pair,
        redis_client: redis.asyncio.Redis, watcher: str) -> None:
    owner, other, sid = pair
    third = await make_client(_node(tmp_path, redis_url, "n3"))
    watched = await _events(owner if watcher == "n1" else third, sid, 0)
    await owner.app[keys.REDIS_NODE].keeper.close()  # n1 stops renewing: its lease lapses
    await _eventually(lambda: _owner_is_not(redis_client, sid, "n1"))
    await _eventually(lambda: _true(sid in _live_ids(other) or sid in _live_ids(third)))
    new_owner = other if sid in _live_ids(other) else third
    try:
        await HiveApi(new_owner).chat(sid, "after the takeover")
        events = await _until_input(watched, "after the takeover")
    finally:
        watched.close()
    assert [e["seq"] for e in events] == list(range(1, events[-1]["seq"] + 1))
    assert [e["seq"] for e in await _stream(redis_client, sid)][:len(events)] == [
        e["seq"] for e in events]


async def _owner_is_not(client: redis.asyncio.Redis, sid: str, node: str) -> bool:
    value = await client.get(session_key(sid, "lease"))
    return value is not None and not value.decode().startswith(f"{node}:")


def _live_ids(client: TestClient) -> set[str]:
    return {live.journal.id for live in client.app[keys.SESSIONS].live()}


async def _get(client: TestClient, path: str) -> Any:
    resp = await client.get(path)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def _chatted(owner: TestClient, sid: str, n: int) -> None:
    stream = await _events(owner, sid, 10**9)  # past the end: from the stream's last seq
    try:
        for i in range(n):
            await HiveApi(owner).chat(sid, f"more {i}")
        await until_nth(stream, "execution_completed", n)
    finally:
        stream.close()


@redis_test
async def test_history_pages_on_another_node_are_the_owners_and_the_streams(
        pair: Pair, redis_client: redis.asyncio.Redis) -> None:
    owner, other, sid = pair
    await _chatted(owner, sid, 2)
    stored = await _stream(redis_client, sid)
    seqs, last = [e["seq"] for e in stored], stored[-1]["seq"]
    base = f"/api/sessions/{sid}/events/history?limit=4"
    pages, query = [], base
    while True:
        page = await _get(other, query)
        assert page == await _get(owner, query)
        pages.insert(0, [e["seq"] for e in page["events"]])
        assert page["total"] == last and page["start_offset"] == page["start_index"]
        if not page["has_more_older"]:
            break
        assert page["truncated"] and page["returned"] == 4
        # Hive's UI sends both; on Redis the offset is the seq: either alone pages the same
        by_offset = await _get(other, f"{base}&before_offset={page['start_offset']}")
        query = f"{base}&before_index={page['start_index']}"
        assert by_offset == await _get(other, query)
    assert [seq for page in pages for seq in page] == seqs
    forward = await _get(other, f"{base}&after_seq=2")
    assert [e["seq"] for e in forward["events"]] == seqs[2:6]
    assert forward["truncated"] and forward["has_more_older"]
    inputs = await _get(other, f"/api/sessions/{sid}/events/history?types=client_input_received")
    assert [e["data"]["content"] for e in inputs["events"]] == ["first", "more 0", "more 1"]
    assert not inputs["has_more_older"] and not inputs["truncated"]
    assert inputs == await _get(owner, f"/api/sessions/{sid}/events/history"
                                       "?types=client_input_received")
    older = await _get(other, f"{base}&types=client_input_received&before_seq="
                              f"{inputs['events'][1]['seq']}")
    assert [e["data"]["content"] for e in older["events"]] == ["first"]


@redis_test
async def test_the_detail_export_and_stats_of_a_session_another_node_runs(
        pair: Pair, redis_client: redis.asyncio.Redis) -> None:
    owner, other, sid = pair
    stored = await _stream(redis_client, sid)
    detail = await _get(other, f"/api/sessions/{sid}")
    assert (detail["live"], detail["cold"], detail["node_id"]) == (True, False, "n1")
    assert detail["last_seq"] == stored[-1]["seq"] and detail["status"] != "stopped"
    assert detail["queen_phase"] == "independent" and detail["colony_spawned"] is False
    files = await other.get(f"/api/sessions/{sid}/files")  # node-local: the owner's
    assert (files.status, (await files.json())["node_id"]) == (409, "n1")
    assert (await owner.get(f"/api/sessions/{sid}/files")).status == 200
    rows = (await _get(other, "/api/sessions/history"))["sessions"]
    assert [(row["session_id"], row["live"], row["cold"], row["last_seq"]) for row in rows] == [
        (sid, True, False, stored[-1]["seq"])]
    jsonl = await other.get(f"/api/sessions/{sid}/export?format=jsonl")
    assert jsonl.status == 200
    lines = (await jsonl.read()).splitlines()
    raw = [fields[b"e"] for _, fields in await redis_client.xrange(session_key(sid, "log"))]
    assert lines == raw
    markdown = await other.get(f"/api/sessions/{sid}/export")
    same = await owner.get(f"/api/sessions/{sid}/export")
    text = await markdown.text()
    assert "first" in text and text == await same.text()
    here, there = (await _get(owner, f"/api/sessions/{sid}/stats"),
                   await _get(other, f"/api/sessions/{sid}/stats"))
    assert there["usage"] == here["usage"] and there["usage"]["turns"] >= 1
    assert there["last_seq"] == here["last_seq"] == stored[-1]["seq"]
    usage = await _get(other, "/api/usage")
    assert usage["sessions"] == 1 and usage["usage"] == here["usage"]


@redis_test
async def test_a_new_owner_counts_what_its_meta_missed_from_the_stream(
        pair: Pair, redis_client: redis.asyncio.Redis) -> None:
    owner, other, sid = pair
    before = (await _get(owner, f"/api/sessions/{sid}/stats"))["usage"]
    assert before["turns"] >= 1
    await owner.app[keys.REDIS_NODE].keeper.close()
    meta = orjson.loads(await redis_client.get(session_key(sid, "meta")))
    meta["usage"] = None  # as a meta written before the owner's last turns were counted
    await redis_client.set(session_key(sid, "meta"), orjson.dumps(meta))
    await _eventually(lambda: _true(sid in _live_ids(other)))
    after = await _get(other, f"/api/sessions/{sid}/stats")
    assert after["live"] is True and after["usage"] == before


@redis_test
async def test_a_replayed_stop_of_an_earlier_run_does_not_end_a_stream(
        pair: Pair, redis_client: redis.asyncio.Redis) -> None:
    owner, other, sid = pair
    assert (await owner.delete(f"/api/sessions/{sid}")).status == 200
    await HiveApi(owner).create_session(queen_resume_from=sid)
    stream = await _events(other, sid, 0)
    try:
        await HiveApi(owner).chat(sid, "after the resume")
        events = await until(stream, "execution_completed")
        while not any(e["data"].get("content") == "after the resume" for e in events):
            events += await until(stream, "execution_completed")
    finally:
        stream.close()
    types = [e["type"] for e in events]
    assert "session_stopped" in types and types.index("session_stopped") < len(types) - 1
    assert [e["seq"] for e in events] == list(range(1, events[-1]["seq"] + 1))


@redis_test
async def test_a_stream_on_another_node_goes_on_when_the_owner_shuts_down(
        redis_client: redis.asyncio.Redis, pair: Pair) -> None:
    owner, other, sid = pair
    watched = await _events(other, sid, 0)
    try:
        await owner.close()  # a clean shutdown: its stop is logged, its lease handed over
        await _eventually(lambda: _true(sid in _live_ids(other)))
        await HiveApi(other).chat(sid, "after the shutdown")
        events = await _until_input(watched, "after the shutdown")
    finally:
        watched.close()
    stops = [e["data"]["reason"] for e in events if e["type"] == "session_stopped"]
    assert stops == ["shutdown"]  # replayed and streamed past, not the stream's end
    assert [e["seq"] for e in events] == list(range(1, events[-1]["seq"] + 1))
