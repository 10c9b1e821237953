"""The routes and shapes Hive's UI reads at boot and on its chat pages, with their types."""

from __future__ import annotations

import json

import pytest

from hive_server import keys
from hive_server.core.files import write_atomic
from tests.agent_fixtures import agents_tree, run_workers
from tests.conftest import make_settings
from tests.queen_support import claude, until, write_queen


@pytest.fixture
async def client(make_client, settings):
    write_queen(settings.queens_dir)
    agents_tree(settings.agents_dir)
    return await make_client(settings)


async def get(client, path: str, status: int = 200) -> dict:
    resp = await client.get(path)
    assert resp.status == status, await resp.text()
    return await resp.json()


async def test_llm_config_reports_the_real_model_and_that_it_can_answer(client):
    body = await get(client, "/api/config/llm")
    llm = client.app[keys.LLM]
    assert body["provider"] == llm.provider == "offline"
    assert body["model"] == llm.default_model == "offline-1"
    assert body["has_api_key"] is True
    assert body["max_tokens"] == 4096 and body["max_context_tokens"] == 100_000
    assert body["connected_providers"] == ["offline"]
    assert body["active_subscription"] is None
    assert body["detected_subscriptions"] == [] and body["subscriptions"] == []


@pytest.mark.anthropic_sdk
async def test_llm_config_of_the_anthropic_client(make_client, tmp_path):
    settings = make_settings(tmp_path, anthropic_base_url="http://127.0.0.1:9")
    llm = claude("http://127.0.0.1:9", default_model="claude-x")
    body = await get(await make_client(settings, llm=llm), "/api/config/llm")
    assert (body["provider"], body["model"], body["has_api_key"]) == ("anthropic", "claude-x",
                                                                     True)
    assert body["api_key_env_var"] == "ANTHROPIC_API_KEY"
    assert body["api_base"] == "http://127.0.0.1:9"


LIVE_TYPES = {"session_id": str, "colony_id": (str, type(None)), "has_worker": bool,
              "agent_path": str, "description": str, "goal": str, "node_count": int,
              "loaded_at": float, "uptime_seconds": (int, float), "intro_message": str,
              "queen_phase": str, "queen_id": str, "queen_name": str, "colony_spawned": bool,
              "spawned_colony_id": type(None)}


def check_types(row: dict, types: dict) -> None:
    for key, kind in types.items():
        assert key in row, key
        assert isinstance(row[key], kind), (key, row[key])


async def test_live_dicts_have_a_string_agent_path_and_hive_phases(client, api, settings):
    bare = await api.create_session(session_id="bare", initial_phase="independent")
    check_types(bare, LIVE_TYPES)
    assert bare["agent_path"] == "" and bare["queen_phase"] == "independent"
    assert bare["colony_spawned"] is False and bare["spawned_colony_id"] is None
    colony = await api.create_session(session_id="col", colony_id="notes")
    check_types(colony, LIVE_TYPES)
    assert colony["colony_id"] == "notes" and colony["queen_phase"] == "colony"
    assert colony["agent_path"].endswith("/notes")
    for row in (await get(client, "/api/sessions"))["sessions"]:
        check_types(row, LIVE_TYPES)
    await client.delete("/api/sessions/bare")
    cold = await get(client, "/api/sessions/bare")
    assert cold["cold"] is True and cold["agent_path"] == ""
    assert cold["queen_phase"] == "independent"
    meta = json.loads((settings.home / "sessions" / "bare" / "meta.json").read_text())
    assert meta["phase"] == "independent"


@pytest.mark.parametrize(("phase", "stored"), [
    ("independent", "independent"), ("colony", "colony"), ("planning", "independent"),
    ("incubating", "independent"), ("working", "colony"), ("reviewing", "colony")])
async def test_initial_phase_takes_hive_values_and_normalises_legacy_ones(api, settings,
                                                                           phase, stored):
    await api.create_session(session_id="p", initial_phase=phase)
    meta = json.loads((settings.home / "sessions" / "p" / "meta.json").read_text())
    assert meta["phase"] == stored


async def test_meta_written_with_a_legacy_phase_still_loads(client, api, settings):
    await api.create_session(session_id="old")
    await client.delete("/api/sessions/old")
    path = settings.home / "sessions" / "old" / "meta.json"
    meta = json.loads(path.read_text())
    for key in ("message_count", "last_message", "last_input_at"):
        del meta[key]
    # replaced whole, as an editor saves: the server may read meta.json at any moment (its
    # index catching up), and a half-written one would rightly be kept aside as corrupt
    write_atomic(path, json.dumps({**meta, "phase": "some-old-phase"}).encode())
    assert (await get(client, "/api/sessions/old"))["queen_phase"] == "independent"
    resumed = await api.create_session(queen_resume_from="old")
    assert resumed["queen_phase"] == "independent"


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"colony_id": "ghost"}, 404, "agent_not_found"),
    ({"colony_id": "notes", "agent_id": "clock"}, 422, "validation_error"),
    ({"colony_id": "notes", "agent_path": "agents/notes"}, 422, "validation_error"),
    ({"initial_phase": "dancing"}, 422, "validation_error"),
    ({"colony_id": "bad_json"}, 400, "agent_invalid"),
])
async def test_colony_id_and_phase_errors(client, body, status, code):
    resp = await client.post("/api/sessions", json=body)
    assert resp.status == status, await resp.text()
    assert (await resp.json())["code"] == code


async def test_colony_id_equal_to_agent_id_is_fine(api):
    body = await api.create_session(colony_id="notes", agent_id="notes")
    assert body["colony_id"] == "notes"


async def test_discover_has_categories_at_the_top_and_hive_entries(client, api):
    await api.create_session(session_id="s", colony_id="notes")
    found = await get(client, "/api/discover")
    assert sorted(found) == ["general", "ops", "productivity"]
    entry = found["productivity"][0]
    types = {"path": str, "name": str, "description": str, "category": str, "tags": list,
             "icon": (str, type(None)), "is_loaded": bool, "tool_count": int, "node_count": int,
             "session_count": int, "run_count": int, "last_active": (str, type(None)),
             "created_at": type(None), "workers": list, "agent_id": str}
    check_types(entry, types)
    assert entry["path"].rsplit("/", 1)[-1] == entry["agent_id"] == "notes"
    assert entry["is_loaded"] is True and entry["session_count"] == 1
    assert isinstance(entry["last_active"], str)
    worker_types = {"name": str, "task": str, "queen_name": str, "description": str,
                    "tool_count": int, "config_path": str, "spawned_at": str, "colony_id": str}
    for worker in entry["workers"]:
        check_types(worker, worker_types)
    scribe = next(w for w in entry["workers"] if w["name"] == "scribe")
    assert scribe["tool_count"] == 1 and scribe["colony_id"] == "notes"
    default_queen = client.app[keys.QUEENS].default().name  # hosts a new colony session
    assert {w["queen_name"] for w in entry["workers"]} == {default_queen} != {""}
    assert "invalid" not in found and "categories" not in found


async def test_agents_lists_every_folder_with_errors(client):
    agents = (await get(client, "/api/agents"))["agents"]
    by_id = {a["agent_id"]: a for a in agents}
    assert sorted(by_id) == sorted(["clock", "notes", "plain", "Bad Name", "bad_json",
                                    "bad_schema", "broken_tools", "no_manifest", "unknown_tool"])
    assert by_id["bad_json"]["valid"] is False and "JSON" in by_id["bad_json"]["error"]
    assert by_id["notes"]["valid"] is True and by_id["notes"]["error"] is None


async def test_cancel_queen_presence_tasks_and_workers_answer_a_live_session(client, api):
    await api.create_session(session_id="s", colony_id="notes")
    resp = await client.post("/api/sessions/s/cancel-queen")
    assert resp.status == 200 and (await resp.json())["cancelled"] is False
    for body in (None, {}, {"anything": [1, 2]}):
        resp = await client.post("/api/sessions/s/presence", json=body)
        assert resp.status == 200 and (await resp.json())["ok"] is True
    resp = await client.post("/api/sessions/s/presence")  # no body at all
    assert resp.status == 200
    tasks = await get(client, "/api/sessions/s/tasks")
    assert tasks["tasks"] == [] and tasks["session_id"] == "s"
    assert (await get(client, "/api/sessions/s/workers"))["workers"] == []


async def test_workers_lists_the_colony_workers_that_ran(client, api):
    await api.create_session(session_id="s", colony_id="notes")
    stream = await api.events("s", after_seq=0)
    await run_workers(client, "s", "count the notes")
    await until(stream, "execution_completed")
    (worker,) = (await get(client, "/api/sessions/s/workers"))["workers"]
    types = {"worker_id": str, "task": str, "status": str, "is_active": bool,
             "duration_seconds": (int, float), "started_at": float, "result": dict,
             "result_status": str, "result_summary": str, "explicit_report": type(None)}
    check_types(worker, types)
    assert worker["task"] == "count the notes" and worker["status"] == "completed"
    assert worker["is_active"] is False and worker["result"]["status"] == "completed"


async def test_panels_answer_cold_sessions_and_404_unknown_ones(client, api):
    await api.create_session(session_id="c")
    await client.delete("/api/sessions/c")
    assert (await client.post("/api/sessions/c/presence")).status == 200
    assert (await get(client, "/api/sessions/c/tasks"))["tasks"] == []
    assert (await get(client, "/api/sessions/c/workers"))["workers"] == []
    for path in ("/api/sessions/ghost/tasks", "/api/sessions/ghost/workers"):
        assert (await client.get(path)).status == 404
    assert (await client.post("/api/sessions/ghost/presence")).status == 404
    assert (await client.post("/api/sessions/c/cancel-queen")).status == 404


async def test_delete_history_answers_the_deleted_id(client, api):
    await api.create_session(session_id="gone")
    resp = await client.delete("/api/sessions/history/gone")
    assert resp.status == 200
    assert await resp.json() == {"session_id": "gone", "deleted": "gone"}


async def test_model_list_and_colony_data_tables_answer_what_the_ui_asks(client):
    models = await get(client, "/api/config/models")
    assert models == {"models": {"offline": [{
        "id": "offline-1", "label": "offline-1", "recommended": True, "max_tokens": 4096,
        "max_context_tokens": 100_000}]}}
    assert await get(client, "/api/colonies/notes/data/tables") == {"tables": []}
    missing = await get(client, "/api/colonies/nope/data/tables", status=404)
    assert missing["code"] == "agent_not_found"


async def test_a_chat_with_display_message_shows_it_and_the_queen_gets_the_message(client, api):
    await api.create_session(session_id="d")
    stream = await api.events("d")
    resp = await client.post("/api/sessions/d/chat", json={
        "message": "summarise this: <the file's text>", "display_message": "summarise this",
        "images": []})
    assert resp.status == 202
    events = await until(stream, "execution_completed")
    (received,) = [e for e in events if e["type"] == "client_input_received"]
    assert received["data"]["content"] == "summarise this"  # the user's bubble, as in Hive
    assert received["data"]["text"] == "summarise this: <the file's text>"  # the queen's
    reply = [e for e in events if e["type"] == "llm_turn_complete"][-1]
    assert "<the file's text>" in reply["data"]["message"]["content"][0]["text"]
    stream.close()


async def test_attachments_are_refused_clearly_and_nothing_is_recorded(client, api):
    await api.create_session(session_id="i")
    before = client.app[keys.SESSIONS].get("i").journal.last_seq
    resp = await client.post("/api/sessions/i/chat", json={
        "message": "look", "images": [{"type": "image_url", "image_url": {"url": "data:,"}}]})
    assert resp.status == 400 and (await resp.json())["code"] == "images_not_supported"
    assert client.app[keys.SESSIONS].get("i").journal.last_seq == before
