"""Workers through the HTTP path: tools.py tools, workspace confinement, parallel workers,
max_parallel_workers, failures, cancel/stop leaving no tasks, pinned agent versions."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import pytest

import hive_server
from hive_server import keys
from tests import agent_fixtures
from tests.agent_fixtures import (
    MEETING_TOOLS,
    NOTES_MANIFEST,
    NOTES_TOOLS,
    Meeting,
    call_line,
    run_workers,
    version_tools,
    worker_line,
    write_agent,
)
from tests.conftest import create_session
from tests.fakes import FakeAnthropic, error, text_turn, tool_turn
from tests.queen_support import chat, claude, of_type, open_stream, results_in_call_order, until
from tests.sse_reader import read_all, read_until

HIVE_CODE = str(Path(hive_server.__file__).parent)


@pytest.fixture
def agents_dir(settings) -> Path:
    root = settings.agents_dir
    write_agent(root, "notes", NOTES_MANIFEST, tools=NOTES_TOOLS)
    write_agent(root, "meeting", {"name": "Meeting"}, tools=MEETING_TOOLS)
    write_agent(root, "single", {"name": "Single", "max_parallel_workers": 1},
                tools=MEETING_TOOLS)
    write_agent(root, "versioned", {"name": "Versioned"}, tools=version_tools("v1"))
    return root


@pytest.fixture
async def client(agents_dir, client):
    return client  # started on the agents_dir written first


@pytest.fixture
def meeting() -> Meeting:
    """A fresh meeting point (bound to this test's loop) for the MEETING_TOOLS agents."""
    agent_fixtures.MEETING = Meeting()
    return agent_fixtures.MEETING


async def start(client, agent_id: str, session_id: str = "s"):
    """A session with ``agent_id`` loaded and an SSE stream from its first event."""
    await create_session(client, session_id=session_id, agent_id=agent_id)
    return await open_stream(client, session_id)


def on_stream(events: list[dict], stream_id: str, *types: str) -> list[dict]:
    return [e for e in of_type(events, *types) if e["stream_id"] == stream_id]


def run_worker_results(events: list[dict]) -> list[dict]:
    """The queen's run_worker results in the order of the calls (not of their completion)."""
    results = [e["data"] for e in on_stream(events, "queen", "tool_call_completed")
               if e["data"]["tool_name"] == "run_worker"]
    return sorted(results, key=lambda data: data["tool_use_id"])


def hive_tasks() -> set[asyncio.Task]:
    """Unfinished tasks (other than this test's) running our code or an agent's tools.py.

    A session's debounced ``meta.json`` write (``meta-flush:<id>``, started by a chat, owned
    and ended by the session) and the app's debounced write of today's spend
    (``spend-ledger``, owned by the spend ledger, flushed by a session's stop) are not counted,
    nor the app's one SSE disconnect poller (``sse-disconnects``, owned by ``SseStreams``: it
    ends within a poll of the last stream, and at shutdown): they are not work a cancel should
    end."""
    current = asyncio.current_task()
    return {task for task in asyncio.all_tasks()
            if task is not current and _runs_our_code(task)
            and not task.get_name().startswith(("meta-flush:", "spend-ledger",
                                                "sse-disconnects"))}


def _runs_our_code(task: asyncio.Task) -> bool:
    code = getattr(task.get_coro(), "cr_code", None)
    return code is not None and (code.co_filename.startswith(HIVE_CODE)
                                 or code.co_filename.endswith("tools.py"))


async def until_holding(stream, count: int) -> list[dict]:
    """Events until ``count`` workers are parked in the ``hold`` tool."""
    held = 0

    def holding(event: dict) -> bool:
        nonlocal held
        if event["type"] == "tool_call_started" and event["data"]["tool_name"] == "hold":
            held += 1
        return held == count

    return [frame["event"] for frame in await read_until(stream, holding)]


# -- tools and the workspace ---------------------------------------------------------------------

async def test_a_tools_py_tool_runs_in_a_worker_and_writes_the_workspace(client, settings):
    stream = await start(client, "notes")
    await run_workers(client, "s", call_line("append_note", text="hello"))
    events = await until(stream, "execution_completed")
    (started,) = of_type(events, "worker_started")
    worker = started["stream_id"]
    assert worker == "worker:default-1"
    assert started["data"] == {"worker_id": "default-1", "worker": "default",
                               "task": call_line("append_note", text="hello")}
    (tool_done,) = on_stream(events, worker, "tool_call_completed")
    assert tool_done["data"]["tool_name"] == "append_note"
    assert tool_done["data"]["is_error"] is False and tool_done["execution_id"] == "default-1"
    (completed,) = on_stream(events, worker, "worker_completed")
    assert completed["data"]["result"] == "Tool append_note returned: noted hello"
    (result,) = run_worker_results(events)
    assert result["is_error"] is False and "noted hello" in result["result"]
    workspace = settings.home / "sessions" / "s" / "workspace"
    assert (workspace / "notes.txt").read_text() == "hello\n"


async def test_a_named_worker_only_gets_its_own_tools(client, api, settings):
    stream = await start(client, "notes")
    task = "\n".join([call_line("append_note", text="by scribe"),
                      call_line("write_file", path="sneaky.txt", content="no")])
    await api.chat("s", worker_line(task, worker="scribe"))
    events = await until(stream, "execution_completed")
    (started,) = of_type(events, "worker_started")
    assert started["stream_id"] == "worker:scribe-1"
    calls = on_stream(events, "worker:scribe-1", "tool_call_started")
    assert [c["data"]["tool_name"] for c in calls] == ["append_note"]
    workspace = settings.home / "sessions" / "s" / "workspace"
    assert (workspace / "notes.txt").read_text() == "by scribe\n"
    assert not (workspace / "sneaky.txt").exists()


async def test_file_tools_of_a_worker_stay_inside_the_workspace(client, settings, tmp_path):
    stream = await start(client, "notes")
    absolute = tmp_path / "absolute.txt"
    task = "\n".join([
        call_line("write_file", path="../escape.txt", content="out"),
        call_line("write_file", path="sub/../../escape.txt", content="out"),
        call_line("write_file", path=str(absolute), content="out"),
        call_line("read_file", path="../meta.json"),
        call_line("write_file", path="inside.txt", content="in"),
    ])
    await run_workers(client, "s", task)
    events = await until(stream, "execution_completed")
    results = results_in_call_order(events, "worker:default-1")
    assert [r["is_error"] for r in results] == [True, True, True, True, False]
    assert "'..' is not allowed" in results[0]["result"]
    assert "absolute paths are not allowed" in results[2]["result"]
    session_dir = settings.home / "sessions" / "s"
    assert not (session_dir / "escape.txt").exists()
    assert not (settings.home / "sessions" / "escape.txt").exists()
    assert not absolute.exists()
    assert (session_dir / "workspace" / "inside.txt").read_text() == "in"
    (completed,) = of_type(events, "worker_completed")
    assert "Tool write_file failed" in completed["data"]["result"]


# -- parallel workers ----------------------------------------------------------------------------

async def test_two_workers_run_at_the_same_time_on_their_own_streams(client, meeting):
    stream = await start(client, "meeting")
    await run_workers(client, "s", call_line("meet", name="a"), call_line("meet", name="b"))
    events = await until(stream, "execution_completed")
    started = of_type(events, "worker_started")
    completed = of_type(events, "worker_completed")
    streams = {e["stream_id"] for e in started}
    assert len(started) == 2 and len(streams) == 2
    assert {e["stream_id"] for e in completed} == streams
    assert sorted(e["data"]["result"] for e in completed) == [
        "Tool meet returned: a met the others", "Tool meet returned: b met the others"]
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(seqs)
    worker_streams = [e["stream_id"] for e in events if e["stream_id"] in streams]
    switches = sum(1 for x, y in itertools.pairwise(worker_streams) if x != y)
    assert switches >= 2, "the two workers' events interleave"
    assert max(e["seq"] for e in started) < min(e["seq"] for e in completed)
    assert [r["is_error"] for r in run_worker_results(events)] == [False, False]


async def test_max_parallel_workers_one_runs_them_one_after_another(client, meeting):
    stream = await start(client, "single")
    await run_workers(client, "s", call_line("hold", name="a"), call_line("hold", name="b"))
    before = await until_holding(stream, 1)
    assert len(of_type(before, "worker_started")) == 1
    stats = await (await client.get("/api/sessions/s/stats")).json()
    assert stats["workers"] == {"started": 1, "completed": 0, "failed": 0, "running": 1}
    assert meeting.arrived == ["a"]
    meeting.gate.set()
    events = before + await until(stream, "execution_completed")
    assert meeting.arrived == ["a", "b"]
    order = [(e["type"], e["stream_id"]) for e in of_type(events, "worker_started",
                                                           "worker_completed")]
    assert order == [("worker_started", "worker:default-1"),
                     ("worker_completed", "worker:default-1"),
                     ("worker_started", "worker:default-2"),
                     ("worker_completed", "worker:default-2")]


# -- failures ------------------------------------------------------------------------------------

async def test_errors_inside_a_worker_are_results_and_unknown_workers_start_nothing(client, api):
    stream = await start(client, "notes")
    await api.chat("s", "\n".join([worker_line(call_line("explode", reason="boom")),
                                       worker_line("anything", worker="ghost")]))
    events = await until(stream, "execution_completed")
    (tool_done,) = on_stream(events, "worker:default-1", "tool_call_completed")
    assert tool_done["data"]["is_error"] is True
    assert tool_done["data"]["result"] == "ValueError: boom"
    (completed,) = of_type(events, "worker_completed")
    assert completed["data"]["result"] == "Tool explode failed: ValueError: boom"
    explode, ghost = run_worker_results(events)
    assert explode["is_error"] is False
    assert ghost["is_error"] is True and "unknown worker 'ghost'" in ghost["result"]
    assert len(of_type(events, "worker_started")) == 1


@pytest.mark.anthropic_sdk
async def test_a_failing_worker_reaches_the_queen_as_an_error_result(make_client, settings,
                                                                     agents_dir, aiohttp_server):
    fake = FakeAnthropic().script(
        tool_turn([("run_worker", {"task": "summarise the notes"})]),
        error(400, message="the worker's request was refused"),
        text_turn("The worker failed; I will tell the user."))
    server = await aiohttp_server(fake.app)
    llm = claude(f"http://127.0.0.1:{server.port}", max_retries=0)
    client = await make_client(settings, llm=llm)
    stream = await start(client, "notes")
    await chat(client, "s", "please summarise")
    events = await until(stream, "execution_completed")
    (failed,) = of_type(events, "worker_failed")
    assert failed["stream_id"] == "worker:default-1"
    assert "the worker's request was refused" in failed["data"]["error"]
    assert not of_type(events, "worker_completed")
    (result,) = run_worker_results(events)
    assert result["is_error"] is True
    assert result["result"].startswith("worker default-1 failed:")
    follow_up = fake.requests[-1]["messages"][-1]["content"][0]
    assert follow_up["type"] == "tool_result" and follow_up["is_error"] is True
    stats = await (await client.get("/api/sessions/s/stats")).json()
    assert stats["workers"] == {"started": 1, "completed": 0, "failed": 1, "running": 0}


# -- cancel and stop -----------------------------------------------------------------------------

@pytest.mark.parametrize("action", ["cancel", "unload"])
async def test_cancel_or_unload_ends_running_workers_and_leaves_no_task(client, api, meeting,
                                                                        action):
    stream = await start(client, "meeting")
    before = hive_tasks()
    await run_workers(client, "s", call_line("hold", name="a"), call_line("hold", name="b"))
    await until_holding(stream, 2)
    assert len(hive_tasks() - before) >= 3  # the execution and one task per run_worker call
    if action == "cancel":
        resp = await client.post("/api/sessions/s/cancel", json={})
        assert await resp.json() == {"session_id": "s", "cancelled": True}
    else:
        resp = await client.delete("/api/sessions/s/colony")
        assert (await resp.json())["unloaded"] is True
    events = await until(stream, "execution_cancelled")
    assert sorted(meeting.cancelled) == ["a", "b"]
    assert hive_tasks() - before == set()
    failed = of_type(events, "worker_failed")
    assert sorted(e["data"]["error"] for e in failed) == ["cancelled", "cancelled"]
    stats = await (await client.get("/api/sessions/s/stats")).json()
    assert stats["queen"]["busy"] is False
    if action == "cancel":
        assert stats["workers"] == {"started": 2, "completed": 0, "failed": 2, "running": 0}
    await api.chat("s", "still there?")
    assert of_type(await until(stream, "execution_completed"), "llm_turn_complete")


async def test_stopping_a_session_with_running_workers_leaves_no_task(client, meeting, settings):
    before = hive_tasks()
    stream = await start(client, "meeting")
    await run_workers(client, "s", call_line("hold", name="a"), call_line("hold", name="b"))
    await until_holding(stream, 2)
    resp = await client.delete("/api/sessions/s")
    assert await resp.json() == {"session_id": "s", "stopped": True}
    rest = [frame["event"] for frame in await read_all(stream)]
    assert rest[-1]["type"] == "session_stopped"
    assert sorted(e["data"]["error"] for e in of_type(rest, "worker_failed")) == [
        "cancelled", "cancelled"]
    assert sorted(meeting.cancelled) == ["a", "b"]
    assert hive_tasks() - before == set()


# -- pinned versions and broken folders ----------------------------------------------------------

async def worker_says(client, stream, task: str) -> str:
    await run_workers(client, "s", task)
    events = await until(stream, "execution_completed")
    (completed,) = of_type(events, "worker_completed")
    return completed["data"]["result"]


async def test_a_session_keeps_the_agent_version_it_loaded(client, agents_dir):
    stream = await start(client, "versioned")
    assert await worker_says(client, stream, call_line("version")) == \
        "Tool version returned: v1"
    loaded = (await (await client.get("/api/sessions/s/colonies")).json())["colonies"][0]
    (agents_dir / "versioned" / "tools.py").write_text(version_tools("v2"))
    await client.app[keys.CATALOG].reload()
    found = await (await client.get("/api/discover")).json()
    (card,) = [c for c in found["general"] if c["agent_id"] == "versioned"]
    assert card["version"] != loaded["version"] and card["is_loaded"] is True
    assert await worker_says(client, stream, call_line("version")) == \
        "Tool version returned: v1"
    again = (await (await client.get("/api/sessions/s/colonies")).json())["colonies"][0]
    assert again["version"] == loaded["version"]
    assert (await client.delete("/api/sessions/s/colony")).status == 200
    assert (await client.post("/api/sessions/s/colony", json={"agent_id": "versioned"})).status \
        == 201
    assert await worker_says(client, stream, call_line("version")) == \
        "Tool version returned: v2"


async def test_a_broken_folder_never_breaks_a_running_colony(client, agents_dir, settings):
    stream = await start(client, "notes")
    (agents_dir / "notes" / "agent.json").write_text("{broken")
    (agents_dir / "notes" / "tools.py").write_text("def broken(:\n")
    await client.app[keys.CATALOG].reload()
    assert client.app[keys.CATALOG].get("notes").error
    result = await worker_says(client, stream, call_line("append_note", text="still works"))
    assert result == "Tool append_note returned: noted still works"
    workspace = settings.home / "sessions" / "s" / "workspace"
    assert (workspace / "notes.txt").read_text() == "still works\n"
    colonies = (await (await client.get("/api/sessions/s/colonies")).json())["colonies"]
    assert [c["agent_id"] for c in colonies] == ["notes"]
