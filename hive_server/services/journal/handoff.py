"""Handoff notes, kept as a running account of the session's events.

``HandoffNotes.add`` folds in one event; the session feeds it every event it emits, and the
cold resume feeds it the log while rebuilding the conversation (the same single pass), so the
notes cover the session's whole life without ever reading the log again or holding it in
memory: counts, the inputs still waiting, the open question, the newest failures and the
queen's last replies (previews). ``handoff`` turns them into the ``Handoff`` a stop stores
(``session_summary`` and ``meta.json``); the armed triggers come from the live session then.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from hive_server.models.agent_views import TriggerCard
from hive_server.models.event_data import (
    ClientInputReceived,
    ClientInputRequested,
    ExecutionFailed,
    ExecutionStarted,
    LlmTurnComplete,
    QueueCleared,
    ToolCallCompleted,
    WorkerFailed,
    parse_data,
)
from hive_server.models.events import EventType
from hive_server.models.handoff import (
    Handoff,
    HandoffDecision,
    HandoffDone,
    HandoffFailure,
    HandoffInput,
    HandoffPending,
    HandoffQuestion,
    HandoffTrigger,
)
from hive_server.models.session import preview

MAX_INPUTS = 10
MAX_FAILURES = 5
MAX_DECISIONS = 3
_DONE_COUNTS: dict[str, str] = {EventType.EXECUTION_STARTED: "turns",
                EventType.EXECUTION_COMPLETED: "turns_completed",
                EventType.EXECUTION_FAILED: "turns_failed",
                EventType.EXECUTION_CANCELLED: "turns_cancelled",
                EventType.TOOL_CALL_STARTED: "tool_calls",
                EventType.WORKER_COMPLETED: "workers_completed",
                EventType.WORKER_FAILED: "workers_failed"}
_TURN_ENDS = frozenset({EventType.EXECUTION_COMPLETED, EventType.EXECUTION_FAILED,
                        EventType.EXECUTION_CANCELLED})
NOTED = frozenset({*_DONE_COUNTS, EventType.TOOL_CALL_COMPLETED, EventType.CLIENT_INPUT_RECEIVED,
                   EventType.CLIENT_INPUT_REQUESTED, EventType.LLM_TURN_COMPLETE,
                   EventType.QUEUE_CLEARED})
"""The event types the notes read (the rebuild parses these lines for them)."""

Handler = Callable[["HandoffNotes", int, dict[str, Any], str | None], None]


class HandoffNotes:
    def __init__(self) -> None:
        self.counts: dict[str, int] = dict.fromkeys(HandoffDone.model_fields, 0)
        self.inputs: dict[int, HandoffInput] = {}  # received, not started yet (seq order)
        self.question: HandoffQuestion | None = None
        self.failures: deque[HandoffFailure] = deque(maxlen=MAX_FAILURES)
        self.failures_total = 0
        self.decisions: deque[HandoffDecision] = deque(maxlen=MAX_DECISIONS)

    def add(self, seq: int, kind: str, stream: str, data: dict[str, Any],
            timestamp: str | None) -> None:
        """Fold one event in (events of other types are ignored)."""
        if kind not in NOTED:
            return
        if (counted := _DONE_COUNTS.get(kind)) is not None:
            self.counts[counted] += 1
        if stream == "queen" and kind in _TURN_ENDS:
            self.question = None  # an ended turn's question is gone (a stop keeps it open)
        handler = _HANDLERS.get(kind)
        if handler is not None and (stream == "queen" or kind in _ANY_STREAM):
            handler(self, seq, data, timestamp)

    def handoff(self, reason: str, last_seq: int, stopped_at: str,
                triggers: Sequence[HandoffTrigger] = ()) -> Handoff:
        inputs = list(self.inputs.values())
        return Handoff(
            reason=reason, stopped_at=stopped_at, last_seq=last_seq,
            done=HandoffDone(**self.counts),
            pending=HandoffPending(
                queued_inputs=inputs[:MAX_INPUTS], queued_total=len(inputs),
                questions=[self.question] if self.question is not None else [],
                triggers=list(triggers)),
            failures=list(self.failures), failures_total=self.failures_total,
            last_decisions=list(self.decisions))

    # -- per type -------------------------------------------------------------------------------
    def _received(self, seq: int, data: dict[str, Any], _: str | None) -> None:
        received = parse_data(ClientInputReceived, data)
        if received.answers_request_seq is not None:
            if self.question is not None and self.question.seq == received.answers_request_seq:
                self.question = None
        elif received.coalesced_into is None:
            self.inputs[seq] = HandoffInput(seq=seq, source=received.source,
                                            preview=preview(received.message))

    def _started(self, seq: int, data: dict[str, Any], _: str | None) -> None:
        self.inputs.pop(parse_data(ExecutionStarted, data).input_seq, None)

    def _cleared(self, seq: int, data: dict[str, Any], _: str | None) -> None:
        for dropped in parse_data(QueueCleared, data).input_seqs:
            self.inputs.pop(dropped, None)

    def _requested(self, seq: int, data: dict[str, Any], _: str | None) -> None:
        questions = parse_data(ClientInputRequested, data).questions
        self.question = HandoffQuestion(seq=seq, prompts=[q.prompt for q in questions])

    def _replied(self, seq: int, data: dict[str, Any], _: str | None) -> None:
        content = parse_data(LlmTurnComplete, data).message.get("content")
        blocks = content if isinstance(content, list) else [{"type": "text", "text": content}]
        text = " ".join(str(b.get("text") or "") for b in blocks
                        if isinstance(b, dict) and b.get("type") == "text")
        tools = [str(b.get("name")) for b in blocks
                 if isinstance(b, dict) and b.get("type") == "tool_use"]
        self.decisions.append(HandoffDecision(seq=seq, text=preview(text), tools=tools))

    def _tool_done(self, seq: int, data: dict[str, Any], _: str | None) -> None:
        if parse_data(ToolCallCompleted, data).is_error:
            self.counts["tool_errors"] += 1

    def _failed(self, seq: int, data: dict[str, Any], at: str | None) -> None:
        failed = parse_data(ExecutionFailed, data)
        self._failure(HandoffFailure(seq=seq, at=at, kind="execution",
                                     error_type=failed.error_type, error=preview(failed.error)))

    def _worker_failed(self, seq: int, data: dict[str, Any], at: str | None) -> None:
        failed = parse_data(WorkerFailed, data)
        if failed.error != "cancelled":  # its turn's own end says why
            self._failure(HandoffFailure(seq=seq, at=at, kind=f"worker {failed.worker_id}",
                                         error=preview(failed.error)))

    def _failure(self, failure: HandoffFailure) -> None:
        self.failures.append(failure)
        self.failures_total += 1


_HANDLERS: dict[str, Handler] = {
    EventType.CLIENT_INPUT_RECEIVED: HandoffNotes._received,
    EventType.EXECUTION_STARTED: HandoffNotes._started,
    EventType.QUEUE_CLEARED: HandoffNotes._cleared,
    EventType.CLIENT_INPUT_REQUESTED: HandoffNotes._requested,
    EventType.LLM_TURN_COMPLETE: HandoffNotes._replied,
    EventType.TOOL_CALL_COMPLETED: HandoffNotes._tool_done,
    EventType.EXECUTION_FAILED: HandoffNotes._failed,
    EventType.WORKER_FAILED: HandoffNotes._worker_failed,
}
_ANY_STREAM = frozenset({EventType.TOOL_CALL_COMPLETED, EventType.WORKER_FAILED,
                         EventType.QUEUE_CLEARED})


class _Cards(Protocol):
    def cards(self) -> list[TriggerCard]: ...


def armed_triggers(triggers: _Cards) -> list[HandoffTrigger]:
    """The active triggers among a session's trigger cards, with their next fire."""
    return [HandoffTrigger(trigger_id=card.trigger_id, name=card.name,
                           trigger_type=card.trigger_type, next_fire_at=card.next_fire_at,
                           task=preview(card.task))
            for card in triggers.cards() if card.active and card.trigger_type is not None]
