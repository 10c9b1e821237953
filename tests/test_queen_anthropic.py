"""The queen on the real ``anthropic`` SDK against the local fake Messages API, over HTTP + SSE."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest

from hive_server.core.clock import FakeClock
from tests.conftest import create_session, make_settings
from tests.fakes import error, overloaded, rate_limited, text_turn, tool_turn
from tests.queen_support import (
    MAX_RETRIES,
    chat,
    claude,
    of_type,
    open_stream,
    read_log,
    texts,
    until,
    until_nth,
    write_queen,
)


def user(*parts: str) -> dict:
    return {"role": "user", "content": [{"type": "text", "text": p} for p in parts]}


def assistant(text: str) -> dict:
    return {"role": "assistant", "content": [{"type": "text", "text": text}]}


@pytest.fixture
async def client(fake_url, make_client, settings):
    return await make_client(settings, llm=claude(fake_url))


@pytest.fixture
async def stream(client):
    await create_session(client, session_id="s")
    resp = await open_stream(client, "s")
    yield resp
    resp.close()


async def test_a_text_reply_streams_over_sse(api, fake, stream):
    fake.script(text_turn("Hello from the fake Claude, nice to meet you."))

    await api.chat("s", "hi")
    events = await until(stream, "execution_completed")

    deltas = of_type(events, "client_output_delta")
    assert len(deltas) > 1
    assert "".join(d["data"]["content"] for d in deltas) == texts(events)[0] == (
        "Hello from the fake Claude, nice to meet you.")
    [turn] = of_type(events, "llm_turn_complete")
    assert turn["data"]["model"] == "claude-test" and turn["data"]["stop_reason"] == "end_turn"
    [request] = fake.requests
    assert request["messages"] == [user("hi")]
    assert request["system"].startswith("You are Queen")
    assert {"ask_user", "get_time", "list_files"} <= {t["name"] for t in request["tools"]}


async def test_one_tool_call_goes_back_as_a_tool_result(api, fake, stream):
    fake.script(tool_turn([("get_time", {"timezone": "UTC"}, "toolu_t")], text="Checking."),
                text_turn("It is morning."))

    await api.chat("s", "what time is it?")
    events = await until(stream, "execution_completed")

    now = datetime.fromtimestamp(FakeClock().time(), UTC).isoformat()
    [done] = of_type(events, "tool_call_completed")
    assert done["data"] == {"tool_use_id": "toolu_t", "tool_name": "get_time", "result": now,
                            "is_error": False}
    assert texts(events) == ["Checking.", "It is morning."]
    assert fake.rejected == []
    assert fake.requests[1]["messages"][1:] == [
        {"role": "assistant", "content": [
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "toolu_t", "name": "get_time",
             "input": {"timezone": "UTC"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_t",
                                      "content": now, "is_error": False}]}]


async def test_parallel_tool_results_go_back_in_call_order(api, fake, stream):
    calls = [("ask_user", {"question": "Which zone?"}, "toolu_ask"),
             ("get_time", {}, "toolu_time"), ("read_file", {"path": "nope.txt"}, "toolu_read")]
    fake.script(tool_turn(calls), text_turn("All done."))

    await api.chat("s", "do three things")
    events = await until_nth(stream, "tool_call_completed", 2)  # ask_user is still waiting
    await api.chat("s", "UTC please")
    events += await until(stream, "execution_completed")

    finished = [e["data"]["tool_use_id"] for e in of_type(events, "tool_call_completed")]
    assert finished[-1] == "toolu_ask" and set(finished) == {"toolu_ask", "toolu_time",
                                                            "toolu_read"}
    assert fake.rejected == [] and texts(events)[-1] == "All done."
    results = fake.requests[1]["messages"][-1]["content"]
    assert [r["tool_use_id"] for r in results] == ["toolu_ask", "toolu_time", "toolu_read"]
    assert results[0]["content"] == "UTC please" and results[2]["is_error"] is True


async def test_ask_user_is_answered_by_the_next_chat(api, fake, stream):
    fake.script(tool_turn([("ask_user", {"question": "Which file?"}, "toolu_q")]),
                text_turn("Opening notes.txt."))

    await api.chat("s", "open a file")
    [asked] = of_type(await until(stream, "client_input_requested"), "client_input_requested")
    answer = await api.chat("s", "notes.txt")
    events = await until(stream, "execution_completed")

    assert [q["prompt"] for q in asked["data"]["questions"]] == ["Which file?"]
    parked, answered, resumed = events[:3]  # the question parks her; the answer resumes her
    assert parked["data"] == {"activity": "awaiting_user", "park_reason": "ask_user",
                              "interrupt_cause": None}
    assert answered["seq"] == answer["seq"]
    assert answered["data"]["answers_request_seq"] == asked["seq"]
    assert (resumed["type"], resumed["data"]["activity"]) == ("loop_state_changed", "executing")
    assert of_type(events, "execution_started") == []
    assert fake.requests[1]["messages"][-1]["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_q", "content": "notes.txt",
         "is_error": False}]
    assert texts(events) == ["Opening notes.txt."]


async def test_an_empty_reply_after_tool_results_keeps_the_history_valid(api, fake, stream):
    fake.script(tool_turn([("get_time", {}, "toolu_e")]), text_turn(""), text_turn("Yes."))

    await api.chat("s", "time?")
    events = await until(stream, "execution_completed")
    await api.chat("s", "still there?")
    await until(stream, "execution_completed")

    assert of_type(events, "llm_turn_complete")[-1]["data"]["message"]["content"] == []
    messages = fake.requests[-1]["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert [b["type"] for b in messages[-1]["content"]] == ["tool_result", "text"]
    assert fake.rejected == []


async def test_a_failure_after_tool_calls_leaves_a_history_the_api_accepts(api, fake,
                                                                           stream):
    fake.script(tool_turn([("get_time", {}, "toolu_f")]), error(400, message="bad luck"),
                text_turn("Recovered."))

    await api.chat("s", "time?")
    [failed] = of_type(await until(stream, "execution_failed"), "execution_failed")
    await api.chat("s", "try again")
    events = await until(stream, "execution_completed")

    assert failed["data"]["error_type"] == "invalid_request_error"
    assert texts(events) == ["Recovered."] and fake.rejected == []
    assert [b["type"] for b in fake.requests[-1]["messages"][-1]["content"]] == [
        "tool_result", "text"]


async def test_an_overloaded_529_is_retried_then_the_turn_succeeds(api, fake, stream):
    fake.script(overloaded(), text_turn("Made it."))

    await api.chat("s", "hello")
    events = await until(stream, "execution_completed")

    assert texts(events) == ["Made it."]
    assert of_type(events, "execution_failed") == []
    assert len(fake.requests) == 2


async def test_a_persistent_429_fails_the_execution_and_the_session_goes_on(client, api, fake,
                                                                            stream):
    fake.script(*[rate_limited() for _ in range(MAX_RETRIES + 1)])

    await api.chat("s", "first")
    [failed] = of_type(await until(stream, "execution_failed"), "execution_failed")
    health = await client.get("/api/health")
    fake.script(text_turn("Back again."))
    await api.chat("s", "second")
    events = await until(stream, "execution_completed")

    assert failed["data"]["error_type"] == "rate_limit_error"
    assert len(fake.requests) == MAX_RETRIES + 2 and health.status == 200
    assert texts(events) == ["Back again."]
    assert fake.requests[-1]["messages"] == [user("first", "second")]


async def test_cancel_mid_stream_closes_the_http_stream_and_the_queen_goes_on(client, api, fake,
                                                                              stream):
    hold = asyncio.Event()
    fake.script(text_turn("one two three four five six", hold=hold), text_turn("Next one."))
    try:
        await api.chat("s", "long answer please")
        await until(stream, "client_output_delta")
        resp = await client.post("/api/sessions/s/cancel")
        cancelled = await until(stream, "execution_cancelled")
        async with asyncio.timeout(5):
            await fake.disconnected.wait()

        assert await resp.json() == {"session_id": "s", "cancelled": True}
        assert of_type(cancelled, "llm_turn_complete") == [] and fake.completed == 0
        await api.chat("s", "short one")
        events = await until(stream, "execution_completed")
    finally:
        hold.set()

    assert texts(events) == ["Next one."]
    assert fake.requests[-1]["messages"] == [user("long answer please", "short one")]
    idle = await client.post("/api/sessions/s/cancel")
    assert (await idle.json())["cancelled"] is False


async def test_chats_during_a_turn_are_queued_and_run_in_order(api, fake, stream):
    hold = asyncio.Event()
    fake.script(text_turn("Reply one.", hold=hold), text_turn("Reply two."),
                text_turn("Reply three."))
    try:
        first = await api.chat("s", "one")
        events = await until(stream, "client_output_delta")
        second = await api.chat("s", "two")
        third = await api.chat("s", "three")
    finally:
        hold.set()
    events += await until_nth(stream, "execution_completed", 3)

    assert (second["queued"], third["queued"]) == (1, 2)
    started = [e["data"]["input_seq"] for e in of_type(events, "execution_started")]
    assert started == [first["seq"], second["seq"], third["seq"]]
    assert texts(events) == ["Reply one.", "Reply two.", "Reply three."]
    assert fake.requests[2]["messages"] == [user("one"), assistant("Reply one."), user("two"),
                                            assistant("Reply two."), user("three")]


async def test_a_full_inbox_refuses_the_chat_with_429_and_records_nothing(
        fake, fake_url, make_client, tmp_path):
    settings = make_settings(tmp_path, queen_inbox_size=1)
    client = await make_client(settings, llm=claude(fake_url))
    await create_session(client, session_id="s")
    stream = await open_stream(client, "s")
    hold = asyncio.Event()
    fake.script(text_turn("Busy reply.", hold=hold), text_turn("Queued reply."))
    try:
        await chat(client, "s", "one")
        await until(stream, "client_output_delta")
        await chat(client, "s", "two")
        refused = await client.post("/api/sessions/s/chat", json={"message": "three"})
    finally:
        hold.set()
    await until_nth(stream, "execution_completed", 2)

    assert (refused.status, (await refused.json())["code"]) == (429, "inbox_full")
    inputs = of_type(read_log(settings.home, "s"), "client_input_received")
    assert [e["data"]["content"] for e in inputs] == ["one", "two"]
    stream.close()


async def test_after_a_restart_the_model_gets_the_earlier_turns(fake, fake_url, make_client,
                                                                tmp_path):
    settings = make_settings(tmp_path)
    fake.script(tool_turn([("get_time", {}, "toolu_1")]), text_turn("Noted: teal."),
                text_turn("You said teal."))
    first = await make_client(settings, llm=claude(fake_url))
    await create_session(first, session_id="keep")
    stream = await open_stream(first, "keep")
    await chat(first, "keep", "remember teal")
    await until(stream, "execution_completed")
    stream.close()
    await first.close()

    second = await make_client(settings, llm=claude(fake_url))
    stream = await open_stream(second, "keep", read_log(settings.home, "keep")[-1]["seq"])
    await chat(second, "keep", "which colour?")
    events = await until(stream, "execution_completed")

    assert texts(events) == ["You said teal."] and fake.rejected == []
    messages = fake.requests[-1]["messages"]
    assert messages[0] == user("remember teal")
    assert messages[1]["content"][0]["type"] == "tool_use"
    assert messages[2]["content"][0]["tool_use_id"] == "toolu_1"
    assert messages[3:] == [assistant("Noted: teal."), user("which colour?")]
    assert messages == fake.requests[1]["messages"] + messages[3:]
    stream.close()


async def test_an_input_queued_at_shutdown_is_handled_after_the_restart(fake, fake_url,
                                                                        make_client, tmp_path):
    settings = make_settings(tmp_path)
    hold = asyncio.Event()
    fake.script(text_turn("Never finished.", hold=hold), text_turn("Handled the second."))
    first = await make_client(settings, llm=claude(fake_url))
    await create_session(first, session_id="keep")
    stream = await open_stream(first, "keep")
    try:
        await chat(first, "keep", "first")
        await until(stream, "client_output_delta")
        queued = await chat(first, "keep", "second")
        stream.close()
        await first.close()
    finally:
        hold.set()

    second = await make_client(settings, llm=claude(fake_url))
    stream = await open_stream(second, "keep")
    events = await until(stream, "execution_completed")

    types = [e["type"] for e in events]
    assert types.count("execution_cancelled") == 1 and types.count("execution_started") == 2
    assert of_type(events, "execution_started")[-1]["data"]["input_seq"] == queued["seq"]
    assert texts(events) == ["Handled the second."]
    assert fake.requests[-1]["messages"] == [user("first", "second")]
    stream.close()


async def test_a_pending_input_after_a_restart_sees_the_reloaded_colony(fake, fake_url,
                                                                        make_client, tmp_path):
    settings = make_settings(tmp_path)
    agent = settings.agents_dir / "notes"
    agent.mkdir(parents=True)
    (agent / "agent.json").write_text(json.dumps({
        "name": "Notes", "description": "Keeps notes.",
        "workers": {"scribe": {"description": "writes notes"}}}))
    hold = asyncio.Event()
    fake.script(text_turn("Never finished.", hold=hold), text_turn("Handled."))
    first = await make_client(settings, llm=claude(fake_url))
    await create_session(first, session_id="c", agent_id="notes")
    stream = await open_stream(first, "c")
    try:
        await chat(first, "c", "first")
        await until(stream, "client_output_delta")
        await chat(first, "c", "second")
        stream.close()
        await first.close()
    finally:
        hold.set()

    second = await make_client(settings, llm=claude(fake_url))
    stream = await open_stream(second, "c")
    await until_nth(stream, "execution_started", 2)
    await until(stream, "execution_completed")

    for request in fake.requests:
        assert "run_worker" in {tool["name"] for tool in request["tools"]}
        assert "Loaded colony:" in request["system"]
    stream.close()


async def test_the_queen_profile_shapes_the_system_prompt(fake, fake_url, make_client, settings):
    write_queen(settings.queens_dir)
    client = await make_client(settings, llm=claude(fake_url))
    fake.script(text_turn("Nobody."))
    await create_session(client, session_id="w", queen_name="Warden")
    stream = await open_stream(client, "w")

    await chat(client, "w", "who came by?")
    await until(stream, "execution_completed")

    assert fake.requests[0]["system"] == (
        "You are Warden, keeper of the gates.\n\nCore traits: watchful, terse.\n\n"
        "Skills: counting visitors.\n\nAnswer in one short sentence.")
    stream.close()
