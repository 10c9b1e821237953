"""The queen under awkward conditions: blank replies, large tool output, badly timed cancels.

Each test would leave a session stuck (every later turn refused by the API) or lose an input
if the behaviour it pins down regressed.
"""

from __future__ import annotations

import asyncio

import orjson
import pytest

from hive_server import keys
from hive_server.models.events import Event
from hive_server.services.runtime.agent_loop import CONTEXT_CHARS
from hive_server.services.runtime.conversation import append_message, normalize, rebuild_from_file
from hive_server.services.runtime.queen import resumed_results
from tests.conftest import create_session
from tests.fakes import error, text_turn, tool_turn, validate_request
from tests.queen_support import (
    chat,
    claude,
    of_type,
    open_stream,
    read_log,
    texts,
    until,
    until_any,
)


@pytest.fixture
async def claude_client(fake_url, make_client, settings):
    return await make_client(settings, llm=claude(fake_url))


async def test_a_whitespace_only_reply_does_not_wedge_the_conversation(claude_client, fake):
    fake.script(text_turn("\n\n"), text_turn("Still here."))
    await create_session(claude_client, session_id="s")
    stream = await open_stream(claude_client, "s")

    await chat(claude_client, "s", "hi")
    await until(stream, "execution_completed")
    await chat(claude_client, "s", "hello?")
    events = await until_any(stream, "execution_completed", "execution_failed")

    assert fake.rejected == []
    assert texts(events) == ["Still here."]
    assert fake.requests[-1]["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "hi"},
                                     {"type": "text", "text": "hello?"}]}]
    stream.close()


async def test_every_request_fits_the_context_even_after_a_large_execution_failed(
        claude_client, fake, settings):
    await create_session(claude_client, session_id="s")
    workspace = settings.home / "sessions" / "s" / "workspace"
    for name in ("a.txt", "b.txt", "c.txt"):
        (workspace / name).write_text(name[0] * 200_000)
    fake.script(tool_turn([("read_file", {"path": n}) for n in ("a.txt", "b.txt", "c.txt")]),
                error(400, message="prompt is too long"), text_turn("Yes."))
    stream = await open_stream(claude_client, "s")

    await chat(claude_client, "s", "read the three files")
    await until(stream, "execution_failed")
    await chat(claude_client, "s", "done?")  # joins the results: no cut point after them
    events = await until(stream, "execution_completed")

    assert texts(events) == ["Yes."] and fake.rejected == []
    sizes = [len(orjson.dumps(request["messages"])) for request in fake.requests]
    assert max(sizes) <= CONTEXT_CHARS, sizes
    last = fake.requests[-1]["messages"]
    assert last[0] == {"role": "user", "content": [
        {"type": "text", "text": "read the three files"}]}
    results = last[-1]["content"]
    assert results[-1] == {"type": "text", "text": "done?"}
    assert results[2]["content"] == "c" * 200_000  # the newest output is kept whole
    assert "cut to fit the context" in results[0]["content"]
    logged = of_type(read_log(settings.home, "s"), "tool_call_completed")
    assert [len(e["data"]["result"]) for e in logged] == [200_000] * 3  # the log keeps all
    stream.close()


async def test_a_cancel_that_lands_before_the_execution_starts_loses_nothing(client, api):
    await api.create_session(session_id="s")
    live = client.app[keys.SESSIONS].get("s")
    stream = await api.events("s")

    delivery = asyncio.ensure_future(live.queen.deliver("hello"))
    for _ in range(100):
        if live.queen.busy:
            break
        await asyncio.sleep(0)
    assert await live.queen.cancel()
    received, _ = await delivery
    await api.chat("s", "again")
    events = await until(stream, "execution_completed")

    first = of_type(events, "execution_started")[0]
    assert first["data"]["input_seq"] == received.seq
    assert of_type(events, "execution_cancelled")[0]["execution_id"] == first["execution_id"]
    assert texts(events)[-1].endswith('You said: "hello\nagain".')  # the model got both
    stream.close()
    assert (await client.delete("/api/sessions/s")).status == 200
    rebuilt = rebuild_from_file(live.journal.dir / "events.jsonl")
    assert rebuilt.pending == []
    assert rebuilt.messages == normalize(live.queen.messages)


async def test_a_chat_right_after_a_cancel_of_ask_user_is_a_new_input_not_a_lost_answer(
        client, api):
    await api.create_session(session_id="s")
    queen = client.app[keys.SESSIONS].get("s").queen
    stream = await api.events("s")
    await api.chat("s", "ask me")
    await until(stream, "client_input_requested")

    cancelling = asyncio.ensure_future(queen.cancel())
    await asyncio.sleep(0)  # the cancel is under way; the parked execution has not seen it yet
    received, _ = await queen.deliver("something else")
    assert await cancelling
    assert received.data["answers_request_seq"] is None
    events = await until(stream, "execution_completed")

    [started] = of_type(events, "execution_started")
    assert started["data"]["input_seq"] == received.seq
    stream.close()


async def test_a_crash_after_any_event_leaves_a_history_the_api_accepts(client, api, tmp_path):
    await api.create_session(session_id="s")
    stream = await api.events("s")
    for message in ("hello", "call:get_time {}\ncall:list_files {}\ncall:nope {}", "ask me"):
        await api.chat("s", message)
        await until(stream, "llm_turn_complete")
    await api.chat("s", "the answer")
    await until(stream, "execution_completed")
    await api.chat("s", 'call:ask_user {"question": "A?"}\ncall:get_time {}')
    await until(stream, "client_input_requested")
    assert (await (await client.post("/api/sessions/s/cancel")).json())["cancelled"]
    await api.chat("s", "bye")
    await until(stream, "execution_completed")
    live = client.app[keys.SESSIONS].get("s")
    stream.close()
    assert (await client.delete("/api/sessions/s")).status == 200
    lines = (live.journal.dir / "events.jsonl").read_bytes().splitlines(keepends=True)

    cut = tmp_path / "cut.jsonl"
    for end in range(len(lines) + 1):
        cut.write_bytes(b"".join(lines[:end]))
        rebuilt = rebuild_from_file(cut)
        messages = [*rebuilt.messages]
        parked = rebuilt.tracker.parked(rebuilt.open_results)
        if parked is not None:  # the resumed queen's question: the next chat answers it
            append_message(messages, resumed_results(messages, parked, "after the restart"))
        for _, data in rebuilt.pending:  # what the resumed queen runs next
            append_message(messages, {"role": "user", "content": data.message})
        if parked is None:
            append_message(messages, {"role": "user", "content": "after the restart"})
        problem = validate_request({"model": "m", "max_tokens": 1, "messages": messages})
        assert problem is None, (end, problem)
    assert rebuilt.messages == normalize(live.queen.messages) and rebuilt.pending == []


def test_a_worker_turn_whose_tool_input_names_the_queen_stream_stays_out(tmp_path):
    def line(seq: int, kind: str, data: dict, stream_id: str = "queen") -> bytes:
        return Event(seq=seq, type=kind, session_id="s", stream_id=stream_id,
                     data=data).to_json() + b"\n"

    use = {"type": "tool_use", "id": "toolu_w", "name": "tag", "input": {"stream_id": "queen"}}
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"".join([
        line(1, "client_input_received", {"message": "hi", "source": "user"}),
        line(2, "execution_started", {"trigger": "user", "input_seq": 1}),
        line(3, "llm_turn_complete", {"message": {"role": "assistant", "content": [use]}},
             stream_id="worker:w1"),
        line(4, "llm_turn_complete", {"message": {"role": "assistant", "content": "hello"}}),
        line(5, "execution_completed", {"turns": 1, "usage": {}})]))

    assert rebuild_from_file(path).messages == [
        {"role": "user", "content": [{"type": "text", "text": "hi"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "hello"}]}]
