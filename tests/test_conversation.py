"""The queen's conversation rebuilt from ``events.jsonl`` alone, and ``normalize``.

Every rebuilt history is also checked with the fake Messages API's request validator: what
the queen sends after a restart must be a request the real API accepts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hive_server import keys
from hive_server.models.events import Event
from hive_server.services.runtime.conversation import (
    INTERRUPTED,
    Rebuilt,
    append_message,
    normalize,
    rebuild_from_file,
    recent_window,
)
from hive_server.services.runtime.open_turn import RESTART_NOTE
from tests.conftest import create_session
from tests.fakes.fake_anthropic import validate_request
from tests.queen_support import chat, open_stream, until


def assert_api_accepts(messages: list[dict[str, Any]]) -> None:
    assert validate_request({"model": "m", "max_tokens": 1, "messages": messages}) is None


def text(role: str, *parts: str) -> dict[str, Any]:
    return {"role": role, "content": [{"type": "text", "text": p} for p in parts]}


def use(tool_id: str, name: str = "get_time") -> dict[str, Any]:
    return {"type": "tool_use", "id": tool_id, "name": name, "input": {}}


def result(tool_id: str, content: str, is_error: bool = False) -> dict[str, Any]:
    return {"type": "tool_result", "tool_use_id": tool_id, "content": content,
            "is_error": is_error}


class Log:
    """Writes a session log the way the queen does, one helper per event it emits."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines: list[bytes] = []

    def add(self, kind: str, data: dict[str, Any] | None = None, *,
            stream_id: str = "queen") -> int:
        seq = len(self.lines) + 1
        event = Event(seq=seq, type=kind, session_id="s", stream_id=stream_id,
                      execution_id="x", data=data or {})
        self.lines.append(event.to_json())
        return seq

    def received(self, message: str, **extra: Any) -> int:
        return self.add("client_input_received", {"message": message, "source": "user",
                                                  **extra})

    def started(self, input_seq: int) -> None:
        self.add("execution_started", {"trigger": "user", "input_seq": input_seq,
                                       "coalesced": 0})

    def turn(self, *blocks: dict[str, Any] | str, stream_id: str = "queen") -> None:
        content = [{"type": "text", "text": b} if isinstance(b, str) else b for b in blocks]
        for block in content:
            if block["type"] == "text":
                self.add("client_output_delta", {"content": block["text"],
                                                 "snapshot": block["text"]},
                         stream_id=stream_id)
        self.add("llm_turn_complete", {"message": {"role": "assistant", "content": content},
                                       "usage": {"input_tokens": 1, "output_tokens": 1},
                                       "stop_reason": "end_turn", "model": "m"},
                 stream_id=stream_id)

    def tool_started(self, tool_id: str, name: str = "get_time") -> None:
        self.add("tool_call_started", {"tool_use_id": tool_id, "tool_name": name,
                                       "tool_input": {}})

    def tool_done(self, tool_id: str, content: str, is_error: bool = False,
                  name: str = "get_time") -> None:
        self.add("tool_call_completed", {"tool_use_id": tool_id, "tool_name": name,
                                         "result": content, "is_error": is_error})

    def exchange(self, message: str, reply: str) -> int:
        seq = self.received(message)
        self.started(seq)
        self.turn(reply)
        self.add("execution_completed", {"turns": 1})
        return seq

    def rebuild(self, tail: bytes = b"") -> Rebuilt:
        self.path.write_bytes(b"".join(line + b"\n" for line in self.lines) + tail)
        return rebuild_from_file(self.path)


def new_log(tmp_path: Path) -> Log:
    log = Log(tmp_path / "events.jsonl")
    log.add("session_started", {"queen_id": "default"})
    return log


def test_plain_exchanges_become_alternating_turns(tmp_path):
    log = new_log(tmp_path)
    log.exchange("hi", "hello")
    log.exchange("how are you?", "fine")

    rebuilt = log.rebuild()

    assert rebuilt.messages == [text("user", "hi"), text("assistant", "hello"),
                                text("user", "how are you?"), text("assistant", "fine")]
    assert rebuilt.pending == []


def test_parallel_results_follow_their_calls_in_tool_use_order(tmp_path):
    log = new_log(tmp_path)
    log.started(log.received("two things"))
    log.turn("Calling both.", use("a"), use("b", "list_files"))
    log.tool_started("a")
    log.tool_started("b", "list_files")
    log.tool_done("b", "files", name="list_files")  # b finished first
    log.tool_done("a", "noon")
    log.turn("Done.")
    log.add("execution_completed")

    rebuilt = log.rebuild()

    assert rebuilt.messages[2] == {"role": "user", "content": [result("a", "noon"),
                                                               result("b", "files")]}
    assert rebuilt.messages[3] == text("assistant", "Done.")
    assert_api_accepts(rebuilt.messages)


def test_a_chat_that_arrives_during_tool_calls_is_the_next_turn(tmp_path):
    log = new_log(tmp_path)
    log.started(log.received("check the time"))
    log.turn(use("a"))
    log.tool_started("a")
    later = log.received("and then say bye")  # arrives while the tool runs
    log.tool_done("a", "noon")
    log.turn("It is noon.")
    log.add("execution_completed")
    log.started(later)
    log.turn("Bye.")
    log.add("execution_completed")

    rebuilt = log.rebuild()

    assert rebuilt.messages == [
        text("user", "check the time"), {"role": "assistant", "content": [use("a")]},
        {"role": "user", "content": [result("a", "noon")]}, text("assistant", "It is noon."),
        text("user", "and then say bye"), text("assistant", "Bye.")]
    assert rebuilt.pending == []


def test_inputs_received_but_never_started_are_pending(tmp_path):
    log = new_log(tmp_path)
    log.exchange("hi", "hello")
    waiting = log.received("one more")
    fired = log.add("client_input_received", {"message": "[TRIGGER: timer/t1] Task: x",
                                              "source": "trigger", "trigger_id": "t1"})
    log.add("client_input_received", {"message": "[TRIGGER: timer/t1] Task: x",
                                       "source": "trigger", "trigger_id": "t1",
                                       "coalesced_into": fired})

    rebuilt = log.rebuild()

    assert rebuilt.messages == [text("user", "hi"), text("assistant", "hello")]
    assert [(seq, data.message, data.source, data.trigger_id)
            for seq, data in rebuilt.pending] == [
        (waiting, "one more", "user", None),
        (fired, "[TRIGGER: timer/t1] Task: x", "trigger", "t1")]


def test_an_ask_user_answer_is_the_tool_result_not_a_user_turn(tmp_path):
    log = new_log(tmp_path)
    log.started(log.received("ask me"))
    log.turn(use("q", "ask_user"))
    log.tool_started("q", "ask_user")
    asked = log.add("client_input_requested", {"prompt": "What next?"})
    log.received("write notes", answers_request_seq=asked)
    log.tool_done("q", "write notes", name="ask_user")
    log.turn("Writing notes.")
    log.add("execution_completed")

    rebuilt = log.rebuild()

    assert rebuilt.messages == [
        text("user", "ask me"), {"role": "assistant", "content": [use("q", "ask_user")]},
        {"role": "user", "content": [result("q", "write notes")]},
        text("assistant", "Writing notes.")]
    assert rebuilt.pending == []


def test_calls_cut_off_by_a_crash_get_error_results(tmp_path):
    log = new_log(tmp_path)
    log.started(log.received("two things"))
    log.turn(use("a"), use("b"))
    log.tool_started("a")
    log.tool_started("b")
    log.tool_done("a", "noon")  # the server died before b finished

    rebuilt = log.rebuild(tail=b'{"seq":99,"type":"tool_call_compl')

    answer, note = rebuilt.messages[-2:]
    assert answer["role"] == "user"
    assert sorted(answer["content"], key=lambda b: b["tool_use_id"]) == [
        result("a", "noon"), result("b", INTERRUPTED, is_error=True)]
    assert note == text("assistant", RESTART_NOTE)  # the model is told plainly
    assert INTERRUPTED == "interrupted by a server restart"
    assert_api_accepts(rebuilt.messages)


def test_after_a_crash_mid_tool_the_next_chat_joins_the_results_after_them(tmp_path):
    log = new_log(tmp_path)
    log.started(log.received("check"))
    log.turn(use("a"))
    log.tool_started("a")
    log.started(log.received("are you there?"))  # after a restart by an older server
    log.turn("Yes.")
    log.add("execution_completed")

    rebuilt = log.rebuild()

    assert rebuilt.messages[-2] == {"role": "user", "content": [
        result("a", INTERRUPTED, is_error=True), {"type": "text", "text": "are you there?"}]}
    assert_api_accepts(rebuilt.messages)


def test_user_turns_without_a_reply_in_between_are_merged(tmp_path):
    log = new_log(tmp_path)
    log.started(log.received("first"))
    log.add("execution_failed", {"error": "overloaded", "error_type": "overloaded_error"})
    log.started(log.received("second"))
    log.add("execution_cancelled", {"reason": "cancelled"})
    log.exchange("third", "Sorry for the wait.")

    rebuilt = log.rebuild()

    assert rebuilt.messages == [text("user", "first", "second", "third"),
                                text("assistant", "Sorry for the wait.")]


def test_other_streams_torn_lines_and_lookalike_text_are_ignored(tmp_path):
    log = new_log(tmp_path)
    log.exchange("hi", "hello")
    log.turn("a worker's turn", stream_id="worker:w1")
    log.add("client_output_delta", {"content": '"type":"llm_turn_complete"', "snapshot": ""})
    log.lines.append(b"not json at all")

    rebuilt = log.rebuild(tail=b'{"seq":9,"type":"llm_turn_complete","stream_id":"queen","da')

    assert rebuilt.messages == [text("user", "hi"), text("assistant", "hello")]


def test_a_missing_log_is_an_empty_conversation(tmp_path):
    rebuilt = rebuild_from_file(tmp_path / "nothing.jsonl")
    assert (rebuilt.messages, rebuilt.pending, rebuilt.bad_lines) == ([], [], [])


def test_normalize_puts_tool_results_first_and_merges_same_roles():
    messages = [
        {"role": "assistant", "content": "a stray reply before any user turn"},
        {"role": "user", "content": "hi"},
        {"role": "user", "content": ""},
        {"role": "assistant", "content": [use("a")]},
        {"role": "user", "content": "by the way"},
        {"role": "user", "content": [result("a", "noon")]},
        {"role": "assistant", "content": "It is noon."},
        {"role": "assistant", "content": "Anything else?"},
    ]

    out = normalize(messages)

    assert out == [
        text("user", "hi"), {"role": "assistant", "content": [use("a")]},
        {"role": "user", "content": [result("a", "noon"),
                                     {"type": "text", "text": "by the way"}]},
        text("assistant", "It is noon.", "Anything else?")]
    assert_api_accepts(out)


def test_normalize_drops_empty_turns_and_results_that_answer_no_call():
    messages = [
        {"role": "user", "content": ""},
        {"role": "user", "content": [result("ghost", "boo")]},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": [use("a")]},
        {"role": "user", "content": [result("a", "noon"), result("a", "again"),
                                     result("zz", "stray")]},
        {"role": "assistant", "content": []},  # the model said nothing
        {"role": "user", "content": "thanks"},
    ]

    out = normalize(messages)

    assert out == [text("user", "hi"), {"role": "assistant", "content": [use("a")]},
                   {"role": "user", "content": [result("a", "noon"),
                                                {"type": "text", "text": "thanks"}]}]
    assert_api_accepts(out)


def test_normalize_leaves_its_input_alone():
    messages = [{"role": "user", "content": [{"type": "text", "text": "a"}]},
                {"role": "user", "content": "b"}]
    before = repr(messages)

    normalize(messages)

    assert repr(messages) == before


async def test_the_rebuilt_history_equals_what_the_live_queen_holds(client):
    await create_session(client, session_id="s")
    stream = await open_stream(client, "s")
    for message in ("hello", "call:get_time {}\ncall:list_files {}\ncall:nope {}", "ask me"):
        await chat(client, "s", message)
        await until(stream, "llm_turn_complete")
    await chat(client, "s", "the answer")
    await until(stream, "execution_completed")
    await chat(client, "s", "bye")
    await until(stream, "execution_completed")
    live = client.app[keys.SESSIONS].get("s")
    stream.close()
    assert (await client.delete("/api/sessions/s")).status == 200  # the log is flushed

    from_file = rebuild_from_file(live.journal.dir / "events.jsonl")

    assert from_file.messages == normalize(live.queen.messages)
    assert from_file.pending == []
    assert_api_accepts(from_file.messages)


def test_append_message_keeps_the_live_list_valid_without_renormalizing():
    messages: list[dict[str, Any]] = []
    use = {"type": "tool_use", "id": "toolu_1", "name": "get_time", "input": {}}
    steps = [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": []},  # an empty model reply is dropped
        {"role": "user", "content": "second, after a failed turn"},  # merged into the first
        {"role": "assistant", "content": [{"type": "text", "text": ""}, use]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                                      "content": "noon", "is_error": False}]},
        {"role": "user", "content": "third"},  # text goes after the tool result
    ]
    for step in steps:
        append_message(messages, step)
    assert_api_accepts(messages)
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert [b["text"] for b in messages[0]["content"]] == ["first",
                                                          "second, after a failed turn"]
    assert messages[1]["content"] == [use]
    assert [b["type"] for b in messages[2]["content"]] == ["tool_result", "text"]
    assert messages == normalize(steps)


def test_recent_window_is_bounded_and_starts_at_a_user_text_turn():
    use = {"type": "tool_use", "id": "toolu_9", "name": "get_time", "input": {}}
    result = {"type": "tool_result", "tool_use_id": "toolu_9", "content": "x" * 300,
              "is_error": False}
    history: list[dict[str, Any]] = []
    for n in range(50):
        history += [text("user", f"question {n} " + "y" * 200), text("assistant", "ok")]
    history += [text("user", "last question"), {"role": "assistant", "content": [use]},
                {"role": "user", "content": [result]}]
    window = recent_window(history, 2_000)
    assert window[0]["role"] == "user" and window[0]["content"][0]["type"] == "text"
    assert window[-1] == history[-1]
    assert len(window) < len(history)
    assert sum(len(json.dumps(m)) for m in window) < 2_000 + 500
    assert_api_accepts(window)
    assert recent_window(history, 10**9) == history
    tiny = recent_window(history, 10)
    assert tiny[0] == text("user", "last question") and len(tiny) == 3


def test_recent_window_cuts_tool_results_oldest_first_when_one_execution_is_over_budget():
    uses = [{"type": "tool_use", "id": f"toolu_{n}", "name": "read_file", "input": {}}
            for n in range(3)]
    history = [text("user", "old " * 50), text("assistant", "ok"), text("user", "read all"),
               {"role": "assistant", "content": uses},
               {"role": "user", "content": [result(u["id"], u["id"][-1] * 1_000) for u in uses]
                + [{"type": "text", "text": "and?"}]}]
    before = json.dumps(history)

    window = recent_window(history, 2_000)

    assert json.dumps(history) == before  # the history itself is untouched
    assert window[:2] == history[2:4]
    assert len(json.dumps(window, separators=(",", ":"))) <= 2_000
    first, second, third, question = window[2]["content"]
    assert first["content"].endswith("1000 characters of this tool result were cut to fit the "
                                     "context window]") and len(first["content"]) < 100
    assert second["content"].startswith("1" * 100) and "were cut" in second["content"]
    assert third == history[-1]["content"][2] and question["text"] == "and?"
    assert_api_accepts(window)


def test_a_stray_copy_of_an_earlier_line_is_skipped_and_reported(tmp_path):
    log = new_log(tmp_path)
    log.exchange("hi", "hello")
    clean = log.rebuild()
    log.lines.append(log.lines[4])  # the llm_turn_complete again, as a broken copy would leave
    log.exchange("more", "sure")

    rebuilt = log.rebuild()

    assert rebuilt.messages == [*clean.messages, text("user", "more"), text("assistant", "sure")]
    offset = sum(len(line) + 1 for line in log.lines[:6])
    assert rebuilt.bad_lines == [(offset, len(log.lines[4]))]
