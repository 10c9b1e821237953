"""The stale-turn watchdog, on the fake clock: a silent queen turn is failed as stale (its
workers cancelled, the queen free again); a turn waiting on ask_user never is; a step of the
turn restarts the count, a chat queued meanwhile does not."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from hive_server import keys
from hive_server.cli import build_parser
from hive_server.core.clock import FakeClock
from hive_server.llm.base import StreamItem, TextDelta, ToolSpec, TurnResult, Usage
from hive_server.llm.offline import OfflineClient
from hive_server.services.runtime.conversation import rebuild_from_file
from hive_server.settings import SettingsError, load_settings
from tests.agent_fixtures import write_agent
from tests.conftest import create_session, make_settings
from tests.queen_support import chat, of_type, open_stream, read_log, until

STALE = 60.0
STEP = STALE / 10  # the watchdog looks this often


class Stalling:
    """The offline model, except for a user text that starts with ``hang`` (two text deltas,
    then silence until cancelled) or ``drip`` (one ``get_time`` call once ``gate`` opens,
    then silence)."""

    provider = "fake"
    default_model = "offline-1"

    def __init__(self) -> None:
        self.offline = OfflineClient()
        self.gate = asyncio.Event()
        self.cancelled = 0

    async def stream_turn(self, *, system: str, messages: list[dict[str, Any]],
                          tools: list[ToolSpec], model: str | None = None,
                          max_tokens: int = 4096) -> AsyncIterator[StreamItem]:
        text = _last_user_text(messages)
        if text.startswith("drip") and not _is_results(messages[-1]):
            await self.gate.wait()
            yield TurnResult([{"type": "tool_use", "id": "toolu_drip_1", "name": "get_time",
                               "input": {}}], "tool_use", Usage(1, 1), self.default_model)
            return
        if text.startswith(("hang", "drip")):
            yield TextDelta("working on ")
            yield TextDelta("it")  # held back by the delta coalescing: flushed at the cancel
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.cancelled += 1
                raise
        async for item in self.offline.stream_turn(system=system, messages=messages,
                                                   tools=tools, model=model):
            yield item

    async def aclose(self) -> None:
        return None


def _is_results(message: dict[str, Any]) -> bool:
    content = message.get("content")
    return isinstance(content, list) and any(b.get("type") == "tool_result" for b in content)


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        content = message["content"]
        if message["role"] != "user":
            continue
        if isinstance(content, str):
            return content
        texts = [b["text"] for b in content if b.get("type") == "text"]
        if texts:
            return texts[-1]
    return ""


async def _session(make_client, tmp_path, **body: Any) -> tuple[Stalling, FakeClock, Any, Any]:
    """A server with the stalling model on a fake clock, session ``s`` and its SSE stream."""
    llm, clock = Stalling(), FakeClock()
    settings = make_settings(tmp_path, stale_turn_seconds=STALE)
    client = await make_client(settings, llm=llm, clock=clock)
    await create_session(client, session_id="s", **body)
    return llm, clock, client, await open_stream(client, "s")


async def _snapshot(client, session_id: str) -> dict[str, Any]:
    resp = await client.get(f"/api/sessions/{session_id}/snapshot")
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def test_a_silent_turn_fails_as_stale_and_the_queen_takes_the_next_input(
        make_client, tmp_path):
    llm, clock, client, stream = await _session(make_client, tmp_path)
    stream.close()
    ui = await client.get("/api/sessions/s/events")  # as Hive's UI opens it: no cursor
    await chat(client, "s", "hang on a moment")
    seen = await until(ui, "client_output_delta")
    await clock.advance(STALE - 1)
    assert (await _snapshot(client, "s"))["is_executing"] is True
    await clock.advance(STEP + 2)
    seen += await until(ui, "execution_failed")
    failed = seen[-1]
    assert failed["data"]["error_type"] == "stale"
    assert "60 s" in failed["data"]["error"]
    seen += await until(ui, "loop_state_changed")
    assert seen[-1]["data"] == {"activity": "interrupted", "park_reason": None,
                                "interrupt_cause": "stale"}
    assert llm.cancelled == 1
    # the coalesced delta the cancel flushed came before the failure, nothing after it
    turn = [e for e in seen if e.get("execution_id") == failed["execution_id"]]
    assert [e["type"] for e in turn[-2:]] == ["execution_failed", "loop_state_changed"]
    assert "".join(d["data"]["content"] for d in of_type(turn, "client_output_delta")) \
        == "working on it"
    snapshot = await _snapshot(client, "s")
    assert (snapshot["is_executing"], snapshot["interrupted"], snapshot["interrupt_cause"]) \
        == (False, True, "stale")
    await chat(client, "s", "hello again")
    done = await until(ui, "execution_completed")
    assert not [e for e in done if e.get("execution_id") == failed["execution_id"]]
    assert "hello again" in of_type(done, "llm_turn_complete")[-1]["data"]["message"][
        "content"][0]["text"]
    ui.close()


async def test_a_stale_turn_cancels_its_workers(make_client, tmp_path):
    write_agent(tmp_path / "agents", "crew", {"name": "Crew"})
    _, clock, client, stream = await _session(make_client, tmp_path, agent_id="crew")
    await chat(client, "s", 'call:run_worker {"task": "hang in there"}')
    await until(stream, "llm_text_delta")  # the worker streams, then goes silent
    await clock.advance(STALE + 2 * STEP)
    events = await until(stream, "execution_failed")
    assert events[-1]["data"]["error_type"] == "stale"
    worker_failed = of_type(events, "worker_failed")
    assert [w["data"]["error"] for w in worker_failed] == ["cancelled"]
    run_worker = [e for e in of_type(events, "tool_call_completed")
                  if e["data"]["tool_name"] == "run_worker"]
    assert run_worker and run_worker[0]["data"]["is_error"] is True
    workers = await (await client.get("/api/sessions/s/workers")).json()
    assert [w["status"] for w in workers["workers"]] == ["cancelled"]
    stream.close()


async def test_a_turn_waiting_on_ask_user_is_never_stale(make_client, tmp_path):
    _, clock, client, stream = await _session(make_client, tmp_path)
    await chat(client, "s", "please ask me something")
    await until(stream, "client_input_requested")
    await clock.advance(STALE * 10)
    assert not of_type(read_log(tmp_path / "home", "s"), "execution_failed")
    assert (await _snapshot(client, "s"))["awaiting_input"] is True
    await chat(client, "s", "here is my answer")
    events = await until(stream, "execution_completed")
    assert not of_type(events, "execution_failed")
    stream.close()


async def test_a_step_of_the_turn_restarts_the_count_a_queued_chat_does_not(
        make_client, tmp_path):
    llm, clock, client, stream = await _session(make_client, tmp_path)
    await chat(client, "s", "drip, slowly")
    await until(stream, "execution_started")
    await clock.advance(STALE * 0.7)
    llm.gate.set()  # the model's turn arrives: llm_turn_complete, the get_time call
    await until(stream, "client_output_delta")  # the next model turn began, then went silent
    await clock.advance(STALE * 0.7)  # 1.4 x STALE since the start, 0.7 x since the step
    await chat(client, "s", "are you there?")  # queued: not a step of the turn
    assert not of_type(read_log(tmp_path / "home", "s"), "execution_failed")
    await clock.advance(STALE * 0.3 + 2 * STEP)
    events = await until(stream, "execution_failed")
    assert events[-1]["data"]["error_type"] == "stale"
    stream.close()


async def test_a_stale_turn_leaves_the_conversation_rebuildable(make_client, tmp_path):
    llm, clock, client, stream = await _session(make_client, tmp_path)
    await chat(client, "s", "drip and then hang")
    await until(stream, "execution_started")
    llm.gate.set()
    await until(stream, "client_output_delta")
    await clock.advance(STALE + 2 * STEP)
    await until(stream, "execution_failed")
    await chat(client, "s", "next one")
    await until(stream, "execution_completed")
    stream.close()
    await client.close()
    rebuilt = rebuild_from_file(tmp_path / "home" / "sessions" / "s" / "events.jsonl")
    assert rebuilt.tracker.turn is None  # nothing left open: no "interrupted" at resume
    assert rebuilt.pending == []
    assert [m["role"] for m in rebuilt.messages] == ["user", "assistant", "user", "assistant"]
    results = [b for b in rebuilt.messages[2]["content"] if b.get("type") == "tool_result"]
    assert [r["tool_use_id"] for r in results] == ["toolu_drip_1"]
    again = await make_client(make_settings(tmp_path, stale_turn_seconds=STALE),
                              llm=Stalling(), clock=FakeClock())
    resumed = await (await again.get("/api/sessions/s")).json()
    assert resumed["session_id"] == "s"
    history = await (await again.get("/api/sessions/s/events/history")).json()
    assert not [e for e in history["events"] if e["type"] == "execution_failed"
                and e["data"]["error_type"] == "interrupted"]


def test_stale_turn_seconds_is_a_flag_an_env_variable_and_a_config_key(tmp_path):
    (tmp_path / "config.toml").write_text("stale_turn_seconds = 120\n")
    flags = {"home": str(tmp_path)}
    assert load_settings(flags, {}).stale_turn_seconds == 120
    env = {"HIVE_STALE_TURN_SECONDS": "90"}
    assert load_settings(flags, env).stale_turn_seconds == 90
    args = build_parser().parse_args(["serve", "--stale-turn-seconds", "30"])
    assert load_settings({**flags, "stale_turn_seconds": args.stale_turn_seconds},
                         env).stale_turn_seconds == 30
    assert load_settings({"home": str(tmp_path / "none")}, {}).stale_turn_seconds == 300
    with pytest.raises(SettingsError, match="stale_turn_seconds"):
        load_settings(flags, {"HIVE_STALE_TURN_SECONDS": "0"})


async def test_a_watchdog_task_runs_only_while_a_turn_runs(make_client, tmp_path):
    _, clock, client, stream = await _session(make_client, tmp_path)
    watchdog = client.app[keys.SESSIONS].get("s").watchdog
    assert (watchdog._task, watchdog._tasks) == (None, set())  # idle: no task, no timer
    await chat(client, "s", "hang on")
    await until(stream, "client_output_delta")
    watching = watchdog._task
    assert watching is not None and not watching.done()
    await clock.advance(STALE + 2 * STEP)  # the watchdog fails the turn, then ends itself
    await until(stream, "execution_failed")
    await asyncio.wait_for(asyncio.wait([watching]), timeout=5)
    assert (watchdog._task, watchdog._tasks) == (None, set())
    await chat(client, "s", "hello")  # watched while it runs, the task cancelled at its end
    await until(stream, "execution_completed")
    await asyncio.wait_for(asyncio.gather(*watchdog._tasks, return_exceptions=True), timeout=5)
    assert (watchdog._task, watchdog._tasks) == (None, set())
    stream.close()
