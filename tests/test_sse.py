"""SSE: unnamed frames with ids, resume without gap or duplicate, filters, end on stop."""

from __future__ import annotations

import asyncio
import json

from hive_server import keys
from hive_server.models.event_data import ClientOutputDelta
from hive_server.web.sse import SSE_TAIL
from tests.conftest import create_session, make_settings
from tests.sse_reader import read_all, read_frame, read_until


def emit_many(client, sid: str, n: int) -> None:
    session = client.app[keys.SESSIONS].get(sid).journal
    for i in range(n):
        session.emit(ClientOutputDelta(content=f"c{i}", snapshot=""))


async def test_frames_are_unnamed_with_seq_ids(client, api):
    await api.create_session(session_id="s")
    resp = await client.get("/api/sessions/s/events", params={"after_seq": "1"})
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/event-stream")
    emit_many(client, "s", 1)
    raw = await resp.content.readuntil(b"\n\n")
    assert raw.startswith(b"id: 2\n")
    assert b"event:" not in raw
    resp.close()


async def test_without_a_cursor_a_snapshot_then_a_bounded_tail_then_live_events(client, api):
    await api.create_session(session_id="s")
    emit_many(client, "s", SSE_TAIL + 10)  # seq 2 .. TAIL + 11
    last = SSE_TAIL + 11
    resp = await client.get("/api/sessions/s/events")
    raw = await resp.content.readuntil(b"\n\n")
    assert raw.startswith(b"data: ") and b"id:" not in raw  # seq 0 is not a resume point
    snapshot = read_one(raw)
    assert (snapshot["type"], snapshot["seq"]) == ("session_snapshot", 0)
    assert snapshot["data"]["snapshot_seq"] == last and snapshot["data"]["activity"] == "idle"
    emit_many(client, "s", 1)
    frames = await read_until(resp, lambda e: e["seq"] == last + 1)
    assert [f["id"] for f in frames] == list(range(last - SSE_TAIL + 1, last + 2))
    resp.close()


async def test_the_snapshot_is_served_alone_at_snapshot(client, api):
    await api.create_session(session_id="s")
    resp = await client.get("/api/sessions/s/snapshot")
    body = await resp.json()
    assert resp.status == 200 and body["snapshot_seq"] == 1
    assert (body["is_executing"], body["awaiting_input"], body["queen_busy_reason"]) == (
        False, False, None)
    assert (await client.get("/api/sessions/nope/snapshot")).status == 404


async def test_after_seq_zero_replays_everything(client, api):
    await api.create_session(session_id="s")
    emit_many(client, "s", 5)
    resp = await client.get("/api/sessions/s/events?after_seq=0")
    frames = await read_until(resp, lambda e: e["seq"] == 6)
    assert [f["id"] for f in frames] == [1, 2, 3, 4, 5, 6]
    assert frames[0]["event"]["type"] == "session_started"
    resp.close()


async def test_last_event_id_resume_no_gap_no_duplicate_while_publishing(client, api):
    await api.create_session(session_id="s")
    emit_many(client, "s", 200)
    done = asyncio.Event()

    async def publisher():
        for _ in range(300):
            emit_many(client, "s", 3)
            await asyncio.sleep(0)
        done.set()

    task = asyncio.create_task(publisher())
    resp = await client.get("/api/sessions/s/events", headers={"Last-Event-ID": "100"})
    frames = await read_until(resp, lambda e: e["seq"] == 1101, timeout=20)
    await task
    assert [f["id"] for f in frames] == list(range(101, 1102))
    resp.close()


async def test_types_filter_applies_to_replay_and_live(client, api):
    await api.create_session(session_id="s")
    emit_many(client, "s", 3)
    resp = await client.get("/api/sessions/s/events?after_seq=0&types=session_stopped")
    await client.delete("/api/sessions/s")
    frames = await read_all(resp)
    assert [f["event"]["type"] for f in frames] == ["session_stopped"]


async def test_stream_ends_when_session_stops(client, api):
    await api.create_session(session_id="s")
    resp = await client.get("/api/sessions/s/events")
    await client.delete("/api/sessions/s")
    frames = await read_all(resp)
    assert frames[-1]["event"]["type"] == "session_stopped"
    assert resp.content.at_eof()


async def test_not_live_is_404(client, api):
    resp = await client.get("/api/sessions/nothing/events")
    assert resp.status == 404
    await api.create_session(session_id="s")
    await client.delete("/api/sessions/s")
    assert (await client.get("/api/sessions/s/events")).status == 404


async def test_lagging_stream_is_ended_and_resumes_without_loss(make_client, tmp_path):
    client = await make_client(make_settings(tmp_path, sse_queue_size=8))
    await create_session(client, session_id="s")
    resp = await client.get("/api/sessions/s/events", params={"after_seq": "1"})
    emit_many(client, "s", 100)  # synchronous burst: the subscriber cannot keep up
    first = await read_all(resp)
    assert first, "buffered events are delivered before the stream ends"
    last = first[-1]["id"]
    assert last < 101
    resumed = await client.get("/api/sessions/s/events", headers={"Last-Event-ID": str(last)})
    rest = await read_until(resumed, lambda e: e["seq"] == 101)
    assert [f["id"] for f in first + rest] == list(range(2, 102))
    resumed.close()


async def test_resume_point_beyond_the_log_skips_no_new_event(client, api):
    """An id from before a crash that lost unsynced events (or another incarnation of the id)
    resumes from the session's last seq, so the events written after it are all delivered."""
    await api.create_session(session_id="s")
    for resume in ({"headers": {"Last-Event-ID": "50"}}, {"params": {"after_seq": "50"}}):
        resp = await client.get("/api/sessions/s/events", **resume)
        assert resp.status == 200
        start = client.app[keys.SESSIONS].get("s").journal.last_seq
        emit_many(client, "s", 3)
        frames = await read_until(resp, lambda e, end=start + 3: e["seq"] == end)
        assert [f["id"] for f in frames] == [start + 1, start + 2, start + 3]
        resp.close()


async def test_types_with_no_names_is_no_filter(client, api):
    await api.create_session(session_id="s")
    resp = await client.get("/api/sessions/s/events?types=,%20,&after_seq=1")
    assert resp.status == 200
    emit_many(client, "s", 1)
    frame = await read_frame(resp)
    assert frame["event"]["type"] == "client_output_delta"
    resp.close()


def read_one(raw: bytes) -> dict:
    return json.loads(raw.decode().split("data: ", 1)[1])


async def test_at_shutdown_a_stream_gets_session_stopped_before_it_ends(make_client, settings):
    client = await make_client(settings)
    await create_session(client, session_id="s")
    resp = await client.get("/api/sessions/s/events", params={"after_seq": "0"})
    await client.app.shutdown()
    frames = await read_all(resp)
    assert frames[-1]["event"]["type"] == "session_stopped"
    assert frames[-1]["event"]["data"]["reason"] == "shutdown"
    await client.close()
