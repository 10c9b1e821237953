"""Honest state across crashes (in process): a log cut where a crash would cut it resumes with
its unfinished turn closed, its pending question asked again, its queued inputs handled.

A "crash" here is a copy of a real session's log cut after a chosen event, in a new home whose
meta.json still says live: exactly what ``kill -9`` leaves (``test_crash_kill9`` does it for
real with server processes).
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hive_server import keys
from hive_server.services.runtime.open_turn import RESTART_NOTE, RESTART_RESULT
from tests.agent_fixtures import agents_tree
from tests.conftest import create_session, make_settings
from tests.queen_support import chat, of_type, open_stream, texts, until

Event = dict[str, Any]


async def run_then_crash(make_client, tmp_path: Path, steps, cut: Callable[[Event], bool],
                         *, nth: int = 1) -> Any:
    """Run ``steps`` in one app, then start a second app on a copy of the session whose log
    ends at the ``nth`` event matching ``cut``; the second app's client."""
    first = make_settings(tmp_path / "run")
    agents_tree(first.agents_dir)
    client = await make_client(first)
    await create_session(client, session_id="s")
    await steps(client)
    await client.close()
    lines = (first.home / "sessions" / "s" / "events.jsonl").read_bytes().splitlines(True)
    matches = [i for i, line in enumerate(lines) if cut(json.loads(line))]
    end = matches[nth - 1] + 1
    crashed = make_settings(tmp_path / "crashed", agents_dir=first.agents_dir)
    folder = crashed.home / "sessions" / "s"
    folder.mkdir(parents=True)
    (folder / "events.jsonl").write_bytes(b"".join(lines[:end]))
    meta = json.loads((first.home / "sessions" / "s" / "meta.json").read_text())
    (folder / "meta.json").write_text(json.dumps({**meta, "status": "live"}))
    if (first.home / "sessions" / "s" / "triggers.json").exists():
        shutil.copy(first.home / "sessions" / "s" / "triggers.json", folder)
    return await make_client(crashed), end


def is_type(kind: str, **data: Any) -> Callable[[Event], bool]:
    return lambda e: e["type"] == kind and all(e["data"].get(k) == v for k, v in data.items())


def read_events(client, *types: str) -> list[Event]:
    """The session's stored events of ``types`` (lines that are not valid JSON skipped)."""
    log = client.app[keys.SETTINGS].home / "sessions" / "s" / "events.jsonl"
    found = []
    for line in log.read_bytes().splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and event.get("type") in types:
            found.append(event)
    return found


async def test_a_queen_tool_call_cut_by_a_crash_is_closed_and_the_next_chat_answered(
        make_client, tmp_path):
    async def steps(client):
        stream = await open_stream(client, "s")
        await chat(client, "s", "first words")
        await until(stream, "execution_completed")
        await chat(client, "s", 'call:get_time {"timezone": "UTC"}')
        await until(stream, "execution_completed")

    client, cut_at = await run_then_crash(make_client, tmp_path, steps,
                                          is_type("tool_call_started"))
    stream = await open_stream(client, "s", after_seq=cut_at)
    after = await until(stream, "loop_state_changed")
    started, done, failed, state = after[0], after[1], after[2], after[3]
    assert started["type"] == "session_started" and started["data"]["resumed"] is True
    assert (done["type"], done["data"]["result"], done["data"]["is_error"]) == (
        "tool_call_completed", RESTART_RESULT, True)
    assert failed["type"] == "execution_failed" and failed["data"] == {
        "error": "the turn was interrupted by a server restart", "error_type": "interrupted",
        "reason": "server_restart"}
    assert done["execution_id"] == failed["execution_id"] is not None
    assert state["data"]["park_reason"] == "cold_interrupted"

    await chat(client, "s", "are you there?")
    events = await until(stream, "execution_completed")
    reply = texts(events)[-1]
    assert 'You said: "are you there?"' in reply and "Message #3" in reply
    assert not reply.startswith("Tool ")  # an answer to the new message, not to the old turn
    messages = client.app[keys.SESSIONS].get("s").queen.messages
    assert {"type": "text", "text": RESTART_NOTE} in messages[-3]["content"]
    stream.close()


async def test_a_reply_cut_mid_stream_is_closed_and_said_so_to_the_model(make_client,
                                                                         tmp_path):
    async def steps(client):
        stream = await open_stream(client, "s")
        await chat(client, "s", "tell me a story")
        await until(stream, "execution_completed")

    client, _ = await run_then_crash(make_client, tmp_path, steps,
                                     is_type("client_output_delta"))
    stream = await open_stream(client, "s", after_seq=0)
    events = await until(stream, "execution_failed")
    assert of_type(events, "llm_turn_complete") == []
    await chat(client, "s", "go on")
    events = await until(stream, "execution_completed")
    assert 'You said: "go on". Previous: "tell me a story"' in texts(events)[-1]
    queen = client.app[keys.SESSIONS].get("s").queen
    assert [m["role"] for m in queen.messages] == ["user", "assistant", "user", "assistant"]
    assert queen.messages[1]["content"] == [{"type": "text", "text": RESTART_NOTE}]
    stream.close()


async def test_a_pending_question_is_asked_again_and_its_answer_goes_on_with_the_turn(
        make_client, tmp_path):
    async def steps(client):
        stream = await open_stream(client, "s")
        await chat(client, "s", "ask me")
        await until(stream, "client_input_requested")

    client, cut_at = await run_then_crash(make_client, tmp_path, steps,
                                          is_type("client_input_requested"))
    stream = await open_stream(client, "s", after_seq=cut_at)
    await until(stream, "client_input_requested")  # asked again
    snap = await (await client.get("/api/sessions/s/snapshot")).json()
    assert snap["awaiting_input"] is True and snap["park_reason"] == "ask_user"
    assert [q["prompt"] for q in snap["pending_questions"]] == [
        "What would you like me to do next?"]
    answer = await chat(client, "s", "write the notes")
    events = await until(stream, "execution_completed")
    assert of_type(events, "execution_failed", "execution_started") == []
    (received,) = [e for e in events if e["seq"] == answer["seq"]]
    asked = read_events(client, "client_input_requested")[-1]
    assert received["data"]["answers_request_seq"] == asked["seq"]
    (result,) = [e for e in of_type(events, "tool_call_completed") if e["data"]["tool_name"]
                 == "ask_user"]
    assert result["data"]["result"] == "write the notes" and not result["data"]["is_error"]
    assert texts(events)[-1] == "Tool ask_user returned: write the notes"
    assert {e["execution_id"] for e in events if e["execution_id"]} == {asked["execution_id"]}
    first_ask = read_events(client, "client_input_requested")[0]
    assert first_ask["execution_id"] == asked["execution_id"]  # the same turn goes on
    stream.close()


async def test_a_question_pending_at_a_clean_stop_is_pending_after_a_resume(client, api):
    await api.create_session(session_id="s")
    await api.chat("s", "ask me")
    await api.wait_for("s", "client_input_requested")
    assert (await client.delete("/api/sessions/s")).status == 200
    assert (await client.post("/api/sessions", json={"queen_resume_from": "s"})).status == 201
    snap = await (await client.get("/api/sessions/s/snapshot")).json()
    stream = await api.events("s")
    await until(stream, "session_started")
    await until(stream, "client_input_requested")
    snap = await (await client.get("/api/sessions/s/snapshot")).json()
    assert snap["awaiting_input"] is True and snap["pending_questions"]
    await api.chat("s", "blue")
    events = await until(stream, "execution_completed")
    assert texts(events)[-1] == "Tool ask_user returned: blue"
    assert read_events(client, "execution_cancelled", "execution_failed") == []
    stream.close()


async def test_three_queued_inputs_are_handled_in_order_after_a_crash(make_client, tmp_path):
    async def steps(client):
        queen = client.app[keys.SESSIONS].get("s").queen
        stream = await open_stream(client, "s")
        await asyncio.gather(*(queen.deliver(text) for text in ("one", "two", "three")))
        await until(stream, "execution_completed")
        stream.close()

    client, cut_at = await run_then_crash(make_client, tmp_path, steps,
                                          is_type("client_input_received", content="three"))
    stream = await open_stream(client, "s", after_seq=cut_at)
    events = []
    for _ in range(3):
        events += await until(stream, "execution_completed")
    said = [t.split('You said: "')[1].split('"')[0] for t in texts(events)]
    assert said == ["one", "two", "three"]
    stream.close()


async def test_bad_lines_are_reported_once_and_skipped(make_client, settings):
    client = await make_client(settings)
    await create_session(client, session_id="s")
    stream = await open_stream(client, "s")
    await chat(client, "s", "hello")
    await until(stream, "execution_completed")
    stream.close()
    await client.close()
    log = settings.home / "sessions" / "s" / "events.jsonl"
    lines = log.read_bytes().splitlines(True)
    garbage = [b"\x00" * 20 + b"\n", b'{"seq":99,"type":"client_in\n', b'{"seq":"\xff\xfe"}\n']
    damaged = lines[:2] + garbage + lines[2:]
    log.write_bytes(b"".join(damaged))
    offsets = [sum(len(x) for x in damaged[:i]) for i in range(2, 5)]
    meta = json.loads((log.parent / "meta.json").read_text())
    (log.parent / "meta.json").write_text(json.dumps({**meta, "status": "live"}))

    for _ in range(2):  # reported at the first resume only
        client = await make_client(settings)
        assert (await client.get("/api/sessions/s")).status == 200
        reported = [e["data"] for e in read_events(client, "log_corrupt")]
        await client.close()
    assert reported == [{"offset": o, "length": len(g) - 1} for o, g in zip(offsets, garbage,
                                                                             strict=True)]
