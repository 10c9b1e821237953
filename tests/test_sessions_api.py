"""Session routes against the real app: create, get, list, stop, history, resume."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

from hive_server import keys
from hive_server.models.event_data import ClientOutputDelta
from tests.agent_fixtures import write_agent
from tests.conftest import create_session, make_settings


def read_log(home: Path, session_id: str) -> list[dict]:
    lines = (home / "sessions" / session_id / "events.jsonl").read_bytes().splitlines()
    return [json.loads(line) for line in lines]


async def test_create_returns_live_dict_and_logs_session_started(client, settings):
    body = await create_session(client)
    sid = body["session_id"]
    assert sid.startswith("session_")
    for key in ("session_id", "colony_id", "colony_name", "has_worker", "agent_path",
                "description", "goal", "node_count", "loaded_at", "uptime_seconds",
                "intro_message", "queen_phase", "queen_id", "queen_name"):
        assert key in body
    events = read_log(settings.home, sid)
    assert [e["type"] for e in events] == ["session_started"]
    assert events[0]["seq"] == 1
    meta = json.loads((settings.home / "sessions" / sid / "meta.json").read_text())
    assert meta["status"] == "idle"  # not stopped: resumed at the next start
    assert (settings.home / "sessions" / sid / "workspace").is_dir()


async def test_chosen_id_conflicts_while_live(client, api):
    await api.create_session(session_id="alpha")
    resp = await client.post("/api/sessions", json={"session_id": "alpha"})
    assert resp.status == 409
    assert (await resp.json())["code"] == "session_live"


async def test_unsafe_ids_are_rejected_and_touch_nothing(client, settings, tmp_path):
    for bad in ("../escape", "a/b", "..", ".hidden", "a b", "history"):
        resp = await client.post("/api/sessions", json={"session_id": bad})
        assert resp.status == 400, bad
        assert (await resp.json())["code"] == "invalid_session_id", bad
    resp = await client.post("/api/sessions", json={"session_id": "x" * 200})
    assert resp.status == 422  # over the schema's length limit
    assert (await resp.json())["code"] == "validation_error"
    outside = tmp_path / "victim"
    outside.mkdir()
    resp = await client.delete("/api/sessions/history/..%2Fvictim")
    assert resp.status == 400 and (await resp.json())["code"] == "invalid_session_id"
    assert outside.is_dir()
    resp = await client.get("/api/sessions/..%2F..%2Fetc")
    assert resp.status == 400 and (await resp.json())["code"] == "invalid_session_id"
    assert not (settings.home / "sessions").exists() or list(
        (settings.home / "sessions").iterdir()) == []


async def test_get_live_cold_and_unknown(client, api):
    sid = (await api.create_session(session_id="s1"))["session_id"]
    live = await (await client.get(f"/api/sessions/{sid}")).json()
    assert live["cold"] is False
    resp = await client.delete(f"/api/sessions/{sid}")
    assert await resp.json() == {"session_id": sid, "stopped": True}
    cold = await client.get(f"/api/sessions/{sid}")
    assert cold.status == 200
    body = await cold.json()
    assert body["cold"] is True and body["status"] == "stopped"
    assert body["last_seq"] == 3  # session_started, session_summary, session_stopped
    missing = await client.get("/api/sessions/nope")
    assert missing.status == 404
    assert (await missing.json())["code"] == "session_not_found"


async def test_list_and_history(client, api):
    await api.create_session(session_id="one")
    await api.create_session(session_id="two")
    await client.delete("/api/sessions/one")
    live = await (await client.get("/api/sessions")).json()
    assert [s["session_id"] for s in live["sessions"]] == ["two"]
    history = await (await client.get("/api/sessions/history")).json()
    flags = {s["session_id"]: (s["live"], s["cold"]) for s in history["sessions"]}
    assert flags == {"one": (False, True), "two": (True, False)}


async def test_delete_history_stops_and_removes_folder(client, api, settings):
    await api.create_session(session_id="gone")
    resp = await client.delete("/api/sessions/history/gone")
    assert resp.status == 200
    assert not (settings.home / "sessions" / "gone").exists()
    assert (await client.get("/api/sessions/gone")).status == 404
    assert (await client.delete("/api/sessions/history/gone")).status == 404


async def test_resume_keeps_id_and_continues_seq(client, api, settings):
    await api.create_session(session_id="res")
    await client.delete("/api/sessions/res")
    body = await api.create_session(queen_resume_from="res")
    assert body["session_id"] == "res"
    seqs = [e["seq"] for e in read_log(settings.home, "res")]
    assert seqs == [1, 2, 3, 4]
    resp = await client.post("/api/sessions", json={"queen_resume_from": "never-was"})
    assert resp.status == 404


async def test_live_sessions_resume_after_restart(make_client, tmp_path):
    settings = make_settings(tmp_path)
    first = await make_client(settings)
    await create_session(first, session_id="keep")
    await create_session(first, session_id="drop")
    await first.delete("/api/sessions/drop")
    await first.close()
    second = await make_client(settings)
    live = await (await second.get("/api/sessions")).json()
    assert [s["session_id"] for s in live["sessions"]] == ["keep"]
    types = [e["type"] for e in read_log(settings.home, "keep")]
    assert types == ["session_started", "session_summary", "session_stopped",
                     "session_started"]
    assert [e["seq"] for e in read_log(settings.home, "keep")] == [1, 2, 3, 4]


async def test_event_history_live_and_cold(client, api):
    await api.create_session(session_id="h")
    session = client.app[keys.SESSIONS].get("h").journal
    for i in range(30):
        session.emit(ClientOutputDelta(content=str(i), snapshot=""))
    resp = await client.get("/api/sessions/h/events/history?limit=10")
    body = await resp.json()
    assert body["total"] == 31 and body["returned"] == 10 and body["truncated"] is True
    assert [e["seq"] for e in body["events"]] == list(range(22, 32))
    body = await (await client.get("/api/sessions/h/events/history?limit=5&before_seq=4")).json()
    assert [e["seq"] for e in body["events"]] == [1, 2, 3]
    assert body["truncated"] is False
    await client.delete("/api/sessions/h")
    cold = await (await client.get("/api/sessions/h/events/history?limit=3")).json()
    assert [e["type"] for e in cold["events"]] == [
        "client_output_delta", "session_summary", "session_stopped"]
    assert [e["seq"] for e in cold["events"]] == [31, 32, 33]
    assert cold["total"] == 33
    bad = await client.get("/api/sessions/h/events/history?limit=0")
    assert bad.status == 400


async def test_resume_while_stopping_waits_for_the_stop(client, api, settings):
    await api.create_session(session_id="r")
    manager = client.app[keys.SESSIONS]
    for _ in range(20):
        stopping = asyncio.create_task(manager.stop("r"))
        await asyncio.sleep(0)  # the stop is under way: "r" is no longer live, not yet closed
        await manager.resume("r")
        await stopping
        meta = json.loads((settings.home / "sessions" / "r" / "meta.json").read_text())
        assert meta["status"] == "idle"
    events = read_log(settings.home, "r")
    assert [e["seq"] for e in events] == list(range(1, 62))
    assert [e["type"] for e in events] == ["session_started"] + [
        "session_summary", "session_stopped", "session_started"] * 20


async def test_delete_history_while_stopping_leaves_no_folder(client, api, settings):
    await api.create_session(session_id="z")
    stopping = asyncio.create_task(client.app[keys.SESSIONS].stop("z"))
    await asyncio.sleep(0)  # the stop is under way: "z" is no longer live, not yet closed
    resp = await client.delete("/api/sessions/history/z")
    await stopping
    assert resp.status == 200
    assert not (settings.home / "sessions" / "z").exists()


async def test_colony_load_racing_a_stop_is_refused_not_500(make_client, tmp_path):
    write_agent(tmp_path / "agents", "garden", {"name": "Garden"})
    settings = make_settings(tmp_path)
    client = await make_client(settings)
    statuses = set()
    for i in range(12):
        sid = f"s{i}"
        await create_session(client, session_id=sid)
        load = asyncio.create_task(
            client.post(f"/api/sessions/{sid}/colony", json={"agent_id": "garden"}))
        for _ in range(i):
            await asyncio.sleep(0)
        assert (await client.delete(f"/api/sessions/{sid}")).status == 200
        statuses.add((await load).status)
        assert read_log(settings.home, sid)[-1]["type"] == "session_stopped"
    assert statuses <= {201, 404, 503}  # loaded before the stop, after it, or refused by it


async def test_initial_prompt_over_the_message_limit_is_413_and_creates_nothing(client, settings):
    too_long = "x" * (settings.max_message_chars + 1)
    resp = await client.post("/api/sessions", json={"session_id": "p", "initial_prompt": too_long})
    assert resp.status == 413
    assert (await resp.json())["code"] == "message_too_large"
    assert not (settings.home / "sessions" / "p").exists()


async def test_a_corrupt_meta_json_is_a_400_and_never_stops_the_other_sessions(make_client,
                                                                               tmp_path):
    settings = make_settings(tmp_path)
    first = await make_client(settings)
    for sid in ("ok", "bad"):
        await create_session(first, session_id=sid)
    await first.close()  # both stay marked live: the next start resumes them
    (settings.home / "sessions" / "bad" / "meta.json").write_text("{broken")

    second = await make_client(settings)
    live = await (await second.get("/api/sessions")).json()
    assert [s["session_id"] for s in live["sessions"]] == ["ok"]
    for resp in (await second.get("/api/sessions/bad"),
                 await second.post("/api/sessions", json={"queen_resume_from": "bad"})):
        assert resp.status == 400
        assert (await resp.json())["code"] == "session_corrupt"
    history = await (await second.get("/api/sessions/history")).json()
    assert [s["session_id"] for s in history["sessions"]] == ["ok"]


async def test_a_blank_initial_prompt_is_400_like_a_blank_chat_and_creates_nothing(client,
                                                                                   settings):
    resp = await client.post("/api/sessions", json={"session_id": "p", "initial_prompt": " \n "})
    assert resp.status == 400
    assert (await resp.json())["code"] == "empty_message"
    assert not (settings.home / "sessions" / "p").exists()


async def test_a_copied_session_folder_is_its_own_session(client, api, settings):
    await api.create_session(session_id="a")
    await client.delete("/api/sessions/a")
    sessions = settings.home / "sessions"
    shutil.copytree(sessions / "a", sessions / "b")
    history = await (await client.get("/api/sessions/history")).json()
    assert sorted(s["session_id"] for s in history["sessions"]) == ["a", "b"]
    assert (await (await client.get("/api/sessions/b")).json())["session_id"] == "b"
    body = await api.create_session(queen_resume_from="b")
    assert body["session_id"] == "b"
    assert read_log(settings.home, "b")[-1]["session_id"] == "b"
    assert json.loads((sessions / "b" / "meta.json").read_text())["session_id"] == "b"
    assert json.loads((sessions / "a" / "meta.json").read_text())["status"] == "stopped"
    assert len(read_log(settings.home, "a")) == 3


async def test_agent_delete_racing_a_session_stop_still_deletes(make_client, tmp_path):
    folder = write_agent(tmp_path / "agents", "garden", {"name": "Garden"})
    client = await make_client(make_settings(tmp_path))
    manager = client.app[keys.SESSIONS]
    for sid in ("s1", "s2"):
        await create_session(client, session_id=sid, agent_id="garden")
    delete = asyncio.create_task(client.delete("/api/agents", json={"agent_id": "garden"}))
    for _ in range(1000):  # until the agent delete has begun stopping the first session
        if len(manager.live()) < 2:
            break
        await asyncio.sleep(0)
    (other,) = [live.journal.id for live in manager.live()]  # the race is really set up
    await manager.stop(other)  # a user stops the other one meanwhile
    resp = await delete
    assert resp.status == 200, await resp.text()
    assert not folder.exists()


async def test_an_id_ending_in_a_newline_is_refused(client):
    resp = await client.post("/api/sessions", json={"session_id": "abc\n"})
    assert resp.status == 400 and (await resp.json())["code"] == "invalid_session_id"
    assert not (client.app[keys.SETTINGS].home / "sessions" / "abc\n").exists()
