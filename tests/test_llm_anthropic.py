"""AnthropicClient through the real SDK against the local fake Messages API. The SDK is imported
by the tests, not when the module is collected (tests/queen_support.py's ``claude``: why)."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest

from hive_server.llm.base import LLMError, TextDelta, ToolSpec, TurnResult, Usage
from hive_server.llm.factory import make_llm
from hive_server.llm.offline import OfflineClient
from tests.fakes import (
    dropped,
    error,
    overloaded,
    rate_limited,
    spend_limit,
    stream_error,
    text_turn,
    tool_turn,
)

if TYPE_CHECKING:
    from hive_server.llm.anthropic import AnthropicClient

pytestmark = pytest.mark.anthropic_sdk
MAX_RETRIES = 2
HELLO = [{"role": "user", "content": "Hello"}]
GET_TIME = ToolSpec("get_time", "Current time in a zone",
                    {"type": "object", "properties": {"zone": {"type": "string"}}})
ADD = ToolSpec("add", "Add two numbers", {"type": "object"})


class RecordingSleep:
    """Stands in for asyncio.sleep: records the delays, never waits."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await asyncio.sleep(0)


@pytest.fixture
def sleep() -> RecordingSleep:
    return RecordingSleep()


@pytest.fixture
async def llm(fake_url, sleep):
    from hive_server.llm.anthropic import AnthropicClient

    client = AnthropicClient("test-key", base_url=fake_url,
                             default_model="claude-test", max_retries=MAX_RETRIES, sleep=sleep)
    yield client
    await client.aclose()


async def run_turn(llm: AnthropicClient, messages: list[dict[str, Any]],
                   tools: list[ToolSpec] | None = None,
                   system: str = "") -> tuple[list[str], TurnResult]:
    deltas: list[str] = []
    results: list[TurnResult] = []
    async for item in llm.stream_turn(system=system, messages=messages, tools=tools or []):
        if isinstance(item, TextDelta):
            assert not results, "a delta came after the TurnResult"
            deltas.append(item.text)
        else:
            results.append(item)
    assert len(results) == 1
    return deltas, results[0]


async def test_text_turn_streams_deltas_in_order_then_the_whole_message(llm, fake):
    fake.script(text_turn("Hello there, how are you today?", input_tokens=12, output_tokens=9))

    deltas, result = await run_turn(llm, HELLO, system="Be brief.")

    assert len(deltas) > 1
    assert "".join(deltas) == "Hello there, how are you today?"
    assert result.content == [{"type": "text", "text": "Hello there, how are you today?"}]
    assert result.stop_reason == "end_turn"
    assert result.usage == Usage(input_tokens=12, output_tokens=9)
    assert result.model == "claude-test"
    assert fake.requests == [{"model": "claude-test", "max_tokens": 4096, "messages": HELLO,
                              "system": "Be brief.", "stream": True}]


async def test_a_tool_call_comes_back_as_a_plain_tool_use_block(llm, fake):
    fake.script(tool_turn([("get_time", {"zone": "Europe/Berlin"}, "toolu_1")],
                          text="Let me check."))

    deltas, result = await run_turn(llm, HELLO, [GET_TIME])

    assert "".join(deltas) == "Let me check."
    assert result.stop_reason == "tool_use"
    assert result.content == [
        {"type": "text", "text": "Let me check."},
        {"type": "tool_use", "id": "toolu_1", "name": "get_time",
         "input": {"zone": "Europe/Berlin"}}]
    assert fake.requests[0]["tools"] == [GET_TIME.to_api()]


async def test_parallel_tool_calls_and_their_results_are_accepted_by_the_api(llm, fake):
    fake.script(tool_turn([("get_time", {"zone": "UTC"}), ("add", {"a": 1, "b": 2})]),
                text_turn("It is noon and 1 + 2 = 3."))
    _, first = await run_turn(llm, HELLO, [GET_TIME, ADD])
    ids = [block["id"] for block in first.tool_uses]
    assert [block["name"] for block in first.tool_uses] == ["get_time", "add"]
    assert first.tool_uses[1]["input"] == {"a": 1, "b": 2}

    follow_up = [*HELLO, first.message(), {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": ids[0], "content": "12:00"},
        {"type": "tool_result", "tool_use_id": ids[1], "content": "3"},
        {"type": "text", "text": "Thanks."}]}]
    _, second = await run_turn(llm, follow_up, [GET_TIME, ADD])

    assert second.text == "It is noon and 1 + 2 = 3."
    assert fake.rejected == []
    assert fake.requests[1]["messages"][1] == first.message()


async def test_thinking_blocks_are_kept_for_the_next_request_but_not_streamed(llm, fake):
    fake.script(tool_turn([("get_time", {})], thinking="The user wants the time."),
                text_turn("Done."))
    deltas, first = await run_turn(llm, HELLO, [GET_TIME])

    assert deltas == []
    assert first.content[0] == {"type": "thinking", "thinking": "The user wants the time.",
                                "signature": first.content[0]["signature"]}
    result = {"type": "tool_result", "tool_use_id": first.tool_uses[0]["id"], "content": "9:00"}
    _, second = await run_turn(llm, [*HELLO, first.message(),
                                     {"role": "user", "content": [result]}], [GET_TIME])
    assert second.text == "Done."


def _results(*ids: str) -> list[dict[str, Any]]:
    return [{"type": "tool_result", "tool_use_id": i, "content": "ok"} for i in ids]


@pytest.mark.parametrize("answer", [
    pytest.param(lambda ids: _results(ids[0]), id="missing-result"),
    pytest.param(lambda ids: _results(ids[0], "toolu_unknown"), id="unknown-id"),
    pytest.param(lambda ids: [{"type": "text", "text": "first"}, *_results(*ids)],
                 id="text-before-results"),
    pytest.param(lambda ids: "just text", id="no-results"),
])
async def test_a_follow_up_with_wrong_tool_results_is_rejected_with_400(llm, fake, answer):
    fake.script(tool_turn([("get_time", {}), ("add", {})]), text_turn("never sent"))
    _, first = await run_turn(llm, HELLO, [GET_TIME, ADD])
    ids = [block["id"] for block in first.tool_uses]

    with pytest.raises(LLMError) as caught:
        await run_turn(llm, [*HELLO, first.message(), {"role": "user", "content": answer(ids)}])

    assert (caught.value.status, caught.value.error_type) == (400, "invalid_request_error")
    assert not caught.value.retryable
    assert len(fake.requests) == 2 and len(fake.rejected) == 1
    assert fake.pending == 1


async def test_a_blank_system_prompt_is_left_out(llm, fake):
    fake.script(text_turn("Fine."))

    _, result = await run_turn(llm, HELLO, system=" \n ")

    assert result.text == "Fine." and fake.rejected == []
    assert "system" not in fake.requests[0]


async def test_overloaded_529_is_retried_then_succeeds(llm, fake, sleep):
    fake.script(overloaded(), text_turn("Recovered."))

    _, result = await run_turn(llm, HELLO)

    assert result.text == "Recovered."
    assert len(fake.requests) == 2
    assert len(sleep.delays) == 1 and 0.375 <= sleep.delays[0] <= 0.5


async def test_persistent_429_fails_after_max_retries_with_exponential_backoff(llm, fake, sleep):
    fake.script(*[rate_limited() for _ in range(MAX_RETRIES + 1)], text_turn("unused"))

    with pytest.raises(LLMError) as caught:
        await run_turn(llm, HELLO)

    assert (caught.value.status, caught.value.error_type) == (429, "rate_limit_error")
    assert caught.value.retryable
    assert len(fake.requests) == MAX_RETRIES + 1
    assert 0.375 <= sleep.delays[0] <= 0.5 and 0.75 <= sleep.delays[1] <= 1.0


@pytest.mark.parametrize(("retry_after", "expected"), [(3, 3.0), (0.25, 0.25), (120, None)])
async def test_a_sane_retry_after_header_sets_the_delay(llm, fake, sleep, retry_after, expected):
    fake.script(rate_limited(retry_after=retry_after), text_turn("ok"))

    await run_turn(llm, HELLO)

    if expected is None:
        assert 0.375 <= sleep.delays[0] <= 0.5
    else:
        assert sleep.delays == [expected]


async def test_a_spend_limit_429_is_not_retried(llm, fake, sleep):
    fake.script(spend_limit(), text_turn("unused"))

    with pytest.raises(LLMError) as caught:
        await run_turn(llm, HELLO)

    assert (caught.value.status, caught.value.error_type) == (429, "rate_limit_error")
    assert not caught.value.retryable
    assert "enforced_spend_limit_reached" in str(caught.value)
    assert len(fake.requests) == 1 and sleep.delays == []


@pytest.mark.parametrize(("status", "error_type"), [(401, "authentication_error"),
                                                    (403, "permission_error"),
                                                    (404, "not_found_error")])
async def test_client_errors_are_not_retried(llm, fake, status, error_type):
    fake.script(error(status), text_turn("unused"))

    with pytest.raises(LLMError) as caught:
        await run_turn(llm, HELLO)

    assert (caught.value.status, caught.value.error_type) == (status, error_type)
    assert len(fake.requests) == 1


async def test_an_error_event_after_text_fails_the_turn_without_retry(llm, fake):
    fake.script(stream_error("overloaded_error", text="Partial answer"), text_turn("unused"))
    deltas: list[str] = []

    with pytest.raises(LLMError) as caught:
        async for item in llm.stream_turn(system="", messages=HELLO, tools=[]):
            deltas.append(item.text)

    assert "".join(deltas) == "Partial answer"
    assert caught.value.error_type == "overloaded_error" and caught.value.status is None
    assert len(fake.requests) == 1


async def test_an_error_event_before_any_text_is_retried(llm, fake):
    fake.script(stream_error("api_error"), text_turn("Second try."))

    deltas, result = await run_turn(llm, HELLO)

    assert "".join(deltas) == "Second try." and result.text == "Second try."
    assert len(fake.requests) == 2


async def test_a_connection_cut_after_text_is_a_failed_turn(llm, fake):
    fake.script(dropped("Half a sentence"), text_turn("unused"))

    with pytest.raises(LLMError) as caught:
        await run_turn(llm, HELLO)

    assert caught.value.error_type == "connection_error" and caught.value.retryable
    assert len(fake.requests) == 1


async def test_cancelling_the_consumer_closes_the_http_stream_promptly(llm, fake):
    hold = asyncio.Event()  # never set before the disconnect: the server would wait forever
    fake.script(text_turn("one two three four five", hold=hold))
    first_delta = asyncio.Event()

    async def consume() -> None:
        async for _ in llm.stream_turn(system="", messages=HELLO, tools=[]):
            first_delta.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first_delta.wait(), 10)
    task.cancel()
    # "Promptly" without a stopwatch: the fake holds the rest of the reply until ``hold`` is
    # set, so the connection can only end now if the client closed it on the cancel.
    await asyncio.wait_for(fake.disconnected.wait(), 10)

    with pytest.raises(asyncio.CancelledError):
        await task
    assert fake.disconnects == 1 and fake.completed == 0 and not hold.is_set()
    hold.set()


async def test_closing_the_generator_early_closes_the_http_stream(llm, fake):
    hold = asyncio.Event()
    fake.script(text_turn("one two three four five", hold=hold))

    async with contextlib.aclosing(llm.stream_turn(system="", messages=HELLO, tools=[])) as items:
        async for _ in items:
            break
    await asyncio.wait_for(fake.disconnected.wait(), 10)  # the fake still holds the reply

    assert fake.disconnects == 1 and fake.completed == 0
    hold.set()


async def test_make_llm_picks_anthropic_with_a_key_and_offline_without():
    from hive_server.llm.anthropic import AnthropicClient

    online = make_llm("sk-test", None, "claude-x")
    offline = make_llm(None, None, "claude-x")
    try:
        assert isinstance(online, AnthropicClient) and online.provider == "anthropic"
        assert online.default_model == "claude-x"
        assert isinstance(offline, OfflineClient) and offline.provider == "offline"
    finally:
        await online.aclose()
        await offline.aclose()


async def test_a_key_with_surrounding_whitespace_works_and_a_blank_one_means_offline(fake,
                                                                                    aiohttp_server):
    server = await aiohttp_server(fake.app)
    fake.script(text_turn("Hi."))
    online = make_llm("test-key\r\n", f"http://127.0.0.1:{server.port}", "claude-x")
    blank = make_llm(" \n", None, "claude-x")
    try:
        _, result = await run_turn(online, HELLO)
        assert result.text == "Hi." and len(fake.requests) == 1
        assert blank.provider == "offline"
    finally:
        await online.aclose()
        await blank.aclose()


@pytest.mark.slow
def test_a_server_on_the_offline_model_never_loads_the_anthropic_sdk():
    """The SDK costs seconds of import: the CLI, the app and the services load without it."""
    code = ("import sys, hive_server.cli, hive_server.app, hive_server.services.sessions.manager; "
            "from hive_server.llm.factory import make_llm; make_llm(None); "
            "print('anthropic' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stdout.strip() == "False"
