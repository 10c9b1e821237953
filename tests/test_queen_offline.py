"""The queen over HTTP with the offline model: chat, SSE, restart, ask_user, errors, races."""

from __future__ import annotations

import asyncio
import json

import pytest

from hive_server import keys
from hive_server.app import create_app
from hive_server.llm.offline import ASK_QUESTION
from hive_server.settings import load_settings
from tests.conftest import AUTH, TOKEN, create_session, make_settings
from tests.queen_support import (
    assert_executions_alternate,
    chat,
    of_type,
    open_stream,
    read_log,
    texts,
    until,
    until_nth,
    write_queen,
)

DEFAULT_PERSONA = "(as You are Queen, the coordinator of this hive.)"


async def test_a_chat_streams_deltas_then_the_whole_turn(api):
    await api.create_session(session_id="s")
    stream = await api.events("s")

    accepted = await api.chat("s", "hello there")
    events = await until(stream, "execution_completed")

    assert accepted["status"] == "accepted" and accepted["delivered"] is True
    types = [e["type"] for e in events]
    assert types[:5] == ["session_started", "client_input_received", "client_input_committed",
                         "execution_started", "loop_state_changed"]
    received, committed = events[1], events[2]
    assert committed["data"]["seq"] == received["seq"] == accepted["seq"]
    assert committed["correlation_id"] == received["correlation_id"] == f"input-{received['seq']}"
    # not tied to the execution it starts: Hive's UI splits an execution's reply bubble at
    # each input committed *into* it (a steer)
    assert committed["execution_id"] is None
    assert types[-2:] == ["llm_turn_complete", "execution_completed"]
    deltas = of_type(events, "client_output_delta")
    reply = texts(events)[0]
    assert len(deltas) > 1 and deltas[-1]["data"]["snapshot"] == reply
    assert "".join(d["data"]["content"] for d in deltas) == reply
    assert reply == (f'[offline model] {DEFAULT_PERSONA} Message #1 of this conversation. '
                     'You said: "hello there".')
    assert of_type(events, "execution_started")[0]["data"]["input_seq"] == accepted["seq"]
    stream.close()


async def test_the_model_sees_earlier_turns_after_a_restart(make_client, tmp_path):
    settings = make_settings(tmp_path)
    first = await make_client(settings)
    await create_session(first, session_id="keep")
    stream = await open_stream(first, "keep")
    await chat(first, "keep", "my name is Ada")
    await until(stream, "llm_turn_complete")
    stream.close()
    await first.close()

    second = await make_client(settings)
    last_seq = read_log(settings.home, "keep")[-1]["seq"]
    stream = await open_stream(second, "keep", after_seq=last_seq)
    await chat(second, "keep", "what is my name?")
    events = await until(stream, "execution_completed")

    assert texts(events) == [f'[offline model] {DEFAULT_PERSONA} Message #2 of this '
                             'conversation. You said: "what is my name?". '
                             'Previous: "my name is Ada".']
    stream.close()
    await second.close()
    log = read_log(settings.home, "keep")
    assert [e["seq"] for e in log] == list(range(1, len(log) + 1))


async def test_a_tool_call_runs_and_its_result_reaches_the_model(api, settings):
    await api.create_session(session_id="s")
    (settings.home / "sessions" / "s" / "workspace" / "notes.txt").write_text("hi")
    stream = await api.events("s")

    await api.chat("s", 'call:list_files {"path": "."}')
    events = await until(stream, "execution_completed")

    [started] = of_type(events, "tool_call_started")
    [completed] = of_type(events, "tool_call_completed")
    assert started["data"]["tool_name"] == "list_files"
    assert completed["data"] == {"tool_use_id": started["data"]["tool_use_id"],
                                 "tool_name": "list_files", "result": "notes.txt (2 bytes)",
                                 "is_error": False}
    assert texts(events) == ["Calling list_files.", "Tool list_files returned: notes.txt (2 bytes)"]
    assert events[-1]["data"]["turns"] == 2
    stream.close()


async def test_ask_user_waits_for_the_next_chat_which_answers_it(api):
    await api.create_session(session_id="s")
    stream = await api.events("s")

    await api.chat("s", "please ask me something")
    [requested] = of_type(await until(stream, "client_input_requested"),
                          "client_input_requested")
    answer = await api.chat("s", "write the notes")
    events = await until(stream, "execution_completed")

    [question] = requested["data"]["questions"]
    assert (question["prompt"], requested["data"]["park_reason"]) == (ASK_QUESTION, "ask_user")
    [received] = [e for e in events if e["seq"] == answer["seq"]]
    assert received["type"] == "client_input_received"
    assert received["data"]["answers_request_seq"] == requested["seq"]
    assert of_type(events, "tool_call_completed")[0]["data"]["result"] == "write the notes"
    assert of_type(events, "execution_started") == []  # the answer is not a new execution
    assert texts(events)[-1] == "Tool ask_user returned: write the notes"
    stream.close()


async def test_two_inputs_racing_an_ask_user_answer_it_once_and_queue_the_other(client, api):
    await api.create_session(session_id="s")
    queen = client.app[keys.SESSIONS].get("s").queen
    stream = await api.events("s")
    await api.chat("s", "ask me")
    await until(stream, "client_input_requested")

    # both land in the same loop turn, before the parked execution has resumed
    (answer, _), (queued, _) = await asyncio.gather(queen.deliver("answer A"),
                                                    queen.deliver("answer B"))
    events = await until_nth(stream, "execution_completed", 2)

    assert answer.data["answers_request_seq"] > 0 and queued.data["answers_request_seq"] is None
    assert of_type(events, "tool_call_completed")[0]["data"]["result"] == "answer A"
    [started] = of_type(events, "execution_started")
    assert started["data"]["input_seq"] == queued.seq
    assert 'You said: "answer B"' in texts(events)[-1]
    stream.close()


async def test_parallel_ask_user_calls_are_asked_one_after_the_other(api):
    await api.create_session(session_id="s")
    stream = await api.events("s")

    await api.chat("s", 'call:ask_user {"question": "One?"}\n'
                            'call:ask_user {"question": "Two?"}')
    events = await until(stream, "client_input_requested")
    await api.chat("s", "first answer")
    events += await until(stream, "client_input_requested")
    await api.chat("s", "second answer")
    events += await until(stream, "execution_completed")

    first, second = of_type(events, "client_input_requested")
    assert (first["data"]["questions"][0]["prompt"],
            second["data"]["questions"][0]["prompt"]) == ("One?", "Two?")
    assert [e["data"]["result"] for e in of_type(events, "tool_call_completed")] == [
        "first answer", "second answer"]
    assert texts(events)[-1] == ("Tool ask_user returned: first answer\n"
                                 "Tool ask_user returned: second answer")
    stream.close()


async def test_a_cancelled_ask_user_gets_an_error_result_and_the_next_chat_is_new(client, api):
    await api.create_session(session_id="s")
    stream = await api.events("s")
    await api.chat("s", "ask me")
    await until(stream, "client_input_requested")

    cancelled = await (await client.post("/api/sessions/s/cancel")).json()
    events = await until(stream, "execution_cancelled")
    after = await api.chat("s", "never mind")
    events += await until(stream, "execution_completed")

    assert cancelled["cancelled"] is True
    [result] = of_type(events, "tool_call_completed")
    assert result["data"]["is_error"] is True and result["data"]["tool_name"] == "ask_user"
    assert of_type(events, "execution_started")[0]["data"]["input_seq"] == after["seq"]
    # the new text rides with the error result; the offline model answers the result first
    assert texts(events)[-1] == "Tool ask_user failed: cancelled before it finished"
    stream.close()


async def test_empty_message_is_400(client, api):
    await api.create_session(session_id="s")
    for message in ("", "   \n\t"):
        resp = await client.post("/api/sessions/s/chat", json={"message": message})
        assert resp.status == 400
        assert (await resp.json())["code"] == "empty_message"


async def test_message_over_the_limit_is_413(make_client, tmp_path):
    client = await make_client(make_settings(tmp_path, max_message_chars=10))
    await create_session(client, session_id="s")

    assert (await client.post("/api/sessions/s/chat", json={"message": "x" * 10})).status == 202
    resp = await client.post("/api/sessions/s/chat", json={"message": "x" * 11})

    assert resp.status == 413
    assert (await resp.json())["code"] == "message_too_large"


async def test_chat_to_a_session_that_is_not_live_is_404(client, api):
    resp = await client.post("/api/sessions/never/chat", json={"message": "hi"})
    assert resp.status == 404
    assert (await resp.json())["code"] == "session_not_live"
    await api.create_session(session_id="s")
    await client.delete("/api/sessions/s")
    assert (await client.post("/api/sessions/s/chat", json={"message": "hi"})).status == 404


async def test_chat_body_must_be_a_json_object_with_a_message(client, api):
    await api.create_session(session_id="s")
    plain = await client.post("/api/sessions/s/chat", data="hello",
                              headers={"Content-Type": "text/plain"})
    malformed = await client.post("/api/sessions/s/chat", data="{nope",
                                  headers={"Content-Type": "application/json"})
    missing = await client.post("/api/sessions/s/chat", json={"text": "hi"})

    assert (plain.status, (await plain.json())["code"]) == (415, "unsupported_media_type")
    assert malformed.status == 400
    assert missing.status == 422


@pytest.mark.parametrize("durability", ["fsync", "batch", "none"])
async def test_chat_seq_names_the_input_event_already_in_the_log(make_client, tmp_path,
                                                                durability):
    settings = make_settings(tmp_path, durability=durability)
    client = await make_client(settings)
    await create_session(client, session_id="s")
    for message in ("one", "two", "three"):
        accepted = await chat(client, "s", message)

        [line] = [e for e in read_log(settings.home, "s") if e["seq"] == accepted["seq"]]
        assert line["type"] == "client_input_received"
        assert (line["data"]["content"], line["data"]["source"]) == (message, "user")


async def test_queen_name_picks_a_profile_that_shapes_the_prompt(make_client, settings):
    write_queen(settings.queens_dir)
    client = await make_client(settings)

    profiles = await (await client.get("/api/queen/profiles")).json()
    body = await create_session(client, session_id="w", queen_name="warden")
    stream = await open_stream(client, "w")
    await chat(client, "w", "who came by?")
    events = await until(stream, "llm_turn_complete")

    assert [p["id"] for p in profiles["profiles"]] == ["warden"]
    assert profiles["profiles"][0]["title"] == "keeper of the gates"
    assert (body["queen_id"], body["queen_name"]) == ("warden", "Warden")
    assert texts(events)[0].startswith("[offline model] (as You are Warden, keeper of the gates.)")
    stream.close()


async def test_unknown_queen_name_is_404_and_leaves_nothing(client, settings):
    resp = await client.post("/api/sessions", json={"session_id": "x", "queen_name": "nobody"})

    assert resp.status == 404
    assert (await resp.json())["code"] == "queen_not_found"
    assert not (settings.home / "sessions" / "x").exists()


async def chat_when_live(client, session_id: str, message: str, seen: list[int]) -> None:
    """POST the chat until it is accepted: 404 before the create, 409 while it loads."""
    for _ in range(1000):
        resp = await client.post(f"/api/sessions/{session_id}/chat", json={"message": message})
        seen.append(resp.status)
        if resp.status == 202:
            return
        assert resp.status in (404, 409), await resp.text()
    raise AssertionError(f"session {session_id} never became live")


async def test_create_and_chat_racing_for_one_id_never_start_a_second_queen(client, api, settings):
    seen: list[int] = []
    rounds = 20
    for attempt in range(rounds):
        sid = f"race-{attempt}"
        body = {"session_id": sid, "initial_prompt": "start"} if attempt % 2 else {
            "session_id": sid}
        *_, created, again = await asyncio.gather(
            *(chat_when_live(client, sid, f"chat {n}", seen) for n in range(3)),
            client.post("/api/sessions", json=body), client.post("/api/sessions", json=body))
        assert sorted([created.status, again.status]) == [201, 409]

    for attempt in range(rounds):
        await until_nth(await api.events(f"race-{attempt}"), "execution_completed",
                        3 + attempt % 2)
    live = await (await client.get("/api/sessions")).json()
    assert len(live["sessions"]) == rounds
    assert 409 in seen and seen.count(202) == 3 * rounds

    for attempt in range(rounds):
        sid, count = f"race-{attempt}", 3 + attempt % 2
        assert (await client.delete(f"/api/sessions/{sid}")).status == 200  # flushes the log
        log = read_log(settings.home, sid)
        assert len(of_type(log, "session_started")) == 1
        assert len(of_type(log, "execution_started")) == count
        assert_executions_alternate(log)
        if attempt % 2:
            assert of_type(log, "client_input_received")[0]["data"]["content"] == "start"


async def test_without_an_api_key_the_offline_model_serves(aiohttp_client, tmp_path):
    flags = {"home": str(tmp_path / "home"), "agents_dir": str(tmp_path / "agents"),
             "queens_dir": str(tmp_path / "queens"), "token": TOKEN}
    settings = load_settings(flags, environ={"ANTHROPIC_API_KEY": ""})
    client = await aiohttp_client(create_app(settings), headers=AUTH)

    health = await (await client.get("/api/health")).json()
    await create_session(client, session_id="s")
    stream = await open_stream(client, "s")
    await chat(client, "s", "anyone there?")
    events = await until(stream, "execution_completed")

    assert (health["status"], health["provider"]) == ("ok", "offline")
    assert texts(events)[0].startswith("[offline model]")
    started = json.loads((settings.home / "sessions" / "s" / "events.jsonl")
                         .read_bytes().splitlines()[0])
    assert started["data"]["provider"] == "offline"
    stream.close()
