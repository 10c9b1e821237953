"""kill -9 in the middle of work, with real server processes: after the restart the log says
the turn ended, a pending question is pending again, queued inputs are handled in order, and
the next message gets an answer to itself (the offline model, or the fake Messages API, shows
what the model was sent).

Each kill lands once the moment is both streamed and stored in ``events.jsonl`` (events are
streamed before they are written, so the test waits, bounded, for the line).
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hive_server.services.runtime.open_turn import RESTART_NOTE, RESTART_RESULT
from tests.agent_fixtures import write_agent
from tests.fakes import Block, FakeAnthropic, Turn, text_turn
from tests.server_process import ServerProcess
from tests.sse_reader import read_frame, read_until

pytestmark = pytest.mark.slow  # every test here starts a process

TIMEOUT = 20.0
SLOW_TOOLS = '''import time


def wait_here() -> str:
    """Waits a minute (the test kills the server meanwhile)."""
    time.sleep(60)
    return "waited"
'''
WORKER_CALL = 'call:run_worker {"task": "call:wait_here {}"}'
Event = dict[str, Any]


class Server:
    """One server process on ``tmp_path`` and a client of its API."""

    def __init__(self, tmp_path: Path, env: dict[str, str] | None = None):
        self.process = ServerProcess(tmp_path, env=env)
        self.http: aiohttp.ClientSession | None = None

    async def start(self) -> Server:
        await self.process.start()
        self.http = aiohttp.ClientSession(headers=self.process.headers)
        return self

    async def post(self, path: str, body: dict[str, Any], status: int) -> dict[str, Any]:
        assert self.http is not None
        async with self.http.post(self.process.url + path, json=body) as resp:
            assert resp.status == status, await resp.text()
            return await resp.json()

    async def stream(self, after_seq: int | None = None) -> aiohttp.ClientResponse:
        assert self.http is not None
        query = "" if after_seq is None else f"?after_seq={after_seq}"
        resp = await self.http.get(self.process.url + "api/sessions/s/events" + query)
        assert resp.status == 200
        return resp

    @property
    def log(self) -> Path:
        return self.process.home / "sessions" / "s" / "events.jsonl"

    async def kill_when_stored(self, event: Event) -> None:
        """SIGKILL once ``event`` is in the log."""
        deadline = time.monotonic() + TIMEOUT
        while event["seq"] not in {e["seq"] for e in read_log(self.log)}:
            assert time.monotonic() < deadline, f"event {event['seq']} never stored"
            await asyncio.sleep(0.01)
        assert self.process.proc is not None
        self.process.proc.kill()
        assert await self.process.proc.wait() == -signal.SIGKILL
        await self.close()

    async def close(self) -> None:
        if self.http is not None:
            await self.http.close()
        await self.process.kill_quietly()


def read_log(path: Path) -> list[Event]:
    events = []
    for line in path.read_bytes().split(b"\n")[:-1]:
        try:
            events.append(json.loads(line))
        except ValueError:
            continue
    return events


async def until(stream: aiohttp.ClientResponse, kind: str, **data: Any) -> list[Event]:
    frames = await read_until(stream, lambda e: e["type"] == kind and all(
        e["data"].get(k) == v for k, v in data.items()), TIMEOUT)
    return [frame["event"] for frame in frames]


def of_type(events: list[Event], *kinds: str) -> list[Event]:
    return [e for e in events if e["type"] in kinds]


def replies(events: list[Event]) -> list[str]:
    return ["".join(b.get("text", "") for b in e["data"]["message"]["content"])
            for e in of_type(events, "llm_turn_complete") if e["stream_id"] == "queen"]


@pytest.fixture
async def servers(tmp_path):
    started: list[Server] = []

    async def start(env: dict[str, str] | None = None) -> Server:
        server = Server(tmp_path, env)
        started.append(server)
        return await server.start()

    write_agent(tmp_path / "agents", "slow", {"name": "Slow"}, tools=SLOW_TOOLS)
    yield start
    for server in started:
        await server.close()


async def restart(servers, env: dict[str, str] | None = None) -> tuple[Server, Any, int]:
    """A new server on the same home; its stream from the seq the crash left."""
    server = await servers(env)
    before = max(e["seq"] for e in read_log(server.log) if e["type"] == "session_started")
    stream = await server.stream(after_seq=before)
    return server, stream, before


async def test_kill_during_a_workers_tool_call(servers):
    server = await servers()
    await server.post("api/sessions", {"session_id": "s", "agent_id": "slow"}, 201)
    stream = await server.stream(after_seq=0)
    await server.post("api/sessions/s/chat", {"message": WORKER_CALL}, 202)
    events = await until(stream, "tool_call_started", tool_name="wait_here")
    stream.close()
    await server.kill_when_stored(events[-1])

    server, stream, _ = await restart(servers)
    after = await until(stream, "execution_failed")
    (worker_call,) = [e for e in of_type(after, "tool_call_completed")
                      if e["stream_id"].startswith("worker:")]
    assert (worker_call["data"]["result"], worker_call["data"]["is_error"]) == (
        RESTART_RESULT, True)
    (worker,) = of_type(after, "worker_failed")
    assert worker["data"]["error"] == RESTART_RESULT
    (queen_call,) = [e for e in of_type(after, "tool_call_completed")
                     if e["stream_id"] == "queen"]
    assert queen_call["data"]["tool_name"] == "run_worker"
    assert after[-1]["data"]["reason"] == "server_restart"

    await server.post("api/sessions/s/chat", {"message": "what happened?"}, 202)
    reply = replies(await until(stream, "execution_completed"))[-1]
    assert reply.endswith(f'You said: "what happened?". Previous: "{WORKER_CALL}".'), reply
    stream.close()


async def test_kill_in_the_middle_of_the_queens_text_stream(servers, aiohttp_server):
    fake = FakeAnthropic()
    hold = asyncio.Event()
    fake.script(Turn(blocks=(Block("text", text="Once upon a time there was a hive"),),
                     hold=hold), text_turn("Where was I? Ah yes."))
    fake_server = await aiohttp_server(fake.app)
    env = {"ANTHROPIC_API_KEY": "test-key",
           "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{fake_server.port}"}
    try:
        server = await servers(env)
        await server.post("api/sessions", {"session_id": "s"}, 201)
        stream = await server.stream(after_seq=0)
        await server.post("api/sessions/s/chat", {"message": "tell me a story"}, 202)
        events = await until(stream, "client_output_delta")
        stream.close()
        await server.kill_when_stored(events[-1])

        server, stream, _ = await restart(servers, env)
        after = await until(stream, "execution_failed")
        assert after[-1]["data"]["error_type"] == "interrupted"
        assert of_type(after, "llm_turn_complete") == []
        await server.post("api/sessions/s/chat", {"message": "go on"}, 202)
        assert replies(await until(stream, "execution_completed")) == ["Where was I? Ah yes."]
        assert fake.requests[-1]["messages"] == [
            {"role": "user", "content": [{"type": "text", "text": "tell me a story"}]},
            {"role": "assistant", "content": [{"type": "text", "text": RESTART_NOTE}]},
            {"role": "user", "content": [{"type": "text", "text": "go on"}]}]
        stream.close()
    finally:
        hold.set()


async def test_kill_with_a_question_pending(servers):
    server = await servers()
    await server.post("api/sessions", {"session_id": "s"}, 201)
    stream = await server.stream(after_seq=0)
    await server.post("api/sessions/s/chat", {"message": "ask me"}, 202)
    events = await until(stream, "client_input_requested")
    stream.close()
    await server.kill_when_stored(events[-1])

    server, stream, _ = await restart(servers)
    (asked,) = of_type(await until(stream, "client_input_requested"), "client_input_requested")
    assert asked["execution_id"] == events[-1]["execution_id"]
    reload = await server.stream()  # what a UI reloading now is shown first
    snapshot = (await read_frame(reload, TIMEOUT))["event"]["data"]
    reload.close()
    assert snapshot["awaiting_input"] is True
    assert snapshot["pending_questions"] == asked["data"]["questions"]
    await server.post("api/sessions/s/chat", {"message": "blue"}, 202)
    after = await until(stream, "execution_completed")
    assert of_type(after, "execution_failed", "execution_started") == []
    assert replies(after) == ["Tool ask_user returned: blue"]
    stream.close()


async def test_kill_with_three_inputs_queued(servers):
    server = await servers()
    await server.post("api/sessions", {"session_id": "s", "agent_id": "slow"}, 201)
    stream = await server.stream(after_seq=0)
    await server.post("api/sessions/s/chat", {"message": WORKER_CALL}, 202)
    await until(stream, "tool_call_started", tool_name="wait_here")  # the queen is busy
    for text in ("one", "two", "three"):
        await server.post("api/sessions/s/chat", {"message": text}, 202)
    events = await until(stream, "client_input_received", content="three")
    stream.close()
    await server.kill_when_stored(events[-1])

    server, stream, _ = await restart(servers)
    after = []
    for _ in range(3):
        after += await until(stream, "execution_completed")
    assert of_type(after, "execution_failed")[0]["data"]["reason"] == "server_restart"
    said = [reply.split('You said: "')[1].split('"')[0] for reply in replies(after)]
    assert said == ["one", "two", "three"]
    assert 'Previous: "one"' in replies(after)[1]  # the model sees the earlier turns
    stream.close()
