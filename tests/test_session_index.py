"""The sessions index: rebuilt when lost, corrupt or stale; title, activity and status kept in
meta and in the index as a session lives."""

from __future__ import annotations

import json
import logging
import os
import sqlite3

import pytest

from hive_server.models.events import Event
from hive_server.models.session import SessionMeta
from hive_server.models.session_query import SessionFilter
from hive_server.services.journal.activity import QueenActivity
from hive_server.services.sessions.index import INDEX_FILE, SessionIndex
from tests.conftest import create_session
from tests.fakes import error
from tests.queen_support import chat, claude, open_stream, read_log, until
from tests.test_session_list import write_session


async def history(client, query: str = "") -> dict[str, dict]:
    body = await (await client.get(f"/api/sessions/history{query}")).json()
    return {row["session_id"]: row for row in body["sessions"]}


@pytest.fixture
def on_disk(settings):
    write_session(settings.home, "a", day=1, title="first")
    write_session(settings.home, "b", day=2)
    return settings


async def test_listing_filtering_and_counting_read_no_meta_file(make_client, on_disk):
    client = await make_client(on_disk)
    assert set(await history(client)) == {"a", "b"}
    for name in ("a", "b"):  # a reader would find these corrupt and keep them aside
        (on_disk.home / "sessions" / name / "meta.json").write_bytes(b"{not json")
    body = await (await client.get("/api/sessions/history?q=first&limit=1")).json()
    assert [r["session_id"] for r in body["sessions"]] == ["a"] and body["total"] == 1
    assert not list(on_disk.home.glob("sessions/*/meta.json.corrupt-*"))


async def test_a_deleted_index_is_rebuilt_from_the_meta_files(make_client, on_disk):
    client = await make_client(on_disk)
    assert set(await history(client)) == {"a", "b"}
    await client.close()
    index = on_disk.home / INDEX_FILE
    index.unlink()
    client = await make_client(on_disk)
    rows = await history(client)
    assert set(rows) == {"a", "b"} and rows["a"]["title"] == "first"
    assert index.is_file()


async def test_a_corrupt_index_is_kept_aside_logged_and_rebuilt(make_client, on_disk, caplog):
    (on_disk.home / INDEX_FILE).write_bytes(b"this is not a database" * 100)
    caplog.set_level(logging.WARNING, "hive_server.services.sessions.index")
    client = await make_client(on_disk)
    assert set(await history(client)) == {"a", "b"}
    kept = list(on_disk.home.glob(f"{INDEX_FILE}.corrupt-*"))
    assert len(kept) == 1 and kept[0].read_bytes().startswith(b"this is not a database")
    assert any("corrupt" in r.getMessage() and kept[0].name in r.getMessage()
               for r in caplog.records)


async def test_folders_added_removed_or_edited_while_stopped_are_caught_up(make_client, on_disk):
    client = await make_client(on_disk)
    assert set(await history(client)) == {"a", "b"}
    await client.close()
    sessions = on_disk.home / "sessions"
    write_session(on_disk.home, "c", day=3)  # a folder with no row
    for name in os.listdir(sessions / "b"):  # a row with no folder
        os.unlink(sessions / "b" / name)
    os.rmdir(sessions / "b")
    meta = json.loads((sessions / "a" / "meta.json").read_text())
    (sessions / "a" / "meta.json").write_text(json.dumps({**meta, "title": "edited"}))
    client = await make_client(on_disk)
    rows = await history(client)
    assert set(rows) == {"a", "c"} and rows["a"]["title"] == "edited"


async def test_an_index_not_closed_cleanly_is_rebuilt_whole(make_client, on_disk):
    client = await make_client(on_disk)
    await history(client)
    await client.close()
    path = on_disk.home / "sessions" / "a" / "meta.json"
    stat = path.stat()
    path.write_text(json.dumps({**json.loads(path.read_text()), "title": "after a crash"}))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # nothing tells it changed...
    with sqlite3.connect(on_disk.home / INDEX_FILE) as db:  # ...but a crash left it open
        assert db.execute("SELECT value FROM state WHERE key = 'clean'").fetchone() == ("1",)
        db.execute("UPDATE state SET value = '0' WHERE key = 'clean'")
    client = await make_client(on_disk)
    assert (await history(client))["a"]["title"] == "after a crash"


async def test_a_meta_written_before_the_status_model_loads(make_client, settings):
    legacy = {"session_id": "old", "created_at": "2025-01-01T00:00:00+00:00",
              "updated_at": "2025-01-02T00:00:00+00:00", "queen_id": "q", "queen_name": "Q",
              "model": "m", "status": "live", "phase": "planning"}
    meta = SessionMeta.model_validate(legacy)
    assert (meta.status, meta.title, meta.last_active_at) == ("idle", None, None)
    assert meta.active_iso == "2025-01-02T00:00:00+00:00"
    folder = settings.home / "sessions" / "old"
    folder.mkdir(parents=True)
    (folder / "meta.json").write_text(json.dumps({**legacy, "status": "stopped"}))
    client = await make_client(settings)
    row = (await history(client))["old"]
    assert row["status"] == "stopped" and row["last_active_at"] == 1735776000.0


async def test_the_title_comes_from_create_else_the_first_user_message(client, api, settings):
    await api.create_session(session_id="named", title="  My session  ")
    await api.create_session(session_id="drawn")
    stream = await api.events("drawn")
    await api.chat("drawn", "Plan   the\nlaunch of the new site " + "x" * 200)
    await until(stream, "execution_completed")
    await api.chat("drawn", "second message")
    await until(stream, "execution_completed")
    rows = await history(client)
    assert rows["named"]["title"] == "My session"
    drawn = rows["drawn"]
    assert drawn["title"].startswith("Plan the launch of the new site x") and len(
        drawn["title"]) == 80
    assert drawn["first_message"].startswith("Plan the launch")
    assert (drawn["last_message"], drawn["message_count"]) == ("second message", 2)
    assert (await history(client, "?q=launch")).keys() == {"drawn"}
    live = await (await client.get("/api/sessions/drawn")).json()
    assert live["title"] == drawn["title"] and live["message_count"] == 2
    resp = await client.post("/api/sessions", json={"title": "   "})
    assert resp.status == 400 and (await resp.json())["code"] == "empty_title"


async def test_status_follows_the_turns_into_meta_the_index_and_the_live_dict(client, api,
                                                                              settings):
    await api.create_session(session_id="s")
    assert (await (await client.get("/api/sessions/s")).json())["status"] == "idle"
    stream = await api.events("s")
    await api.chat("s", "please ask me something")
    await until(stream, "client_input_requested")
    assert (await (await client.get("/api/sessions/s")).json())["status"] == "awaiting_input"
    assert set(await history(client, "?status=awaiting_input")) == {"s"}
    await client.post("/api/sessions/s/cancel")
    await until(stream, "execution_cancelled")
    assert (await history(client))["s"]["status"] == "cancelled"
    await api.chat("s", "hello")
    await until(stream, "execution_completed")
    live = await (await client.get("/api/sessions/s")).json()
    assert live["status"] == "idle" and live["last_active_at"] >= live["created_at"]
    await client.delete("/api/sessions/s")
    meta = json.loads((settings.home / "sessions" / "s" / "meta.json").read_text())
    assert meta["status"] == "stopped"
    stopped = await history(client, "?status=stopped")
    assert set(stopped) == {"s"}
    assert stopped["s"]["last_seq"] == len(read_log(settings.home, "s")) == meta["last_seq"]


async def test_a_failed_turn_is_failed_with_its_error_until_the_next_turn(
        fake, fake_url, make_client, settings):
    client = await make_client(settings, llm=claude(fake_url))
    fake.script(error(400, message="prompt is too long"))
    await create_session(client, session_id="f")
    stream = await open_stream(client, "f")
    await chat(client, "f", "go")
    await until(stream, "execution_failed")
    row = (await history(client, "?status=failed"))["f"]
    assert "prompt is too long" in row["last_error"]
    await client.close()  # a restart keeps a failed status (not an interrupted turn)
    client = await make_client(settings, llm=claude(fake_url))
    meta = json.loads((settings.home / "sessions" / "f" / "meta.json").read_text())
    assert meta["status"] == "failed" and "prompt is too long" in meta["last_error"]


def _event(seq: int, kind: str, **data: object) -> Event:
    return Event(seq=seq, type=kind, session_id="s", stream_id="queen", node_id="queen",
                 execution_id="e", correlation_id=None, colony_id=None,
                 timestamp="2026-01-01T00:00:00+00:00", data=data)


def test_the_status_of_each_turn_event():
    activity = QueenActivity()
    steps = [("execution_started", {}, "active"),
             ("client_input_requested", {"questions": [{"id": "q", "prompt": "?"}]},
              "awaiting_input"),
             ("client_input_received", {"content": "yes", "answers_request_seq": 2}, "active"),
             ("execution_completed", {}, "idle"),
             ("execution_started", {}, "active"),
             ("execution_failed", {"error": "boom", "error_type": "stale"}, "failed"),
             ("execution_started", {}, "active"),
             ("execution_cancelled", {}, "cancelled")]
    for seq, (kind, data, status) in enumerate(steps, 1):
        activity.observe(_event(seq, kind, **data))
        assert activity.status == status, kind
    assert activity.last_error == "stale: boom"


def a_meta(session_id: str, title: str | None = None) -> SessionMeta:
    return SessionMeta(session_id=session_id, created_at="2026-01-01T00:00:00+00:00",
                       updated_at="2026-01-01T00:00:00+00:00", queen_id="queen",
                       queen_name="Queen", model="m", status="stopped", title=title)


async def test_changes_queued_together_keep_each_sessions_last_change(tmp_path):
    """Changes queued before the index thread writes them go in one write; the last change of
    each session wins: a removal between two puts does not undo the second put, a put before
    a removal does not bring the row back."""
    index = SessionIndex(tmp_path, tmp_path / "sessions", lambda folder: None)
    await index.open()
    index.put(a_meta("a", "one"))
    index.put(a_meta("b"))
    index.remove("a")
    index.put(a_meta("a", "two"))
    index.remove("b")
    index.put(a_meta("c", "three"))
    rows = await index.matching(SessionFilter())
    assert sorted((meta.session_id, meta.title) for meta in rows) == [("a", "two"),
                                                                       ("c", "three")]
    index.remove("c")
    assert [meta.session_id for meta in await index.matching(SessionFilter())] == ["a"]
    await index.close()
