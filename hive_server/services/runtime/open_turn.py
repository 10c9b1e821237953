"""Honest state across restarts: the queen's turn that was running when the server stopped.

``TurnTracker`` reads the log (fed by the conversation rebuild, in seq order) and keeps the
queen's last execution while it has no end: its open tool calls, a pending ``ask_user``
question, an answer already given, the workers still running. ``reconcile`` then runs when the
session resumes, before any new input is handled:

- a turn parked on an ``ask_user`` question stays parked: the question is asked again
  (``client_input_requested``) and the next user message answers it, so the turn goes on from
  that tool result as if nothing had happened (``ParkedTurn``);
- any other unfinished turn is closed: each open tool call gets
  ``tool_call_completed {is_error: true, result: "interrupted by a server restart"}``, each
  open worker ``worker_failed``, and the execution
  ``execution_failed {error_type: "interrupted", reason: "server_restart"}``.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from hive_server.models.event_data import (
    ClientInputReceived,
    ClientInputRequested,
    ExecutionFailed,
    LlmTurnComplete,
    LogCorrupt,
    Question,
    ToolCallCompleted,
    ToolCallStarted,
    WorkerFailed,
    WorkerStarted,
    parse_data,
)
from hive_server.models.events import EventType
from hive_server.services.journal.journal import SessionJournal
from hive_server.services.runtime.worker_ids import worker_number

log = logging.getLogger(__name__)

RESTART_RESULT = "interrupted by a server restart"
RESTART_ERROR = "the turn was interrupted by a server restart"
RESTART_NOTE = "[My previous turn was interrupted by a server restart before it finished.]"
ASK_USER = "ask_user"
_ENDS = frozenset({EventType.EXECUTION_COMPLETED, EventType.EXECUTION_FAILED,
                   EventType.EXECUTION_CANCELLED})
TRACKED = frozenset({EventType.EXECUTION_STARTED, *_ENDS, EventType.LLM_TURN_COMPLETE,
                     EventType.TOOL_CALL_STARTED, EventType.TOOL_CALL_COMPLETED,
                     EventType.CLIENT_INPUT_REQUESTED, EventType.CLIENT_INPUT_RECEIVED,
                     EventType.WORKER_STARTED, EventType.WORKER_COMPLETED,
                     EventType.WORKER_FAILED})


@dataclasses.dataclass(slots=True)
class OpenTurn:
    """The queen's execution that has no end in the log."""

    execution_id: str | None
    calls: dict[str, str] = dataclasses.field(default_factory=dict)  # open: id -> tool name
    answers: dict[str, str] = dataclasses.field(default_factory=dict)  # ask_user id -> answer
    question: tuple[int, str, list[Question]] | None = None  # (request seq, call id, questions)
    iteration: int = 0

    @property
    def parked(self) -> bool:
        """Waiting on a question nobody answered: the turn can go on after a restart."""
        return self.question is not None

    def results(self) -> dict[str, str]:
        """What each open call's result becomes (the pending question's call excluded)."""
        asked = self.question[1] if self.question is not None else None
        return {call: self.answers.get(call, RESTART_RESULT)
                for call in self.calls if call != asked}


@dataclasses.dataclass(slots=True)
class ParkedTurn:
    """A resumed turn waiting for the answer to its question (``Queen.start`` takes it)."""

    execution_id: str
    call_id: str
    questions: list[Question]
    iteration: int
    results: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    # the turn's other results so far, as tool_result blocks (the rebuild's open_results)


class TurnTracker:
    def __init__(self) -> None:
        self.turn: OpenTurn | None = None
        self.workers: dict[str, WorkerStarted] = {}  # stream id -> its start
        self.worker_calls: dict[str, dict[str, str]] = {}  # stream id -> open calls
        self.highest_worker = 0  # the highest worker number started (ids go on from it)

    def parked(self, results: dict[str, dict[str, Any]]) -> ParkedTurn | None:
        """The open turn as it resumes, when it waits on a question."""
        turn = self.turn
        if turn is None or turn.execution_id is None or turn.question is None:
            return None
        return ParkedTurn(turn.execution_id, turn.question[1], turn.question[2],
                          turn.iteration, results)

    def add(self, seq: int, kind: str, stream: str, execution_id: str | None,
            data: dict[str, Any]) -> None:
        if kind == EventType.WORKER_STARTED:
            started = self.workers[stream] = parse_data(WorkerStarted, data)
            self.highest_worker = max(self.highest_worker, worker_number(started.worker_id))
        elif kind in (EventType.WORKER_COMPLETED, EventType.WORKER_FAILED):
            self.workers.pop(stream, None)
            self.worker_calls.pop(stream, None)
        elif stream == "queen":
            self._queen(seq, kind, execution_id, data)
        elif kind == EventType.TOOL_CALL_STARTED:
            started = parse_data(ToolCallStarted, data)
            self.worker_calls.setdefault(stream, {})[started.tool_use_id] = started.tool_name
        elif kind == EventType.TOOL_CALL_COMPLETED:
            done = parse_data(ToolCallCompleted, data)
            self.worker_calls.get(stream, {}).pop(done.tool_use_id, None)

    def _queen(self, seq: int, kind: str, execution_id: str | None,
               data: dict[str, Any]) -> None:
        if kind == EventType.EXECUTION_STARTED:
            self.turn = OpenTurn(execution_id)
            return
        turn = self.turn
        if turn is None:
            return
        if kind in _ENDS:
            self.turn = None
        elif kind == EventType.LLM_TURN_COMPLETE:
            turn.iteration = parse_data(LlmTurnComplete, data).iteration
        elif kind == EventType.TOOL_CALL_STARTED:
            started = parse_data(ToolCallStarted, data)
            turn.calls[started.tool_use_id] = started.tool_name
        elif kind == EventType.TOOL_CALL_COMPLETED:
            turn.calls.pop(parse_data(ToolCallCompleted, data).tool_use_id, None)
        elif kind == EventType.CLIENT_INPUT_REQUESTED:
            self._asked(turn, seq, parse_data(ClientInputRequested, data).questions)
        elif kind == EventType.CLIENT_INPUT_RECEIVED and turn.question is not None:
            received = parse_data(ClientInputReceived, data)
            if received.answers_request_seq == turn.question[0]:
                turn.answers[turn.question[1]] = received.content
                turn.question = None

    @staticmethod
    def _asked(turn: OpenTurn, seq: int, questions: list[Question]) -> None:
        """The question belongs to the first open ``ask_user`` call not answered yet (parallel
        ones are asked one after the other, in order)."""
        call = next((call for call, name in turn.calls.items()
                     if name == ASK_USER and call not in turn.answers), None)
        if call is not None:
            turn.question = (seq, call, questions)


async def settle_restart(session: SessionJournal, tracker: TurnTracker,
                         results: dict[str, dict[str, Any]],
                         bad_lines: list[tuple[int, int]]) -> ParkedTurn | None:
    """At resume, before the queen handles anything: report the log's invalid lines once
    (``log_corrupt``), then close (or re-park) the turn the last run left open."""
    for offset, length in bad_lines:
        log.warning("session %s: events.jsonl has an invalid line at byte %d (%d bytes); "
                    "skipped", session.id, offset, length)
        session.emit(LogCorrupt(offset=offset, length=length))
    return await reconcile(session, tracker, results)


async def reconcile(session: SessionJournal, tracker: TurnTracker,
                    results: dict[str, dict[str, Any]]) -> ParkedTurn | None:
    """Close (or re-park) the turn a restart interrupted; every event is stored before this
    returns, so a new input is handled only after them. ``results``: the open turn's
    results the rebuild collected."""
    turn = tracker.turn
    for stream, worker in tracker.workers.items():
        for call, name in tracker.worker_calls.get(stream, {}).items():
            session.emit(ToolCallCompleted(tool_use_id=call, tool_name=name,
                                           result=RESTART_RESULT, is_error=True),
                         stream_id=stream, execution_id=worker.worker_id)
        session.emit(WorkerFailed(worker_id=worker.worker_id, worker=worker.worker,
                                  error=RESTART_RESULT), stream_id=stream)
    if turn is None or turn.execution_id is None:
        return None
    execution = turn.execution_id
    for call, result in turn.results().items():
        session.emit(ToolCallCompleted(tool_use_id=call, tool_name=turn.calls[call],
                                       result=result, is_error=call not in turn.answers),
                     execution_id=execution)
    if turn.question is None:
        await session.emit_durable(ExecutionFailed(
            error=RESTART_ERROR, error_type="interrupted", reason="server_restart"),
            execution_id=execution)
    return tracker.parked(results)
