"""Edges of the colony routes and of workers: what discover counts, ambiguous or aliased agent
paths on destructive routes, run_worker arguments, a worker cancelled while it waits for a slot,
and sync tools.py tools that block without starving the server."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import pytest

from hive_server import keys
from tests import agent_fixtures
from tests.agent_fixtures import (
    MEETING_TOOLS,
    NOTES_MANIFEST,
    NOTES_TOOLS,
    Meeting,
    call_line,
    read_json,
    run_workers,
    worker_line,
    write_agent,
)
from tests.queen_support import of_type, read_log, until
from tests.test_workers import hive_tasks, run_worker_results, until_holding

BLOCKED_CALLS = 40  # more than any default executor holds (at most 32 threads)

BLOCKING_TOOLS = '''\
from tests import agent_fixtures


def block(n: int) -> str:
    """Block this thread until the test opens the gate."""
    agent_fixtures.BLOCKING.wait(timeout=30)
    return f"unblocked {n}"
'''

EXITING_TOOLS = '''\
import sys


def leave(code: int) -> str:
    """Exit the process, as a script would."""
    sys.exit(code)


async def leave_async() -> str:
    """Exit from a coroutine."""
    raise SystemExit("bye")
'''

EXIT_ON_IMPORT = 'import sys\n\nsys.exit("this agent needs the requests package")\n'


@pytest.fixture
def agents_dir(settings) -> Path:
    root = settings.agents_dir
    write_agent(root, "notes", NOTES_MANIFEST, tools=NOTES_TOOLS)
    write_agent(root, "plain", {"name": "Plain"})
    write_agent(root, "picky", {"name": "Picky", "tools": ["get_time"],
                                "workers": {"w": {"tools": ["append_note", "read_file"]}}},
                tools=NOTES_TOOLS)
    write_agent(root, "single", {"name": "Single", "max_parallel_workers": 1},
                tools=MEETING_TOOLS)
    write_agent(root, "blocker", {"name": "Blocker"}, tools=BLOCKING_TOOLS)
    write_agent(root, "exiting", {"name": "Exiting"}, tools=EXITING_TOOLS)
    write_agent(root, "exits_on_import", {"name": "Exits on import"}, tools=EXIT_ON_IMPORT)
    return root


@pytest.fixture
async def client(agents_dir, client):
    return client  # started on the agents_dir written first


async def discovered(client) -> dict[str, dict]:
    found = await (await client.get("/api/discover")).json()
    return {card["agent_id"]: card for group in found.values() for card in group}


# -- discover ------------------------------------------------------------------------------------

async def test_tool_count_is_what_the_workers_really_get(client, api):
    cards = await discovered(client)
    # no tools list: the default worker gets the four built-ins (and every tools.py tool)
    assert cards["plain"]["tool_count"] == 4
    assert cards["notes"]["tool_count"] == 6
    # get_time for the default worker, append_note and read_file for worker w; not explode
    assert cards["picky"]["tool_count"] == 3
    await api.create_session(session_id="s", agent_id="plain")
    (colony,) = (await (await client.get("/api/sessions/s/colonies")).json())["colonies"]
    assert len(colony["tools"]) == cards["plain"]["tool_count"]


async def test_worker_count_is_the_workers_a_colony_really_has(client, api, agents_dir):
    write_agent(agents_dir, "own_default", {"name": "Own default", "workers": {
        "default": {"system_prompt": "You are the default worker."}, "extra": {}}})
    await client.app[keys.CATALOG].reload()
    card = (await discovered(client))["own_default"]
    assert card["worker_count"] == 2 and (await discovered(client))["notes"]["worker_count"] == 2
    live = await api.create_session(session_id="s", agent_id="own_default")
    assert live["node_count"] == card["worker_count"]


# -- destructive routes name exactly one folder --------------------------------------------------

async def test_deleting_a_symlink_alias_never_deletes_the_folder_it_points_to(client, agents_dir):
    (agents_dir / "alias").symlink_to(agents_dir / "notes", target_is_directory=True)
    await client.app[keys.CATALOG].reload()
    for body in ({"agent_path": "agents/alias"}, {"agent_path": str(agents_dir / "alias")},
                 {"agent_id": "alias"}):
        resp = await client.delete("/api/agents", json=body)
        assert resp.status == 400, await resp.text()
        assert (await resp.json())["code"] == "agent_path_outside"
    assert (agents_dir / "notes" / "agent.json").is_file()
    resp = await client.patch("/api/agents/metadata",
                              json={"agent_path": "agents/alias", "name": "Hijacked"})
    assert resp.status == 400
    assert read_json(agents_dir / "notes" / "agent.json")["name"] == "Notes"
    resp = await client.post("/api/sessions", json={"agent_path": "agents/alias"})
    assert resp.status == 400 and (await resp.json())["code"] == "agent_path_outside"
    resp = await client.post("/api/sessions", json={"agent_id": "alias"})
    assert resp.status == 400 and (await resp.json())["code"] == "agent_invalid"


@pytest.mark.parametrize(("method", "path", "extra"), [
    ("DELETE", "/api/agents", {}),
    ("PATCH", "/api/agents/metadata", {"name": "Renamed"}),
])
async def test_an_agent_id_and_a_different_agent_path_are_refused(client, agents_dir,
                                                                  method, path, extra):
    body = {"agent_id": "notes", "agent_path": "agents/plain", **extra}
    resp = await client.request(method, path, json=body)
    assert resp.status == 400
    assert (await resp.json())["code"] == "agent_ambiguous"
    assert read_json(agents_dir / "notes" / "agent.json")["name"] == "Notes"
    assert read_json(agents_dir / "plain" / "agent.json")["name"] == "Plain"


async def test_an_empty_agent_path_is_refused_not_a_session_without_its_colony(client,
                                                                               settings):
    resp = await client.post("/api/sessions", json={"session_id": "e", "agent_path": ""})
    assert resp.status == 400, await resp.text()
    assert (await resp.json())["code"] == "agent_path_invalid"
    assert not (settings.home / "sessions" / "e").exists()


# -- run_worker arguments ------------------------------------------------------------------------

@pytest.mark.parametrize(("args", "expected"), [
    ({"task": "hello", "wrker": "scribe"}, "wrker: Extra inputs are not permitted"),
    ({"task": 42}, "task: Input should be a valid string"),
    ({"worker": "scribe"}, "task: Field required"),
    ({"task": "   "}, "run_worker needs a non-empty task"),
])
async def test_bad_run_worker_arguments_are_error_results_and_start_nothing(api, args,
                                                                           expected):
    await api.create_session(session_id="s", agent_id="notes")
    stream = await api.events("s")
    await api.chat("s", call_line("run_worker", **args))
    events = await until(stream, "execution_completed")
    (result,) = run_worker_results(events)
    assert result["is_error"] is True and expected in result["result"]
    assert not of_type(events, "worker_started", "worker_completed", "worker_failed")


async def test_run_worker_accepts_a_null_worker_as_the_default(api):
    await api.create_session(session_id="s", agent_id="notes")
    stream = await api.events("s")
    await api.chat("s", call_line("run_worker", task="hi", worker=None))
    events = await until(stream, "execution_completed")
    (started,) = of_type(events, "worker_started")
    assert started["data"]["worker"] == "default"


# -- cancelling a worker that waits for a slot ---------------------------------------------------

async def test_cancel_ends_a_worker_waiting_for_a_slot_and_frees_the_slot(client, api):
    agent_fixtures.MEETING = meeting = Meeting()
    await api.create_session(session_id="s", agent_id="single")
    stream = await api.events("s")
    before = hive_tasks()
    await run_workers(client, "s", call_line("hold", name="a"), call_line("hold", name="b"))
    events = await until_holding(stream, 1)  # a holds the only slot, b waits for it
    assert (await (await client.post("/api/sessions/s/cancel", json={})).json())["cancelled"]
    events += await until(stream, "execution_cancelled")
    assert meeting.cancelled == ["a"] and meeting.arrived == ["a"]
    assert [e["data"]["worker_id"] for e in of_type(events, "worker_started")] == ["default-1"]
    assert hive_tasks() - before == set()
    meeting.gate.set()
    await api.chat("s", "go on")  # the offline model first answers the cancelled results
    await until(stream, "execution_completed")
    await api.chat("s", worker_line(call_line("hold", name="c")))
    events = await until(stream, "execution_completed")
    (completed,) = of_type(events, "worker_completed")
    assert completed["data"]["result"] == "Tool hold returned: c passed the gate"
    stats = await (await client.get("/api/sessions/s/stats")).json()
    assert stats["workers"] == {"started": 2, "completed": 1, "failed": 1, "running": 0}


# -- blocking sync tools -------------------------------------------------------------------------

async def test_blocking_sync_tools_never_starve_the_server(client, api):
    agent_fixtures.BLOCKING = gate = threading.Event()
    try:
        await api.create_session(session_id="s", agent_id="blocker")
        stream = await api.events("s")
        task = "\n".join(call_line("block", n=n) for n in range(BLOCKED_CALLS))
        await run_workers(client, "s", task)
        started = 0
        while started < BLOCKED_CALLS:
            events = await until(stream, "tool_call_started")
            started += len(of_type(events, "tool_call_started"))
        # Every sync call is parked in a thread by now. A starved server would answer only
        # once the tools give up (after 30 s), so the bound stays well below that.
        async with asyncio.timeout(20):
            await api.create_session(session_id="other")
            other = await api.events("other")
            await api.chat("other", "still answering?")
            await until(other, "execution_completed", timeout=20)
        stats = await (await client.get("/api/sessions/s/stats")).json()
        assert stats["workers"]["running"] == 1, "the blocked calls were still blocked"
        gate.set()
        events = await until(stream, "execution_completed", timeout=10)
        (completed,) = of_type(events, "worker_completed")
        assert completed["data"]["result"].count("returned: unblocked") == BLOCKED_CALLS
    finally:
        gate.set()


# -- agent code that calls sys.exit ----------------------------------------------------------------

async def test_a_tools_py_that_exits_on_import_is_listed_with_its_error(client):
    found = await (await client.get("/api/agents")).json()
    invalid = {card["agent_id"]: card["error"] for card in found["agents"] if not card["valid"]}
    assert invalid["exits_on_import"] == (
        "tools.py failed to import: SystemExit: this agent needs the requests package")
    assert "plain" in await discovered(client)


async def test_a_tool_that_exits_is_an_error_result_and_the_server_lives_on(client, api):
    await api.create_session(session_id="s", agent_id="exiting")
    stream = await api.events("s")
    await run_workers(client, "s", call_line("leave", code=3) + "\n" + call_line("leave_async"))
    events = await until(stream, "execution_completed")
    results = [e["data"] for e in of_type(events, "tool_call_completed")
               if e["stream_id"].startswith("worker:")]
    assert sorted((r["is_error"], r["result"]) for r in results) == [
        (True, "SystemExit: 3"), (True, "SystemExit: bye")]
    assert (await client.get("/api/health")).status == 200


# -- load and unload at the same time ------------------------------------------------------------

async def test_an_unload_during_a_load_leaves_no_colony_and_no_folder_trigger(client, api,
                                                                              settings):
    folder = write_agent(settings.agents_dir, "ticker", {"name": "Ticker"})
    (folder / "triggers.json").write_text(json.dumps([{
        "id": "tick", "name": "Tick", "trigger_type": "timer",
        "trigger_config": {"interval_minutes": 5}, "task": "tick", "enabled": True}]))
    await client.app[keys.CATALOG].reload()
    await api.create_session(session_id="s")
    manager = client.app[keys.SESSIONS]
    load = asyncio.create_task(manager.load_colony("s", "ticker", None))
    await asyncio.sleep(0)  # the load has begun: it now waits for its meta write
    unloaded = await manager.unload_colony("s")
    await load
    assert unloaded == "ticker"
    live = await (await client.get("/api/sessions/s")).json()
    assert live["colony_id"] is None
    assert (await (await client.get("/api/sessions/s/triggers")).json())["triggers"] == []
    colony_events = of_type(read_log(settings.home, "s"), "worker_colony_loaded",
                            "worker_colony_unloaded")
    assert [e["type"] for e in colony_events] == ["worker_colony_loaded",
                                                  "worker_colony_unloaded"]
    assert read_json(settings.home / "sessions" / "s" / "meta.json")["agent_id"] is None
