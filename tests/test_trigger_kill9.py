"""A real server process killed with SIGKILL in the middle of timer fires, then restarted: the
resumed session's timer runs on and no tick is ever fired twice.

The process runs on the real clock, so the timer ticks every 1.2 s and every wait is bounded.
Each kill lands the moment the SSE stream shows a ``trigger_fired`` (the fire is then still
under way: the event being written, the queen's input not yet recorded)."""

from __future__ import annotations

import itertools
import json
import signal

import aiohttp
import pytest

from tests.server_process import ServerProcess
from tests.sse_reader import read_frame, read_until

pytestmark = pytest.mark.slow  # every test here starts a process

INTERVAL_MINUTES = 0.02  # 1.2 s
TIMEOUT = 20.0


@pytest.fixture
async def servers(tmp_path):
    started: list[ServerProcess] = []

    async def start() -> ServerProcess:
        server = ServerProcess(tmp_path)
        started.append(server)
        return await server.start()

    yield start
    for server in started:
        await server.kill_quietly()


async def fires_seen(server: ServerProcess, count: int) -> None:
    """Follow the session's live stream until ``count`` more ``trigger_fired`` events."""
    async with aiohttp.ClientSession(headers=server.headers) as http, \
            http.get(server.url + "api/sessions/s/events") as stream:
        assert stream.status == 200
        opening = await read_frame(stream, TIMEOUT)  # the snapshot, then the recent tail
        after = opening["event"]["data"]["snapshot_seq"]
        for _ in range(count):
            await read_until(stream, lambda e: e["type"] == "trigger_fired" and e["seq"] > after,
                             TIMEOUT)


async def kill_9(server: ServerProcess) -> None:
    assert server.proc is not None
    server.proc.kill()
    assert await server.proc.wait() == -signal.SIGKILL


async def test_sigkill_during_fires_never_fires_a_tick_twice(servers, tmp_path):
    server = await servers()
    async with aiohttp.ClientSession(headers=server.headers) as http:
        async with http.post(server.url + "api/sessions", json={"session_id": "s"}) as r:
            assert r.status == 201
        spec = {"id": "tick", "trigger_type": "timer", "task": "count",
                "trigger_config": {"interval_minutes": INTERVAL_MINUTES}}
        async with http.post(server.url + "api/sessions/s/triggers", json=spec) as r:
            assert r.status == 201
    await fires_seen(server, 1)
    await kill_9(server)

    server = await servers()
    await fires_seen(server, 1)
    await kill_9(server)

    server = await servers()
    await fires_seen(server, 2)
    assert await server.stop(signal.SIGTERM) == 0

    log = tmp_path / "home" / "sessions" / "s" / "events.jsonl"
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert len([e for e in events if e["type"] == "session_started"]) == 3
    scheduled = [e["data"] for e in events
                 if e["type"] == "trigger_fired" and not e["data"]["manual"]]
    last_start = max(i for i, e in enumerate(events) if e["type"] == "session_started")
    assert len([e for e in events[last_start:] if e["type"] == "trigger_fired"]) >= 2
    for before, after in itertools.pairwise(scheduled):
        assert after["tick"] > before["tick"], "a tick was fired twice"
        assert after["fire_count"] > before["fire_count"]
    saved = json.loads((log.parent / "triggers.json").read_text())
    assert saved["state"]["tick"]["fire_count"] >= scheduled[-1]["fire_count"]
    assert saved["state"]["tick"]["last_tick"] * 1000 >= scheduled[-1]["tick"]
