"""Helpers shared by the queen tests: the real client on the fake Messages API, queen files, and
what a log says (of_type, texts, results in call order). The HTTP calls and the stream readers
live in tests/hive_api.py (``chat``, ``open_stream``, ``until``... are re-exported here)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from tests.hive_api import HiveApi
from tests.hive_api import read_log as read_log  # re-exported: the tests import them from here
from tests.hive_api import until as until
from tests.hive_api import until_any as until_any
from tests.hive_api import until_nth as until_nth

if TYPE_CHECKING:
    from hive_server.llm.anthropic import AnthropicClient

MAX_RETRIES = 2

WARDEN_YAML = """\
name: Warden
title: keeper of the gates
core_traits: [watchful, terse]
skills: [counting visitors]
system_prompt: Answer in one short sentence.
"""


def claude(url: str, **overrides: Any) -> AnthropicClient:
    """The real client on the fake Messages API at ``url``, without real waits between retries.

    The Anthropic SDK takes about 2 s of CPU to import, so it is imported here, by the tests that
    call it (marked ``anthropic_sdk``, or using ``fake_url``: tests/worker_groups.py runs them on
    one pytest worker), not when a module is collected."""
    from hive_server.llm.anthropic import AnthropicClient

    options: dict[str, Any] = {"default_model": "claude-test", "max_retries": MAX_RETRIES,
                               "backoff_base": 0.0, "backoff_max": 0.0, **overrides}
    return AnthropicClient("test-key", base_url=url, **options)


def write_queen(queens_dir: Path, queen_id: str = "warden", text: str = WARDEN_YAML) -> None:
    queens_dir.mkdir(parents=True, exist_ok=True)
    (queens_dir / f"{queen_id}.yaml").write_text(text)


async def chat(client: TestClient, session_id: str, message: str) -> dict[str, Any]:
    """``HiveApi.chat`` for the call sites that hold only a client."""
    return await HiveApi(client).chat(session_id, message)


async def chatted(client: TestClient, session_id: str, n: int) -> None:
    """``HiveApi.chatted``: a new session that got ``n`` chats, each one answered."""
    await HiveApi(client).chatted(session_id, n)


async def open_stream(client: TestClient, session_id: str, after_seq: int = 0) -> ClientResponse:
    """``HiveApi.events``: the session's SSE stream."""
    return await HiveApi(client).events(session_id, after_seq)


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
