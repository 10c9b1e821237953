"""Colony and agent routes on real agent folders: discover, create with an agent, load/unload,
delete, metadata, broken folders, resume, stats and colonies."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from hive_server import keys
from tests.agent_fixtures import (
    INVALID,
    NOTES_MANIFEST,
    NOTES_TOOLS,
    VALID,
    agents_tree,
    call_line,
    read_json,
    run_workers,
    write_agent,
)
from tests.queen_support import of_type, open_stream, read_log, until


@pytest.fixture
def agents_dir(settings) -> Path:
    return agents_tree(settings.agents_dir)


@pytest.fixture
async def client(agents_dir, client):
    return client  # started on the agents_dir written first


async def discover(client) -> dict:
    resp = await client.get("/api/discover")
    assert resp.status == 200
    return await resp.json()


def cards(found: dict) -> dict[str, dict]:
    """Discover's entries by agent id (the categories are the top-level keys)."""
    return {card["agent_id"]: card for group in found.values() for card in group}


async def invalid_agents(client) -> dict[str, dict]:
    """The folders ``GET /api/agents`` lists as invalid, by id."""
    resp = await client.get("/api/agents")
    assert resp.status == 200
    return {card["agent_id"]: card for card in (await resp.json())["agents"]
            if not card["valid"]}


def meta_of(settings, session_id: str) -> dict:
    return read_json(settings.home / "sessions" / session_id / "meta.json")


# -- discovery and hot reload --------------------------------------------------------------------

async def test_discover_groups_agents_by_category_and_lists_invalid_folders(client):
    found = await discover(client)
    assert {cat: [c["agent_id"] for c in group] for cat, group in found.items()} \
        == {"general": ["plain"], "ops": ["clock"], "productivity": ["notes"]}
    notes = cards(found)["notes"]
    assert notes["is_loaded"] is False and notes["valid"] is True and notes["error"] is None
    # tool_count: what its workers can call; the default worker names none, so it gets all six
    assert notes["tool_count"] == 6 and notes["tools"] == ["append_note", "explode"]
    assert notes["worker_count"] == 2 and notes["worker_names"] == ["default", "scribe"]
    assert [w["name"] for w in notes["workers"]] == ["default", "scribe"]
    assert notes["has_readme"] is True and notes["tags"] == ["notes"]
    assert notes["path"].rsplit("/", 1)[-1] == "notes"
    assert cards(found)["clock"]["tool_count"] == 1
    invalid = await invalid_agents(client)
    assert sorted(invalid) == INVALID
    assert all(card["error"] and card["valid"] is False for card in invalid.values())
    assert "not valid JSON" in invalid["bad_json"]["error"]
    assert "syntax error" in invalid["broken_tools"]["error"]
    assert "does_not_exist" in invalid["unknown_tool"]["error"]


async def test_discover_marks_agents_loaded_in_a_live_session(client, api):
    await api.create_session(session_id="s", agent_id="notes")
    loaded = {aid: card["is_loaded"] for aid, card in cards(await discover(client)).items()}
    assert loaded == {"clock": False, "notes": True, "plain": False}
    await client.delete("/api/sessions/s/colony")
    assert cards(await discover(client))["notes"]["is_loaded"] is False


async def test_reload_shows_added_changed_and_removed_agents(client, agents_dir):
    before = cards(await discover(client))
    write_agent(agents_dir, "fresh", {"name": "Fresh", "category": "ops"})
    write_agent(agents_dir, "plain", {"name": "Plain 2", "description": "changed"})
    shutil.rmtree(agents_dir / "clock")
    (agents_dir / "junk.md").write_text("more junk")
    await client.app[keys.CATALOG].reload()
    after = cards(await discover(client))
    assert sorted(after) == ["fresh", "notes", "plain"]
    assert after["plain"]["name"] == "Plain 2"
    assert after["plain"]["version"] != before["plain"]["version"]
    assert after["notes"]["version"] == before["notes"]["version"]


async def test_a_broken_loaded_agent_never_breaks_discovery(client, api, agents_dir):
    await api.create_session(session_id="s", agent_id="notes")
    (agents_dir / "notes" / "agent.json").write_text("{broken")
    (agents_dir / "notes" / "tools.py").write_text("def (:\n")
    await client.app[keys.CATALOG].reload()
    found = await discover(client)
    invalid = await invalid_agents(client)
    assert "not valid JSON" in invalid["notes"]["error"]
    assert invalid["notes"]["is_loaded"] is True  # the session still runs its loaded version
    assert sorted(cards(found)) == ["clock", "plain"]
    resp = await client.post("/api/sessions", json={"session_id": "t", "agent_id": "notes"})
    assert resp.status == 400 and (await resp.json())["code"] == "agent_invalid"
    live = await (await client.get("/api/sessions/s")).json()
    assert live["colony_id"] == "notes" and live["has_worker"] is True


# -- creating a session with an agent ------------------------------------------------------------

async def test_create_session_with_agent_id_loads_the_colony(api, settings, agents_dir):
    body = await api.create_session(session_id="s", agent_id="notes")
    assert body["colony_id"] == "notes" and body["colony_name"] == "Notes"
    assert body["has_worker"] is True and body["node_count"] == 2
    assert body["agent_path"] == str(agents_dir / "notes")
    assert body["goal"] == "Remember things."
    meta = meta_of(settings, "s")
    assert meta["agent_id"] == "notes" and meta["agent_path"] == str(agents_dir / "notes")
    events = read_log(settings.home, "s")
    assert [e["type"] for e in events] == ["session_started", "worker_colony_loaded"]
    loaded = events[1]["data"]
    assert loaded["agent_id"] == "notes" and loaded["workers"] == ["default", "scribe"]
    assert {"append_note", "explode", "write_file"} <= set(loaded["tools"])


@pytest.mark.parametrize("path", ["agents/notes", "notes", "../agents/notes", "ABSOLUTE"])
async def test_create_session_with_agent_path_inside_the_agents_dir(api, agents_dir, path):
    given = str(agents_dir / "notes") if path == "ABSOLUTE" else path
    body = await api.create_session(agent_path=given)
    assert body["colony_id"] == "notes"


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"agent_id": "ghost"}, 404, "agent_not_found"),
    ({"agent_path": "agents/ghost"}, 404, "agent_not_found"),
    ({"agent_id": "bad_json"}, 400, "agent_invalid"),
    ({"agent_id": "unknown_tool"}, 400, "agent_invalid"),
    ({"agent_path": "OUTSIDE"}, 400, "agent_path_outside"),
    ({"agent_path": "../outside"}, 400, "agent_path_outside"),
    ({"agent_path": "/etc"}, 400, "agent_path_outside"),
    ({"agent_path": "agents/notes/sub"}, 400, "agent_path_outside"),
    ({"agent_id": "notes", "agent_path": "agents/notes"}, 400, "agent_ambiguous"),
])
async def test_create_session_refuses_bad_agents_and_leaves_nothing(client, settings, tmp_path,
                                                                    body, status, code):
    write_agent(tmp_path, "outside", NOTES_MANIFEST, tools=NOTES_TOOLS)
    if body.get("agent_path") == "OUTSIDE":
        body = {"agent_path": str(tmp_path / "outside")}
    resp = await client.post("/api/sessions", json={"session_id": "doomed", **body})
    assert resp.status == status
    assert (await resp.json())["code"] == code
    assert not (settings.home / "sessions" / "doomed").exists()
    assert (await (await client.get("/api/sessions")).json())["sessions"] == []


# -- load / unload -------------------------------------------------------------------------------

async def test_load_and_unload_stream_events_and_update_meta(client, api, settings, agents_dir):
    await api.create_session(session_id="s")
    stream = await api.events("s", after_seq=1)
    resp = await client.post("/api/sessions/s/colony", json={"agent_path": "agents/notes"})
    assert resp.status == 201
    colony = (await resp.json())["colony"]
    assert colony["agent_id"] == "notes" and colony["workers"] == ["default", "scribe"]
    loaded = (await until(stream, "worker_colony_loaded"))[-1]
    assert loaded["data"]["agent_id"] == "notes"
    assert loaded["data"]["version"] == colony["version"]
    assert meta_of(settings, "s")["agent_id"] == "notes"
    live = await (await client.get("/api/sessions/s")).json()
    assert live["colony_id"] == "notes" and live["agent_path"] == str(agents_dir / "notes")

    resp = await client.delete("/api/sessions/s/colony")
    assert await resp.json() == {"session_id": "s", "agent_id": "notes", "unloaded": True}
    unloaded = (await until(stream, "worker_colony_unloaded"))[-1]
    assert unloaded["data"] == {"agent_id": "notes", "reason": "request", "error": None}
    meta = meta_of(settings, "s")
    assert meta["agent_id"] is None and meta["agent_path"] is None
    live = await (await client.get("/api/sessions/s")).json()
    assert live["colony_id"] is None and live["has_worker"] is False
    stream.close()


async def test_load_and_unload_error_codes(client, api, settings):
    async def status_code(method: str, path: str, **body) -> tuple[int, str]:
        resp = await client.request(method, path, json=body)
        return resp.status, (await resp.json()).get("code", "")

    assert await status_code("POST", "/api/sessions/nope/colony", agent_id="notes") == (
        404, "session_not_live")
    assert await status_code("DELETE", "/api/sessions/nope/colony") == (404, "session_not_live")
    await api.create_session(session_id="s")
    assert await status_code("POST", "/api/sessions/s/colony", agent_id="ghost") == (
        404, "agent_not_found")
    assert await status_code("POST", "/api/sessions/s/colony", agent_id="bad_schema") == (
        400, "agent_invalid")
    assert await status_code("POST", "/api/sessions/s/colony") == (400, "agent_required")
    assert (await status_code("POST", "/api/sessions/s/colony", agent="notes"))[0] == 422
    assert await status_code("DELETE", "/api/sessions/s/colony") == (409, "no_colony_loaded")
    assert meta_of(settings, "s")["agent_id"] is None
    assert await status_code("POST", "/api/sessions/s/colony", agent_id="notes") == (201, "")
    assert await status_code("POST", "/api/sessions/s/colony", agent_id="clock") == (
        409, "colony_already_loaded")
    assert meta_of(settings, "s")["agent_id"] == "notes"
    events = of_type(read_log(settings.home, "s"), "worker_colony_loaded",
                     "worker_colony_unloaded")
    assert [e["data"]["agent_id"] for e in events] == ["notes"]


# -- deleting agents and patching metadata -------------------------------------------------------

async def test_delete_agent_stops_its_sessions_and_removes_the_folder(client, api, agents_dir):
    await api.create_session(session_id="with", agent_id="notes")
    await api.create_session(session_id="other", agent_id="clock")
    await api.create_session(session_id="bare")
    stream = await api.events("with", after_seq=2)
    resp = await client.delete("/api/agents", json={"agent_path": "agents/notes"})
    assert resp.status == 200
    assert await resp.json() == {"agent_id": "notes", "deleted": "notes", "purged": True,
                                 "stopped_sessions": ["with"]}
    stopped = await until(stream, "session_stopped")
    assert stopped[-1]["data"]["reason"] == "agent_deleted"
    assert not (agents_dir / "notes").exists()
    live = await (await client.get("/api/sessions")).json()
    assert sorted(s["session_id"] for s in live["sessions"]) == ["bare", "other"]
    cold = await (await client.get("/api/sessions/with")).json()
    assert cold["cold"] is True and cold["status"] == "stopped"
    assert "notes" not in cards(await discover(client))
    assert (await client.delete("/api/agents", json={"agent_id": "notes"})).status == 404


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"agent_path": "OUTSIDE"}, 400, "agent_path_outside"),
    ({"agent_path": "../outside"}, 400, "agent_path_outside"),
    ({"agent_path": "agents/../../outside"}, 400, "agent_path_outside"),
    ({"agent_id": "../outside"}, 404, "agent_not_found"),
    ({"agent_id": "ghost"}, 404, "agent_not_found"),
    ({}, 400, "agent_required"),
])
async def test_delete_agent_never_touches_anything_outside(client, tmp_path, agents_dir,
                                                           body, status, code):
    outside = write_agent(tmp_path, "outside", {"name": "Outside"})
    if body.get("agent_path") == "OUTSIDE":
        body = {"agent_path": str(outside)}
    resp = await client.delete("/api/agents", json=body)
    assert resp.status == status
    assert (await resp.json())["code"] == code
    assert (outside / "agent.json").is_file()
    assert sorted(p.name for p in agents_dir.iterdir() if p.is_dir()) == sorted(
        [*VALID, *INVALID, ".hidden", "__pycache__"])


async def test_patch_metadata_updates_agent_json(client, api, agents_dir):
    await api.create_session(session_id="s", agent_id="notes")
    resp = await client.patch("/api/agents/metadata", json={
        "agent_id": "notes", "description": "Keeps better notes.", "tags": ["a", "b"],
        "category": "writing", "icon": "pen"})
    assert resp.status == 200
    card = await resp.json()
    assert card["description"] == "Keeps better notes." and card["category"] == "writing"
    assert card["is_loaded"] is True
    on_disk = read_json(agents_dir / "notes" / "agent.json")
    assert on_disk == {**NOTES_MANIFEST, "description": "Keeps better notes.",
                       "tags": ["a", "b"], "category": "writing", "icon": "pen"}
    found = await discover(client)
    assert [c["agent_id"] for c in found["writing"]] == ["notes"]
    resp = await client.patch("/api/agents/metadata",
                              json={"agent_path": "agents/plain", "name": "Renamed"})
    assert resp.status == 200
    assert read_json(agents_dir / "plain" / "agent.json")["name"] == "Renamed"


@pytest.mark.parametrize(("body", "status"), [
    ({"name": ""}, 422),
    ({"name": None}, 422),
    ({"name": "x" * 201}, 422),
    ({"tags": "not-a-list"}, 422),
    ({"tags": [1, 2]}, 422),
    ({"tools": ["write_file"]}, 422),
    ({"max_parallel_workers": 2}, 422),
    ({}, 400),
])
async def test_patch_metadata_is_validated_before_anything_is_written(client, agents_dir,
                                                                      body, status):
    before = (agents_dir / "notes" / "agent.json").read_bytes()
    resp = await client.patch("/api/agents/metadata", json={"agent_id": "notes", **body})
    assert resp.status == status, await resp.text()
    code = (await resp.json())["code"]
    assert code == ("validation_error" if status == 422 else "metadata_empty")
    assert (agents_dir / "notes" / "agent.json").read_bytes() == before


async def test_patch_metadata_of_unknown_or_outside_agents(client, tmp_path):
    outside = write_agent(tmp_path, "outside", {"name": "Outside"})
    resp = await client.patch("/api/agents/metadata", json={"agent_id": "ghost", "name": "G"})
    assert resp.status == 404 and (await resp.json())["code"] == "agent_not_found"
    resp = await client.patch("/api/agents/metadata",
                              json={"agent_path": str(outside), "name": "Hijacked"})
    assert resp.status == 400 and (await resp.json())["code"] == "agent_path_outside"
    assert read_json(outside / "agent.json") == {"name": "Outside"}


# -- resume --------------------------------------------------------------------------------------

async def test_a_restarted_session_comes_back_with_its_colony(make_client, client, api, settings):
    await api.create_session(session_id="s", agent_id="notes")
    await client.close()
    again = await make_client(settings)
    live = await (await again.get("/api/sessions/s")).json()
    assert live["colony_id"] == "notes" and live["has_worker"] is True
    types = [e["type"] for e in read_log(settings.home, "s")]
    assert types[-2:] == ["session_started", "worker_colony_loaded"]
    stream = await open_stream(again, "s", after_seq=len(types))
    await run_workers(again, "s", call_line("append_note", text="after restart"))
    done = (await until(stream, "worker_completed"))[-1]
    assert "noted after restart" in done["data"]["result"]
    workspace = settings.home / "sessions" / "s" / "workspace"
    assert (workspace / "notes.txt").read_text() == "after restart\n"
    stream.close()


@pytest.mark.parametrize("damage", ["deleted", "broken"])
async def test_a_restarted_session_whose_agent_is_gone_comes_back_without_it(
        make_client, client, api, settings, agents_dir, damage):
    await api.create_session(session_id="s", agent_id="notes")
    await client.close()
    if damage == "deleted":
        shutil.rmtree(agents_dir / "notes")
    else:
        (agents_dir / "notes" / "agent.json").write_text('{"name": "Notes", "tools": ["nope"]}')
    again = await make_client(settings)
    live = await (await again.get("/api/sessions/s")).json()
    assert live["colony_id"] is None and live["has_worker"] is False
    events = read_log(settings.home, "s")
    assert [e["type"] for e in events][-2:] == ["session_started", "worker_colony_unloaded"]
    why = events[-1]["data"]
    assert why["agent_id"] == "notes" and why["reason"] == "agent_unavailable" and why["error"]
    assert meta_of(settings, "s")["agent_id"] is None


# -- stats and colonies --------------------------------------------------------------------------

async def test_stats_and_colonies_shapes(client, api):
    for path in ("/api/sessions/nope/stats", "/api/sessions/nope/colonies"):
        assert (await client.get(path)).status == 404
    await api.create_session(session_id="s")
    colonies = await (await client.get("/api/sessions/s/colonies")).json()
    assert colonies == {"session_id": "s", "colonies": []}
    stats = await (await client.get("/api/sessions/s/stats")).json()
    assert set(stats) == {"session_id", "live", "last_seq", "uptime_seconds", "queen",
                          "workers", "subscribers", "dropped_subscribers", "colony_id", "usage",
                          "budget"}
    assert stats["workers"] == {"started": 0, "completed": 0, "failed": 0, "running": 0}
    assert stats["colony_id"] is None

    await client.post("/api/sessions/s/colony", json={"agent_id": "notes"})
    stream = await api.events("s", after_seq=2)
    await run_workers(client, "s", call_line("append_note", text="one"))
    await until(stream, "execution_completed")
    stats = await (await client.get("/api/sessions/s/stats")).json()
    assert stats["workers"] == {"started": 1, "completed": 1, "failed": 0, "running": 0}
    assert stats["colony_id"] == "notes" and stats["queen"]["executions"] == 1
    assert stats["subscribers"] == 1 and stats["last_seq"] > 2
    (colony,) = (await (await client.get("/api/sessions/s/colonies")).json())["colonies"]
    assert set(colony) == {"agent_id", "name", "agent_path", "description", "goal", "version",
                           "loaded_at", "workers", "tools", "max_parallel_workers",
                           "workers_running"}
    assert colony["agent_id"] == "notes" and colony["max_parallel_workers"] == 4
    assert colony["workers"] == ["default", "scribe"] and colony["workers_running"] == 0
    assert colony["tools"] == ["append_note", "explode", "get_time", "list_files", "read_file",
                               "write_file"]
    stream.close()
