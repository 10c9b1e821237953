"""Bounded shutdown, with real server processes: SIGTERM while a tool blocks ends the process
within the grace period (the tool call is abandoned), the sessions' events are stored, the
sessions stay live and resume on the next start; a second server waits for a stopping one."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hive_server.runtime import HomeLock, holder
from tests.agent_fixtures import write_agent
from tests.server_process import ServerProcess
from tests.sse_reader import read_until

pytestmark = pytest.mark.slow  # every test here starts a process

TIMEOUT = 20.0
TOOLS = '''import asyncio
import time


def wait_here() -> str:
    """Blocks its thread for a minute."""
    time.sleep(60)
    return "waited"


async def stubborn() -> str:
    """Ignores cancellation for ever."""
    while True:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            pass
'''


def worker_call(tool: str) -> str:
    return f'call:run_worker {{"task": "call:{tool} {{}}"}}'


def read_log(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_bytes().splitlines()]


@pytest.fixture
async def servers(tmp_path):
    write_agent(tmp_path / "agents", "slow", {"name": "Slow"}, tools=TOOLS)
    started: list[ServerProcess] = []

    async def start(*extra: str) -> ServerProcess:
        started.append(ServerProcess(tmp_path, *extra))
        return await started[-1].start()

    yield start
    for server in started:
        await server.kill_quietly()


async def call_tool(server: ServerProcess, http: aiohttp.ClientSession, tool: str) -> None:
    """Session ``s`` with the agent; its worker is inside ``tool`` when this returns."""
    async with http.post(server.url + "api/sessions",
                         json={"session_id": "s", "agent_id": "slow"}) as resp:
        assert resp.status == 201, await resp.text()
    async with http.get(server.url + "api/sessions/s/events?after_seq=0") as stream:
        async with http.post(server.url + "api/sessions/s/chat",
                             json={"message": worker_call(tool)}) as resp:
            assert resp.status == 202
        await read_until(stream, lambda e: e["type"] == "tool_call_started"
                         and e["data"]["tool_name"] == tool, TIMEOUT)


async def sigterm(server: ServerProcess, bound: float) -> tuple[int, float]:
    assert server.proc is not None
    began = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    async with asyncio.timeout(bound + 5):  # fails the test, not the run, on today's 60 s
        code = await server.proc.wait()
    return code, time.monotonic() - began


async def test_a_tool_blocked_for_60s_does_not_hold_the_shutdown_and_the_session_resumes(
        servers):
    server = await servers("--shutdown-grace", "3")
    async with aiohttp.ClientSession(headers=server.headers) as http:
        await call_tool(server, http, "wait_here")
    code, took = await sigterm(server, 3 + 2)
    assert code == 0 and took < 3 + 2, took
    log = read_log(server.home / "sessions" / "s" / "events.jsonl")
    assert log[-1]["type"] == "session_stopped" and log[-1]["data"]["reason"] == "shutdown"
    meta = json.loads((server.home / "sessions" / "s" / "meta.json").read_text())
    assert meta["status"] != "stopped"  # marked for resume (its last status kept)
    assert not (server.home / "server.json").exists()

    server = await servers()
    async with aiohttp.ClientSession(headers=server.headers) as http:
        async with http.get(server.url + "api/sessions/s") as resp:
            assert resp.status == 200
    started = [e for e in read_log(server.home / "sessions" / "s" / "events.jsonl")
               if e["type"] == "session_started"]
    assert [e["data"]["resumed"] for e in started] == [False, True]


async def test_a_tool_that_ignores_cancellation_is_cut_off_at_the_grace_period(servers):
    server = await servers("--shutdown-grace", "1")
    async with aiohttp.ClientSession(headers=server.headers) as http:
        async with http.post(server.url + "api/sessions", json={"session_id": "t"}) as resp:
            assert resp.status == 201
        await call_tool(server, http, "stubborn")
    code, took = await sigterm(server, 1 + 2)
    assert took < 1 + 2, took
    assert code == 1  # the hard stop: asyncio could not finish the stubborn task
    stuck = read_log(server.home / "sessions" / "s" / "events.jsonl")
    assert any(e["type"] == "tool_call_started" for e in stuck)
    assert stuck[-1]["type"] != "session_stopped"  # resumed as after a crash
    other = read_log(server.home / "sessions" / "t" / "events.jsonl")
    assert other[-1]["type"] == "session_stopped"  # not held up by the stuck session
    for name in ("s", "t"):
        meta = json.loads((server.home / "sessions" / name / "meta.json").read_text())
        assert meta["status"] != "stopped"  # marked for resume


def test_a_second_server_waits_for_a_stopping_one(tmp_path):
    home = tmp_path / "home"
    old = HomeLock.try_acquire(home)
    assert old is not None
    old.mark_stopping()
    assert holder(home) == (str(os.getpid()), True)
    said: list[str] = []
    naps: list[float] = []

    def nap(seconds: float) -> None:  # the old server exits during the third nap
        naps.append(seconds)
        if len(naps) == 3:
            old.release()

    new = HomeLock.acquire(home, wait=10, say=said.append, sleep=nap)
    assert new is not None
    try:
        assert said == [f"waiting for the server (pid {os.getpid()}) to stop (up to 10 s)",
                        f"the server (pid {os.getpid()}) has stopped; starting"]
        assert holder(home) == (str(os.getpid()), False)  # the new holder's pid
    finally:
        new.release()


def test_a_second_server_gives_up_after_the_bound_and_never_waits_for_a_running_one(
        tmp_path):
    home = tmp_path / "home"
    old = HomeLock.try_acquire(home)
    assert old is not None
    try:
        said: list[str] = []
        assert HomeLock.acquire(home, wait=10, say=said.append, sleep=lambda _: None) is None
        assert len(said) == 1 and "already in use" in said[0] and str(os.getpid()) in said[0]
        old.mark_stopping()
        said.clear()
        now = [0.0]

        def nap(seconds: float) -> None:
            now[0] += seconds

        assert HomeLock.acquire(home, wait=1, say=said.append, sleep=nap,
                                clock=lambda: now[0]) is None
        assert said[0].startswith("waiting for the server")
        assert said[-1].endswith("after 1 s; giving up") and now[0] >= 1
    finally:
        old.release()
