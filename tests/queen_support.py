"""Helpers shared by the queen tests: chat over HTTP, follow the SSE stream, read the log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from hive_server.llm.anthropic import AnthropicClient
from tests.conftest import create_session
from tests.sse_reader import read_until

MAX_RETRIES = 2

WARDEN_YAML = """\
name: Warden
title: keeper of the gates
core_traits: [watchful, terse]
skills: [counting visitors]
system_prompt: Answer in one short sentence.
"""


def claude(url: str) -> AnthropicClient:
    """The real client on the fake Messages API at ``url``, without real waits between retries."""
    return AnthropicClient("test-key", base_url=url, default_model="claude-test",
                           max_retries=MAX_RETRIES, backoff_base=0.0, backoff_max=0.0)


def write_queen(queens_dir: Path, queen_id: str = "warden", text: str = WARDEN_YAML) -> None:
    queens_dir.mkdir(parents=True, exist_ok=True)
    (queens_dir / f"{queen_id}.yaml").write_text(text)


async def chat(client: TestClient, session_id: str, message: str) -> dict[str, Any]:
    resp = await client.post(f"/api/sessions/{session_id}/chat", json={"message": message})
    assert resp.status == 202, await resp.text()
    return await resp.json()


async def chatted(client: TestClient, session_id: str, n: int) -> None:
    """A new session that got ``n`` chats, each one answered."""
    await create_session(client, session_id=session_id)
    stream = await open_stream(client, session_id, after_seq=0)
    for i in range(n):
        await chat(client, session_id, f"message {i}")
    for _ in range(n):
        await until(stream, "execution_completed")
    stream.close()


async def open_stream(client: TestClient, session_id: str, after_seq: int = 0) -> ClientResponse:
    resp = await client.get(f"/api/sessions/{session_id}/events?after_seq={after_seq}")
    assert resp.status == 200, await resp.text()
    return resp


async def until(resp: ClientResponse, event_type: str, timeout: float = 5.0) -> list[dict]:
    """The events up to and including the next one of ``event_type``."""
    frames = await read_until(resp, lambda e: e["type"] == event_type, timeout)
    return [frame["event"] for frame in frames]


async def until_any(resp: ClientResponse, *event_types: str, timeout: float = 5.0) -> list[dict]:
    """The events up to and including the next one of any of ``event_types``."""
    frames = await read_until(resp, lambda e: e["type"] in event_types, timeout)
    return [frame["event"] for frame in frames]


async def until_nth(resp: ClientResponse, event_type: str, n: int,
                    timeout: float = 5.0) -> list[dict]:
    """The events up to and including the ``n``-th next one of ``event_type``."""
    events: list[dict] = []
    for _ in range(n):
        events += await until(resp, event_type, timeout)
    return events


def read_log(home: Path, session_id: str) -> list[dict[str, Any]]:
    """The complete lines of a session's log (a line being written right now is left out)."""
    data = (home / "sessions" / session_id / "events.jsonl").read_bytes()
    return [json.loads(line) for line in data.split(b"\n")[:-1]]


def of_type(events: list[dict], *types: str) -> list[dict]:
    return [event for event in events if event["type"] in types]


def results_in_call_order(events: list[dict], stream_prefix: str) -> list[dict[str, Any]]:
    """The ``tool_call_completed`` data of the streams whose id starts with ``stream_prefix``,
    in the order the model made the calls: parallel calls finish in any order."""
    calls = [(event["stream_id"], block["id"])
             for event in of_type(events, "llm_turn_complete")
             if event["stream_id"].startswith(stream_prefix)
             for block in event["data"]["message"]["content"] if block["type"] == "tool_use"]
    done = {(event["stream_id"], event["data"]["tool_use_id"]): event["data"]
            for event in of_type(events, "tool_call_completed")
            if event["stream_id"].startswith(stream_prefix)}
    assert sorted(done) == sorted(calls), "every call has exactly one result"
    return [done[call] for call in calls]


def texts(events: list[dict]) -> list[str]:
    """The assistant text of every ``llm_turn_complete`` among ``events``."""
    return ["".join(block.get("text", "") for block in event["data"]["message"]["content"])
            for event in of_type(events, "llm_turn_complete")]


def assert_executions_alternate(events: list[dict]) -> None:
    """Executions never overlap: every start is followed by its own end before the next."""
    running: str | None = None
    for event in events:
        if event["type"] == "execution_started":
            assert running is None, f"execution {event['execution_id']} overlaps {running}"
            running = event["execution_id"]
        elif event["type"] in ("execution_completed", "execution_failed",
                               "execution_cancelled"):
            assert event["execution_id"] == running, "an execution ended that was not running"
            running = None
