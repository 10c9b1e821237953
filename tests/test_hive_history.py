"""History rows (epoch seconds, last message, has_messages) and event-history paging."""

from __future__ import annotations

import asyncio
import json

import pytest

from hive_server import keys
from hive_server.core.eventlog import Durability, EventLog
from hive_server.models.session import SessionMeta
from hive_server.services.journal import journal as session_module
from hive_server.services.journal.journal import SessionJournal
from tests.agent_fixtures import agents_tree
from tests.conftest import create_session
from tests.queen_support import chat, open_stream, until

ROW_TYPES = {"session_id": str, "queen_id": str, "agent_path": str, "created_at": float,
             "last_active_at": float, "last_message": (str, type(None)), "has_messages": bool,
             "message_count": (int, type(None)), "live": bool, "cold": bool}


async def history(client) -> dict[str, dict]:
    resp = await client.get("/api/sessions/history")
    assert resp.status == 200
    rows = (await resp.json())["sessions"]
    for row in rows:
        for key, kind in ROW_TYPES.items():
            assert isinstance(row[key], kind), (key, row[key])
    return {row["session_id"]: row for row in rows}


def _as_logged_before_handoff_notes(path) -> None:
    """The log as a server older than ``session_summary`` wrote it: the summary left out,
    the seqs contiguous again."""
    events = [e for e in map(json.loads, path.read_text().splitlines())
              if e["type"] != "session_summary"]
    path.write_text("".join(json.dumps({**e, "seq": n}) + "\n"
                            for n, e in enumerate(events, 1)))


def meta_file(settings, session_id: str) -> dict:
    return json.loads((settings.home / "sessions" / session_id / "meta.json").read_text())


async def test_rows_count_messages_in_memory_and_write_them_at_stop(client, api, settings):
    await api.create_session(session_id="quiet")
    await api.create_session(session_id="talk")
    stream = await api.events("talk", after_seq=0)
    await api.chat("talk", "first question")
    await api.chat("talk", "  second\n question  " + "x" * 200)
    await until(stream, "execution_completed")
    rows = await history(client)
    assert rows["quiet"]["has_messages"] is False and rows["quiet"]["message_count"] == 0
    assert rows["quiet"]["last_message"] is None
    talk = rows["talk"]
    assert talk["has_messages"] is True and talk["message_count"] == 2
    assert talk["last_message"].startswith("second question xxx")
    assert len(talk["last_message"]) <= 120
    assert talk["created_at"] <= talk["last_active_at"]
    assert abs(talk["created_at"] - client.app[keys.SESSIONS].get("talk").journal.loaded_at) < 60
    assert talk["live"] is True and talk["cold"] is False and talk["agent_path"] == ""
    # nothing was written per chat: meta.json still holds what the start wrote
    assert meta_file(settings, "talk")["message_count"] == 0
    await client.delete("/api/sessions/talk")
    on_disk = meta_file(settings, "talk")
    assert on_disk["message_count"] == 2 and on_disk["last_message"] == talk["last_message"]
    cold = (await history(client))["talk"]
    assert (cold["cold"], cold["message_count"], cold["has_messages"]) == (True, 2, True)


async def test_a_meta_written_before_the_fields_existed_still_lists(make_client, settings):
    client = await make_client(settings)
    await create_session(client, session_id="old")
    stream = await open_stream(client, "old", after_seq=0)
    await chat(client, "old", "hello")
    await until(stream, "execution_completed")
    await create_session(client, session_id="empty")
    for sid in ("old", "empty"):
        await client.delete(f"/api/sessions/{sid}")
    await history(client)  # queued after the stops' index writes: those are done by now
    for sid in ("old", "empty"):
        path = settings.home / "sessions" / sid / "meta.json"
        meta = json.loads(path.read_text())
        for key in ("message_count", "last_message", "last_input_at", "last_active_at",
                    "first_message", "last_error", "last_seq"):
            meta.pop(key, None)
        path.write_text(json.dumps({**meta, "phase": "planning"}))
    _as_logged_before_handoff_notes(settings.home / "sessions" / "empty" / "events.jsonl")
    await client.close()  # edited while stopped: the index reads the changed files again
    client = await make_client(settings)
    rows = await history(client)
    assert rows["old"]["has_messages"] is True and rows["old"]["message_count"] is None
    assert rows["empty"]["has_messages"] is False  # started and stopped: two events
    assert rows["old"]["last_active_at"] >= rows["old"]["created_at"]


async def test_the_debounced_write_lands_without_a_stop(tmp_path, monkeypatch):
    monkeypatch.setattr(session_module, "META_FLUSH_SECONDS", 0.0)
    log = EventLog(tmp_path / "s" / "events.jsonl", Durability.NONE)
    (tmp_path / "s").mkdir()
    await log.open()
    meta = SessionMeta(session_id="s", created_at="t", updated_at="t", queen_id="q",
                       queen_name="Q", model="m")
    session = SessionJournal(meta, tmp_path / "s", log)
    session.record_input("a trigger task", "trigger")
    session.record_input("hi there", "user")
    flushes = [t for t in asyncio.all_tasks() if t.get_name() == "meta-flush:s"]
    assert len(flushes) == 1  # two inputs, one pending write
    await flushes[0]
    written = json.loads((tmp_path / "s" / "meta.json").read_text())
    assert written["message_count"] == 2 and written["last_message"] == "hi there"
    assert written["last_input_at"]
    await session.close("done", mark_stopped=True)


async def test_colony_sessions_list_the_sessions_of_one_agent(client, api, settings):
    agents_tree(settings.agents_dir)
    await client.app[keys.CATALOG].reload()
    await api.create_session(session_id="with", colony_id="notes")
    await api.create_session(session_id="without")
    resp = await client.get("/api/colonies/notes/sessions")
    assert resp.status == 200
    assert [s["session_id"] for s in (await resp.json())["sessions"]] == ["with"]
    assert (await (await client.get("/api/colonies/clock/sessions")).json())["sessions"] == []
    resp = await client.get("/api/colonies/Bad%20Name/sessions")
    assert resp.status == 400 and (await resp.json())["code"] == "invalid_agent_id"


# -- /events/history paging --------------------------------------------------------------------

async def page(client, sid: str, query: str = "") -> dict:
    resp = await client.get(f"/api/sessions/{sid}/events/history{query}")
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    for key, kind in (("events", list), ("start_index", int), ("start_offset", int),
                      ("has_more_older", bool), ("total", int), ("returned", int),
                      ("truncated", bool), ("limit", int), ("session_id", str)):
        assert isinstance(body[key], kind), key
    return body


@pytest.mark.parametrize("cold", [False, True])
async def test_pages_walk_back_by_index_or_by_offset_without_gaps(client, api, settings, cold):
    await api.chatted("p", 4)
    if cold:
        await client.delete("/api/sessions/p")
    last = await page(client, "p", "?limit=5")  # a read flushes the log: all is on disk now
    total = last["total"]
    raw = (settings.home / "sessions" / "p" / "events.jsonl").read_bytes()
    offsets = {json.loads(line)["seq"]: pos for pos, line in _lines(raw)}
    assert [e["seq"] for e in last["events"]] == list(range(total - 4, total + 1))
    assert last["start_index"] == total - 4
    assert last["start_offset"] == offsets[total - 4]  # the byte offset of that line
    assert last["has_more_older"] is True and last["returned"] == 5
    seen = [e["seq"] for e in last["events"]]
    cursor = last
    while cursor["has_more_older"]:
        cursor = await page(client, "p", f"?limit=5&before_index={cursor['start_index']}"
                                         f"&before_offset={cursor['start_offset']}")
        seen = [e["seq"] for e in cursor["events"]] + seen
    assert seen == list(range(1, total + 1))
    by_offset = await page(client, "p", f"?limit=3&before_offset={last['start_offset']}")
    by_seq = await page(client, "p", f"?limit=3&before_seq={last['start_index']}")
    assert by_offset["events"] == by_seq["events"]
    assert [e["seq"] for e in by_seq["events"]] == [total - 7, total - 6, total - 5]


async def test_the_oldest_page_and_an_empty_one(client, api):
    await api.create_session(session_id="e")
    first = await page(client, "e", "?before_index=2")
    assert [e["seq"] for e in first["events"]] == [1]
    assert (first["start_index"], first["start_offset"], first["has_more_older"]) == (1, 0, False)
    empty = await page(client, "e", "?before_index=1")
    assert empty["events"] == [] and empty["has_more_older"] is False
    assert (empty["start_index"], empty["start_offset"]) == (0, 0)


@pytest.mark.parametrize("query", ["?before_seq=3&before_index=4", "?before_offset=-1",
                                   "?before_index=0", "?limit=10001"])
async def test_bad_paging_queries_are_400(client, api, query):
    await api.create_session(session_id="q")
    resp = await client.get(f"/api/sessions/q/events/history{query}")
    assert resp.status == 400 and (await resp.json())["code"] == "invalid_query"


def _lines(raw: bytes) -> list[tuple[int, bytes]]:
    found, pos = [], 0
    for line in raw.split(b"\n")[:-1]:
        found.append((pos, line))
        pos += len(line) + 1
    return found
