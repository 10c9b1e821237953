"""The offline model: its five answering rules, chunked streaming, determinism."""

from __future__ import annotations

from typing import Any

from hive_server.llm.base import TextDelta, ToolSpec, TurnResult
from hive_server.llm.offline import OfflineClient
from tests.fakes import validate_request

SCHEMA = {"type": "object"}
GET_TIME = ToolSpec("get_time", "Current time", SCHEMA)
ADD = ToolSpec("add", "Add numbers", SCHEMA)
RUN_WORKER = ToolSpec("run_worker", "Hand a task to a worker", SCHEMA)
ASK_USER = ToolSpec("ask_user", "Ask the user a question", SCHEMA)


def user(content: str | list[dict[str, Any]]) -> dict[str, Any]:
    return {"role": "user", "content": content}


async def run(messages: list[dict[str, Any]], tools: list[ToolSpec] | None = None,
              system: str = "", client: OfflineClient | None = None,
              ) -> tuple[list[str], TurnResult]:
    deltas: list[str] = []
    results: list[TurnResult] = []
    llm = client or OfflineClient()
    async for item in llm.stream_turn(system=system, messages=messages, tools=tools or []):
        if isinstance(item, TextDelta):
            assert not results
            deltas.append(item.text)
        else:
            results.append(item)
    assert len(results) == 1
    return deltas, results[0]


async def test_a_plain_message_is_echoed_with_its_number_in_the_conversation():
    _, result = await run([user("Hello there")])

    assert result.text == ('[offline model] Message #1 of this conversation. '
                           'You said: "Hello there".')
    assert result.stop_reason == "end_turn"
    assert result.tool_uses == []
    assert result.model == "offline-1"


async def test_the_reply_shows_earlier_turns_and_the_system_prompts_first_line():
    messages = [user("First question"), {"role": "assistant", "content": "An answer"},
                user([{"type": "text", "text": "Second question"}])]

    _, result = await run(messages, system="\nYou are Ada, the queen.\nBe kind.")

    assert result.text == ('[offline model] (as You are Ada, the queen.) Message #2 of this '
                           'conversation. You said: "Second question". Previous: "First question".')


async def test_tool_result_only_messages_do_not_count_as_user_turns():
    messages = [user("call:get_time"),
                {"role": "assistant", "content": [
                    {"type": "tool_use", "id": "t1", "name": "get_time", "input": {}}]},
                user([{"type": "tool_result", "tool_use_id": "t1", "content": "noon"}]),
                {"role": "assistant", "content": "Tool get_time returned: noon"},
                user("thanks")]

    _, result = await run(messages, [GET_TIME])

    assert 'Message #2 of this conversation. You said: "thanks". Previous: "call:get_time".' in (
        result.text)


async def test_call_lines_become_parallel_tool_uses_with_deterministic_ids():
    text = 'Please:\ncall:get_time {"zone": "UTC"}\ncall:add {"a": 1, "b": 2}\ncall:nope {}'

    deltas, result = await run([user(text)], [GET_TIME, ADD])

    assert result.stop_reason == "tool_use"
    assert result.content == [
        {"type": "text", "text": "Calling get_time, add. Not available: nope."},
        {"type": "tool_use", "id": "toolu_off_1_0", "name": "get_time", "input": {"zone": "UTC"}},
        {"type": "tool_use", "id": "toolu_off_1_1", "name": "add", "input": {"a": 1, "b": 2}}]
    assert "".join(deltas) == result.text


async def test_tool_use_ids_never_repeat_one_still_in_the_window():
    # a window cut out of a long conversation: this call was made when 5 messages preceded it
    earlier = {"type": "tool_use", "id": "toolu_off_5_0", "name": "get_time", "input": {}}
    window = [user("call:get_time"), {"role": "assistant", "content": [earlier]},
              user([{"type": "tool_result", "tool_use_id": "toolu_off_5_0", "content": "noon"}]),
              {"role": "assistant", "content": "Tool get_time returned: noon"},
              user("call:get_time\ncall:get_time")]

    _, result = await run(window, [GET_TIME])

    assert [use["id"] for use in result.tool_uses] == ["toolu_off_6_0", "toolu_off_6_1"]
    answers = [{"type": "tool_result", "tool_use_id": use["id"], "content": "1pm"}
               for use in result.tool_uses]
    follow_up = [*window, result.message(), user(answers)]
    assert validate_request({"model": "m", "max_tokens": 1, "messages": follow_up}) is None


async def test_a_call_line_without_json_calls_with_an_empty_input():
    _, result = await run([user("call:get_time")], [GET_TIME])

    assert result.tool_uses == [
        {"type": "tool_use", "id": "toolu_off_1_0", "name": "get_time", "input": {}}]


async def test_only_unknown_or_malformed_calls_end_the_turn_without_tools():
    _, result = await run([user("call:nope\ncall:add [1, 2]")], [GET_TIME, ADD])

    assert result.text == "No tools called. Not available: nope, add."
    assert result.stop_reason == "end_turn" and result.tool_uses == []


async def test_tool_results_are_summarised_and_never_followed_by_more_calls():
    messages = [user("call:get_time\ncall:add"),
                {"role": "assistant", "content": [
                    {"type": "text", "text": "Calling get_time, add."},
                    {"type": "tool_use", "id": "t1", "name": "get_time", "input": {}},
                    {"type": "tool_use", "id": "t2", "name": "add", "input": {}}]},
                user([{"type": "tool_result", "tool_use_id": "t1",
                       "content": [{"type": "text", "text": "x" * 300}]},
                      {"type": "tool_result", "tool_use_id": "t2", "content": "bad input",
                       "is_error": True},
                      {"type": "text", "text": "call:get_time"}])]

    _, result = await run(messages, [GET_TIME, ADD])

    assert result.text == f"Tool get_time returned: {'x' * 200}\nTool add failed: bad input"
    assert result.stop_reason == "end_turn" and result.tool_uses == []


async def test_a_trigger_message_starts_a_worker_with_its_task():
    text = '[TRIGGER: timer/daily] Task: Summarise the inbox\nPayload: {"n": 3}'

    _, result = await run([user(text)], [RUN_WORKER])

    assert result.text == "Calling run_worker."
    assert result.tool_uses == [{"type": "tool_use", "id": "toolu_off_1_0", "name": "run_worker",
                                 "input": {"task": "Summarise the inbox"}}]


async def test_a_trigger_without_a_task_line_hands_over_the_whole_text():
    _, result = await run([user("[TRIGGER: webhook/push] something happened")], [RUN_WORKER])

    assert result.tool_uses[0]["input"] == {
        "task": "[TRIGGER: webhook/push] something happened"}


async def test_a_trigger_without_run_worker_is_just_echoed():
    _, result = await run([user("[TRIGGER: timer/t] Task: x")], [ASK_USER])

    assert result.tool_uses == [] and "You said: \"[TRIGGER: timer/t] Task: x\"" in result.text


async def test_ask_me_calls_ask_user_when_offered():
    _, asked = await run([user("Please ASK ME what to do")], [ASK_USER])
    _, echoed = await run([user("Please ask me what to do")], [GET_TIME])

    assert asked.tool_uses == [{"type": "tool_use", "id": "toolu_off_1_0", "name": "ask_user",
                                "input": {"question": "What would you like me to do next?"}}]
    assert asked.stop_reason == "tool_use"
    assert echoed.tool_uses == [] and echoed.stop_reason == "end_turn"


async def test_the_reply_streams_in_chunks_of_a_few_words():
    deltas, result = await run([user("one two three four five six seven")],
                               client=OfflineClient(chunk_words=2))

    assert len(deltas) > 3
    assert all(len(delta.split()) <= 2 for delta in deltas)
    assert "".join(deltas) == result.text


async def test_usage_counts_words():
    _, result = await run([user("one two three")], system="sys")

    assert result.usage.input_tokens > 3
    assert result.usage.output_tokens == len(result.text.split())


async def test_the_same_input_gives_the_same_output():
    messages = [user("Hello\ncall:get_time {\"zone\": \"UTC\"}")]

    first = await run(messages, [GET_TIME], system="Queen")
    second = await run(messages, [GET_TIME], system="Queen")

    assert first == second


async def test_a_requested_model_is_not_claimed():
    client = OfflineClient(default_model="offline-test")
    items = [item async for item in client.stream_turn(
        system="", messages=[user("hi")], tools=[], model="claude-sonnet-5-5")]

    assert items[-1].model == "offline-test"
    await client.aclose()


async def test_call_lines_inside_a_fenced_payload_are_data_not_instructions():
    payload = '{"note": "call:get_time {}"}\ncall:get_time {}'
    text = ("[TRIGGER: webhook/push] Task: Triage it\nPayload (untrusted):\n````\n"
            f"{payload}\n````")

    _, result = await run([user(text)], [RUN_WORKER, GET_TIME])

    assert [use["name"] for use in result.tool_uses] == ["run_worker"]
    _, plain = await run([user("call:get_time {}\n```\ncall:run_worker {}\n```")],
                         [RUN_WORKER, GET_TIME])
    assert [use["name"] for use in plain.tool_uses] == ["get_time"]
