"""Property: garbage lines inserted anywhere in a session log never break the conversation
rebuild, which skips them and reports exactly them (their offsets and lengths).

Garbage is NUL bytes, invalid UTF-8 inside a real line, or a real line cut short. The rebuild
tells lines apart by shape without parsing every one, so a line cut exactly after a ``}`` of
an event type the rebuild does not read would pass unnoticed (every other reader still skips
it): the cut strategy leaves those out.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from hive_server.models.event_data import (
    ClientInputReceived,
    ClientOutputDelta,
    EventData,
    ExecutionCompleted,
    ExecutionStarted,
    LlmTurnComplete,
    ToolCallCompleted,
    ToolCallStarted,
    UsageData,
)
from hive_server.models.events import Event
from hive_server.services.runtime.conversation import rebuild_from_file

WORDS = st.text(st.sampled_from("ab \u2028\"\\é"), min_size=1, max_size=20).filter(str.strip)


def exchange(seq: int, text: str, tool: bool) -> list[tuple[EventData, str]]:
    """One chat and its turn (with a tool call when ``tool``), as (payload, stream) pairs."""
    use = {"type": "tool_use", "id": f"t{seq}", "name": "get_time", "input": {}}
    out: list[tuple[EventData, str]] = [
        (ClientInputReceived(content=text), "queen"),
        (ExecutionStarted(trigger="user", input_seq=seq), "queen"),
        (ClientOutputDelta(content=text, snapshot=text), "queen"),
    ]
    if tool:
        out += [(LlmTurnComplete(message={"role": "assistant", "content": [use]}, model="m",
                                 stop_reason="tool_use"), "queen"),
                (ToolCallStarted(tool_use_id=use["id"], tool_name="get_time"), "queen"),
                (ToolCallCompleted(tool_use_id=use["id"], tool_name="get_time",
                                   result=text), "queen")]
    out += [(LlmTurnComplete(message={"role": "assistant", "content": [
                {"type": "text", "text": f"re: {text}"}]}, model="m"), "queen"),
            (ExecutionCompleted(turns=1, usage=UsageData()), "queen")]
    return out


@st.composite
def logs(draw: st.DrawFn) -> tuple[list[bytes], list[bytes]]:
    """Clean log lines, and the same with garbage lines inserted."""
    lines: list[bytes] = []
    for text, tool in draw(st.lists(st.tuples(WORDS, st.booleans()), min_size=1, max_size=6)):
        for payload, stream in exchange(len(lines) + 1, text, tool):
            seq = len(lines) + 1
            lines.append(Event(seq=seq, type=payload.TYPE.value, session_id="p",
                               stream_id=stream, execution_id="x",
                               data=payload.model_dump()).to_json())
    dirty = list(lines)
    for position in sorted(draw(st.lists(st.integers(0, len(lines)), max_size=6)),
                           reverse=True):
        dirty.insert(position, draw(garbage(lines)))
    return lines, dirty


@st.composite
def garbage(draw: st.DrawFn, lines: list[bytes]) -> bytes:
    kind = draw(st.sampled_from(["nul", "cut", "utf8"]))
    if kind == "nul":
        return b"\x00" * draw(st.integers(0, 300))
    source = draw(st.sampled_from(lines))
    at = draw(st.integers(1, len(source) - 1))
    if kind == "cut":
        assume(not source[:at].endswith(b"}"))
        return source[:at]
    return source[:at] + draw(st.sampled_from([b"\xff", b"\xc3(", b"\xed\xa0\x80"])) + source[at:]


@settings(max_examples=80, deadline=None)
@given(logs())
def test_garbage_anywhere_is_skipped_and_reported_exactly(both):
    clean, dirty = both
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "events.jsonl"
        path.write_bytes(b"".join(line + b"\n" for line in clean))
        expected = rebuild_from_file(path)
        path.write_bytes(b"".join(line + b"\n" for line in dirty))
        rebuilt = rebuild_from_file(path)
    assert rebuilt.messages == expected.messages and rebuilt.messages
    assert rebuilt.pending == expected.pending == []
    offsets, at = [], 0
    clean_set = set(clean)
    for line in dirty:
        if line not in clean_set:
            offsets.append((at, len(line)))
        at += len(line) + 1
    assert rebuilt.bad_lines == offsets
