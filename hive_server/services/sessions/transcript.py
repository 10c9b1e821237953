"""A session's events read as a transcript: the entries an export shows, in log order.

``Transcript.feed`` takes one stored event (the dict of a log line) and returns the entries it
completes: user and queen messages, a tool call (given when its result arrives, so it shows
collapsed with its input and result; ``ask_user`` calls show as the question and its answer
instead), workers starting and ending, trigger fires, ``ask_user`` questions and answers,
failed or cancelled turns and the handoff notes of a stop. Only the calls still open are held
(``finish`` gives them without a result), so a transcript of any length is read in bounded
memory. Payloads are read through their event models; one that does not fit is skipped.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from pydantic import ValidationError

from hive_server.models.event_data import (
    ClientInputReceived,
    ClientInputRequested,
    ExecutionFailed,
    LlmTurnComplete,
    SessionSummary,
    ToolCallCompleted,
    ToolCallStarted,
    WorkerCompleted,
    WorkerFailed,
    WorkerStarted,
    parse_data,
)
from hive_server.models.events import EventType
from hive_server.models.handoff import Handoff
from hive_server.models.trigger_events import TriggerFired

SHORT_CHARS = 300  # a tool call's input and result, cut to this in a transcript
ASK_USER = "ask_user"
Role = Literal["user", "queen", "answer", "trigger", "question", "worker", "note"]


@dataclasses.dataclass(frozen=True, slots=True)
class Message:
    role: Role
    at: str
    text: str
    title: str = ""  # who or what: the trigger, the worker; empty for user and queen


@dataclasses.dataclass(frozen=True, slots=True)
class ToolCall:
    at: str
    name: str
    by: str  # the stream: queen or worker:<id>
    input: str
    result: str | None  # None: the call never finished
    is_error: bool


@dataclasses.dataclass(frozen=True, slots=True)
class Summary:
    at: str
    handoff: Handoff


Entry = Message | ToolCall | Summary


def short(text: str, limit: int = SHORT_CHARS) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "\u2026"


class Transcript:
    def __init__(self) -> None:
        self._open: dict[str, tuple[str, ToolCallStarted, str]] = {}

    def feed(self, event: dict[str, Any]) -> list[Entry]:
        handler = _HANDLERS.get(event.get("type", ""))
        data = event.get("data")
        if handler is None or not isinstance(data, dict):
            return []
        try:
            return handler(self, str(event.get("timestamp", "")),
                           str(event.get("stream_id", "queen")), data)
        except ValidationError:
            return []

    def finish(self) -> list[Entry]:
        """The calls that never finished (a transcript cut by a stop or a crash)."""
        calls = [ToolCall(at, started.tool_name, by, _input(started), None, False)
                 for at, started, by in self._open.values()]
        self._open.clear()
        return list(calls)

    def _started(self, at: str, by: str, data: dict[str, Any]) -> list[Entry]:
        started = parse_data(ToolCallStarted, data)
        if started.tool_name != ASK_USER:
            self._open[started.tool_use_id] = (at, started, by)
        return []

    def _completed(self, at: str, by: str, data: dict[str, Any]) -> list[Entry]:
        done = parse_data(ToolCallCompleted, data)
        found = self._open.pop(done.tool_use_id, None)
        if found is None:
            return []
        began, started, by = found
        return [ToolCall(began, started.tool_name, by, _input(started), short(done.result),
                         done.is_error)]


def _input(started: ToolCallStarted) -> str:
    value = started.tool_input
    if isinstance(value, dict):
        return short(", ".join(f"{key}={val!r}" for key, val in value.items()))
    return short("" if value is None else str(value))


def _received(_: Transcript, at: str, by: str, data: dict[str, Any]) -> list[Entry]:
    got = parse_data(ClientInputReceived, data)
    if got.answers_request_seq is not None:
        return [Message("answer", at, got.content or got.message)]
    if got.source == "trigger":
        return []  # the trigger_fired entry shows it
    return [Message("user", at, got.content)]


def _requested(_: Transcript, at: str, by: str, data: dict[str, Any]) -> list[Entry]:
    asked = parse_data(ClientInputRequested, data)
    lines = [q.prompt + (f" [{' / '.join(q.options)}]" if q.options else "")
             for q in asked.questions]
    return [Message("question", at, "\n".join(lines))] if lines else []


def _turn(_: Transcript, at: str, by: str, data: dict[str, Any]) -> list[Entry]:
    if by != "queen":
        return []  # a worker's turns: its result is in worker_completed
    content = parse_data(LlmTurnComplete, data).message.get("content")
    blocks = content if isinstance(content, list) else [{"type": "text", "text": content}]
    text = "".join(str(b.get("text") or "") for b in blocks
                   if isinstance(b, dict) and b.get("type") == "text")
    return [Message("queen", at, text)] if text.strip() else []


def _worker_started(_: Transcript, at: str, by: str, data: dict[str, Any]) -> list[Entry]:
    got = parse_data(WorkerStarted, data)
    return [Message("worker", at, f"started: {got.task}", f"{got.worker_id} ({got.worker})")]


def _worker_completed(_: Transcript, at: str, by: str, data: dict[str, Any]) -> list[Entry]:
    got = parse_data(WorkerCompleted, data)
    return [Message("worker", at, f"completed: {got.result}", f"{got.worker_id} ({got.worker})")]


def _worker_failed(_: Transcript, at: str, by: str, data: dict[str, Any]) -> list[Entry]:
    got = parse_data(WorkerFailed, data)
    return [Message("worker", at, f"failed: {got.error}", f"{got.worker_id} ({got.worker})")]


def _fired(_: Transcript, at: str, by: str, data: dict[str, Any]) -> list[Entry]:
    fired = parse_data(TriggerFired, data)
    how = "run by hand" if fired.manual else fired.trigger_type
    return [Message("trigger", at, fired.task, f"{fired.name or fired.trigger_id} ({how})")]


def _failed(_: Transcript, at: str, by: str, data: dict[str, Any]) -> list[Entry]:
    failed = parse_data(ExecutionFailed, data)
    return [Message("note", at, f"turn failed ({failed.error_type}): {failed.error}")]


def _cancelled(_: Transcript, at: str, by: str, data: dict[str, Any]) -> list[Entry]:
    return [Message("note", at, "turn cancelled")]


def _summary(_: Transcript, at: str, by: str, data: dict[str, Any]) -> list[Entry]:
    return [Summary(at, parse_data(SessionSummary, data).handoff)]


_HANDLERS = {
    EventType.CLIENT_INPUT_RECEIVED: _received,
    EventType.CLIENT_INPUT_REQUESTED: _requested,
    EventType.LLM_TURN_COMPLETE: _turn,
    EventType.TOOL_CALL_STARTED: Transcript._started,
    EventType.TOOL_CALL_COMPLETED: Transcript._completed,
    EventType.WORKER_STARTED: _worker_started,
    EventType.WORKER_COMPLETED: _worker_completed,
    EventType.WORKER_FAILED: _worker_failed,
    EventType.TRIGGER_FIRED: _fired,
    EventType.EXECUTION_FAILED: _failed,
    EventType.EXECUTION_CANCELLED: _cancelled,
    EventType.SESSION_SUMMARY: _summary,
}
WANTED = frozenset(_HANDLERS)
