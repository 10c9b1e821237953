"""The queen's conversation as Anthropic messages, rebuilt from ``events.jsonl`` alone.

Folding rules (queen stream only): a user turn enters the conversation at the
``execution_started`` that consumed it (its ``input_seq`` names the ``client_input_received``
event with the text; an input that answered an ``ask_user`` call is not a turn, its answer comes
back as that call's ``tool_call_completed``); inputs received but never started are returned as
pending so a resumed queen handles them; ``llm_turn_complete`` is the assistant message, and
the ``tool_call_completed`` events after it become one user message of ``tool_result``
blocks in the order of the ``tool_use`` blocks.
``normalize`` then makes the list valid for the API: every ``tool_use`` answered (an
interrupted call gets an error result), results first, consecutive same-role turns merged.

A turn the server stopped in the middle of (``open_turn.TurnTracker``) ends, in the rebuilt
conversation, with its calls answered "interrupted by a server restart" and a short assistant
note saying so, exactly as it reads after ``open_turn.reconcile`` has logged that; a turn
parked on an ``ask_user`` question is left open for its answer. A line that is not a valid
event (half JSON, NULs, invalid UTF-8) is skipped and returned in ``bad_lines``.
"""

from __future__ import annotations

import dataclasses
from io import FileIO
from pathlib import Path
from typing import Any, BinaryIO

import orjson
from pydantic import ValidationError

from hive_server.core.log_scan import LogScan
from hive_server.models.event_data import (
    ClientInputReceived,
    ExecutionFailed,
    ExecutionStarted,
    LlmTurnComplete,
    QueueCleared,
    ToolCallCompleted,
    parse_data,
)
from hive_server.models.events import EventType
from hive_server.services.journal.handoff import NOTED, HandoffNotes
from hive_server.services.runtime.open_turn import (
    RESTART_NOTE,
    RESTART_RESULT,
    TRACKED,
    OpenTurn,
    TurnTracker,
)

Message = dict[str, Any]

_FOLDED = frozenset({EventType.CLIENT_INPUT_RECEIVED, EventType.EXECUTION_STARTED,
                     EventType.LLM_TURN_COMPLETE, EventType.TOOL_CALL_COMPLETED,
                     EventType.EXECUTION_FAILED, EventType.QUEUE_CLEARED})
_WANTED = frozenset({*_FOLDED, *TRACKED, *NOTED, EventType.LOG_CORRUPT})
INTERRUPTED = RESTART_RESULT
CUT_NOTE = "\n[{} characters of this tool result were cut to fit the context window]"


def tool_result_block(tool_use_id: str, text: str, is_error: bool) -> dict[str, Any]:
    return {"type": "tool_result", "tool_use_id": tool_use_id, "content": text,
            "is_error": is_error}


@dataclasses.dataclass(slots=True)
class Rebuilt:
    messages: list[Message]
    pending: list[tuple[int, ClientInputReceived]]  # inputs received but never started
    tracker: TurnTracker = dataclasses.field(default_factory=TurnTracker)
    open_results: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    # a parked turn's results so far (completed calls; calls the restart interrupted)
    bad_lines: list[tuple[int, int]] = dataclasses.field(default_factory=list)  # new ones
    # (offset, length) of invalid lines not yet reported by a log_corrupt event
    notes: HandoffNotes = dataclasses.field(default_factory=HandoffNotes)  # the whole log's


def rebuild_from_file(path: Path) -> Rebuilt:
    """Read the log once, parsing only the lines that shape the queen's conversation and her
    open turn (``LogScan`` also finds every invalid line on the way)."""
    try:
        with open(path, "rb") as fh:
            return rebuild_from_open(fh)
    except FileNotFoundError:
        return Rebuilt([], [])


def rebuild_from_open(fh: BinaryIO | FileIO) -> Rebuilt:
    """``rebuild_from_file`` from a log already open for reading (a resume's own append
    handle, ``open_for_append``: the file is opened once)."""
    folder, tracker, scan, notes = _Folder(), TurnTracker(), LogScan(_WANTED), HandoffNotes()
    reported: set[int] = set()
    seen: set[int] = set()
    for offset, line in scan.lines_of(fh):
        try:
            event = orjson.loads(line)
            if event["seq"] in seen:  # a duplicate or a stray copy of an earlier line
                raise ValueError("seq seen before")
            seen.add(event["seq"])
            kind, stream, data = event["type"], event["stream_id"], event.get("data") or {}
            if kind in TRACKED:
                tracker.add(event["seq"], kind, stream, event.get("execution_id"), data)
            if stream == "queen" and kind in _FOLDED:
                folder.add(event["seq"], kind, data)
            elif kind == EventType.LOG_CORRUPT:
                reported.add(int(data["offset"]))
            notes.add(event["seq"], kind, stream, data, event.get("timestamp"))
        except (orjson.JSONDecodeError, ValidationError, KeyError, TypeError, ValueError,
                AttributeError):
            scan.mark_bad(offset, line)  # well formed, but not a valid event
    parked = tracker.turn is not None and tracker.turn.parked
    messages = normalize(folder.finish(tracker.turn), open_last=parked)
    return Rebuilt(messages, sorted(folder.inputs.items()), tracker,
                   folder.results if parked else {},
                   sorted(bad for bad in scan.bad if bad[0] not in reported), notes)


class _Folder:
    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.results: dict[str, dict[str, Any]] = {}
        self.inputs: dict[int, ClientInputReceived] = {}

    def add(self, seq: int, kind: str, data: dict[str, Any]) -> None:
        """Fold one event in; its ``data`` is read through the type's model (a log written
        before a field was renamed still reads)."""
        if kind == EventType.TOOL_CALL_COMPLETED:
            done = parse_data(ToolCallCompleted, data)
            self.results[done.tool_use_id] = tool_result_block(done.tool_use_id, done.result,
                                                               done.is_error)
        elif kind == EventType.CLIENT_INPUT_RECEIVED:
            received = parse_data(ClientInputReceived, data)
            if received.answers_request_seq is None and received.coalesced_into is None:
                self.inputs[seq] = received
        elif kind == EventType.LLM_TURN_COMPLETE:
            self._flush_results()
            self.messages.append(dict(parse_data(LlmTurnComplete, data).message))
        elif kind == EventType.EXECUTION_STARTED:
            self._flush_results()
            started = parse_data(ExecutionStarted, data)
            if started.input_seq in self.inputs:
                text = self.inputs.pop(started.input_seq).message
                self.messages.append({"role": "user", "content": text})
        elif kind == EventType.QUEUE_CLEARED:  # dropped inputs are never handed to her
            for input_seq in parse_data(QueueCleared, data).input_seqs:
                self.inputs.pop(input_seq, None)
        elif (kind == EventType.EXECUTION_FAILED
              and parse_data(ExecutionFailed, data).error_type == "interrupted"):
            self._interrupted()

    def _interrupted(self) -> None:
        self._flush_results()
        self.messages.append({"role": "assistant", "content": RESTART_NOTE})

    def _flush_results(self) -> None:
        if not self.results:
            return
        blocks = [self.results.pop(use["id"]) for use in _last_tool_uses(self.messages)
                  if use["id"] in self.results]
        self.results.clear()
        if blocks:
            self.messages.append({"role": "user", "content": blocks})

    def finish(self, turn: OpenTurn | None) -> list[Message]:
        """The conversation; an open turn ends as ``reconcile`` will log it (a parked one is
        left open for its answer)."""
        if turn is not None:
            for call, text in turn.results().items():
                self.results.setdefault(call, tool_result_block(call, text,
                                                                call not in turn.answers))
        if turn is not None and not turn.parked:
            self._interrupted()
        if turn is None or not turn.parked:
            self._flush_results()
        return self.messages


def _last_tool_uses(messages: list[Message]) -> list[dict[str, Any]]:
    for message in reversed(messages):
        if message.get("role") == "assistant":
            return tool_uses(message)
    return []


def tool_uses(message: Message) -> list[dict[str, Any]]:
    content = message.get("content")
    if not isinstance(content, list):
        return []
    return [b for b in content if isinstance(b, dict) and b.get("type") == "tool_use"]


def _blocks(content: Any) -> list[dict[str, Any]]:
    """Content as a block list, without blank text blocks: the API rejects an empty one, and
    a message whose text is only whitespace (a model reply of ``"\n\n"``, say)."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content.strip() else []
    return [b for b in content if isinstance(b, dict)
            and not (b.get("type") == "text" and not str(b.get("text") or "").strip())]


def append_message(messages: list[Message], message: Message) -> None:
    """Append keeping the list valid in O(1): an empty turn is dropped, a turn of the same
    role as the last one is merged into it (tool_results first). The live loops only ever
    append a user turn, an assistant turn, and the results of every call of that turn, so
    the list stays valid without re-normalizing the whole history on every model turn."""
    blocks = _blocks(message.get("content", ""))
    if not blocks:
        return
    if messages and messages[-1]["role"] == message["role"]:
        merged = _blocks(messages[-1]["content"]) + blocks
        messages[-1] = {"role": message["role"], "content": _order(merged)}
    else:
        messages.append({"role": message["role"], "content": blocks})


def recent_window(messages: list[Message], max_chars: int) -> list[Message]:
    """The newest messages whose JSON fits in ``max_chars``, starting at a user turn without
    tool results (so the window is valid on its own). Work is bounded by the window, not by
    the history. The newest user turn is always kept; when the window from there is still over
    budget (one execution's tool results can be), tool results are cut, oldest first, in copies:
    ``messages`` is not changed."""
    used, start, size = 0, len(messages), 0
    for index in range(len(messages) - 1, -1, -1):
        used += len(orjson.dumps(messages[index]))
        if used > max_chars and start < len(messages):
            break
        if messages[index]["role"] == "user" and not _has_results(messages[index]):
            start, size = index, used
    if start == len(messages):
        return list(messages)
    window = messages[start:]
    return window if size <= max_chars else _cut_results(window, size - max_chars)


def _cut_results(window: list[Message], excess: int) -> list[Message]:
    """``window`` with about ``excess`` characters cut from its tool results, oldest first."""
    out = []
    for message in window:
        if excess > 0 and _has_results(message):
            content = []
            for block in message["content"]:
                if excess > 0 and block.get("type") == "tool_result":
                    block, saved = _cut_result(block, excess)
                    excess -= saved
                content.append(block)
            message = {**message, "content": content}
        out.append(message)
    return out


def _cut_result(block: dict[str, Any], excess: int) -> tuple[dict[str, Any], int]:
    """The block with its text cut by about ``excess`` characters (all of it if need be), and
    how many characters that saved. JSON escapes only make the saving larger in bytes."""
    text = block.get("content")
    if not isinstance(text, str):
        return block, 0
    keep = max(0, len(text) - excess - len(CUT_NOTE) - 10)
    cut = text[:keep] + CUT_NOTE.format(len(text) - keep)
    if len(cut) >= len(text):
        return block, 0
    return {**block, "content": cut}, len(text) - len(cut)


def _has_results(message: Message) -> bool:
    return any(b.get("type") == "tool_result" for b in _blocks(message.get("content", "")))


def normalize(messages: list[Message], *, open_last: bool = False) -> list[Message]:
    """A valid message list: starts with user, roles alternate, every tool_use answered.

    Empty turns are dropped, same-role neighbours merged, a tool_result that answers no call
    of the assistant turn before it (or repeats one) is dropped, and a call that no later user
    turn answers gets an error result (except, with ``open_last``, the calls of the last
    assistant turn: a parked turn waits for them). The input is not modified.
    """
    out: list[Message] = []
    last = max((i for i, m in enumerate(messages) if m.get("role") == "assistant"),
               default=-1) if open_last else -1
    for index, message in enumerate(messages):
        role = message.get("role")
        if role not in ("user", "assistant") or (not out and role != "user"):
            continue
        blocks = _blocks(message.get("content", ""))
        if role == "user":
            blocks = _known_results(out, blocks)
        if not blocks:
            continue
        if out and out[-1]["role"] == role:
            out[-1]["content"] = _order(out[-1]["content"] + blocks)
        else:
            out.append({"role": role, "content": _order(blocks)})
        if role == "assistant" and index != last:
            _answer_missing(out, _answered_later(messages, index + 1))
    return out


def _answered_later(messages: list[Message], start: int) -> set[str]:
    """The tool_use ids answered by the user turns from ``start`` to the next assistant turn."""
    answered: set[str] = set()
    for message in messages[start:]:
        if message.get("role") == "assistant":
            break
        if message.get("role") == "user":
            answered.update(b.get("tool_use_id") for b in _blocks(message.get("content", ""))
                            if b.get("type") == "tool_result")
    return answered


def _answer_missing(out: list[Message], answered: set[str]) -> None:
    """Give interrupted tool calls an error result so the API accepts the history."""
    missing = [tool_result_block(u["id"], INTERRUPTED, True) for u in tool_uses(out[-1])
               if u["id"] not in answered]
    if missing:
        out.append({"role": "user", "content": missing})


def _known_results(out: list[Message], blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``blocks`` without tool_results that answer no open call of the last assistant turn."""
    if not any(b.get("type") == "tool_result" for b in blocks):
        return blocks
    owner = next((m for m in reversed(out[-2:]) if m["role"] == "assistant"), None)
    open_ids = {u["id"] for u in tool_uses(owner)} if owner is not None else set()
    if out and out[-1]["role"] == "user":
        open_ids -= {b.get("tool_use_id") for b in out[-1]["content"]}
    kept = []
    for block in blocks:
        if block.get("type") == "tool_result":
            if block.get("tool_use_id") not in open_ids:
                continue
            open_ids.discard(block.get("tool_use_id"))
        kept.append(block)
    return kept


def _order(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """tool_result blocks first (the API requires it), the rest after, order kept."""
    results = [b for b in blocks if b.get("type") == "tool_result"]
    return results + [b for b in blocks if b.get("type") != "tool_result"]
