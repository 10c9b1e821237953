"""The queen's loop state, derived from the session's own events.

``QueenActivity.observe`` sees every event the session emits (in seq order) and keeps what a UI
needs to show the queen's state at once: executing / awaiting the user / interrupted, why she
is parked, her open tool calls, a pending ``ask_user`` question, running workers. When the
loop state changes it returns the ``loop_state_changed`` payload for the session to emit, so
that event follows from the log itself and never disagrees with it. ``snapshot`` builds the
``session_snapshot`` that opens an SSE stream (and ``GET .../snapshot``).

The states follow Hive's: ``executing`` from ``execution_started`` (and an ``ask_user``
answer); ``awaiting_user`` with ``park_reason`` ``ask_user`` (a question is pending) or
``turn_done`` (the execution ended); ``interrupted`` with ``user_stopped`` (cancelled) or
``llm_error`` (failed). A session that has not run yet is ``idle``.

It also keeps the session's ``status`` (``models/session.py`` ``SessionStatus``), which
``SessionJournal`` writes into meta and the index: ``active`` while a turn runs, ``awaiting_input``
while an ``ask_user`` question waits, ``idle`` when a turn ended, ``failed`` (with
``last_error``) when one failed, ``cancelled`` when Stop cancelled it, ``budget_exceeded``
from a ``budget_exceeded`` event until ``budget_resumed`` (whatever runs meanwhile).
``stopped`` is set by the session's close.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from hive_server.models.event_data import (
    Activity,
    ClientInputReceived,
    ClientInputRequested,
    LoopStateChanged,
    ParkReason,
    Question,
    SessionSnapshot,
    ToolCallInFlight,
    parse_data,
)
from hive_server.models.events import Event, EventType
from hive_server.models.session import SessionStatus

_ENDS: dict[str, tuple[Activity, ParkReason]] = {
    EventType.EXECUTION_COMPLETED: ("awaiting_user", "turn_done"),
    EventType.EXECUTION_CANCELLED: ("interrupted", "user_stopped"),
    EventType.EXECUTION_FAILED: ("interrupted", "llm_error"),
}
_STATUS: dict[str, SessionStatus] = {
    EventType.EXECUTION_STARTED: "active",
    EventType.CLIENT_INPUT_REQUESTED: "awaiting_input",
    EventType.EXECUTION_COMPLETED: "idle",
    EventType.EXECUTION_CANCELLED: "cancelled",
    EventType.EXECUTION_FAILED: "failed",
}
_BUDGET = frozenset({EventType.BUDGET_EXCEEDED, EventType.BUDGET_RESUMED})
_WORKER_ENDS = frozenset({EventType.WORKER_COMPLETED, EventType.WORKER_FAILED})


@dataclasses.dataclass(slots=True)
class QueenActivity:
    activity: Activity = "idle"
    park_reason: ParkReason | None = None
    execution_id: str | None = None
    tools: dict[str, ToolCallInFlight] = dataclasses.field(default_factory=dict)
    questions: list[Question] | None = None
    workers: set[str] = dataclasses.field(default_factory=set)
    iteration: int = 0  # the current execution's latest model turn
    interrupt_cause: str | None = None  # "stale": the watchdog failed a silent turn
    last_event_at: str | None = None
    on_change: Callable[[], None] | None = None  # the server-wide live-sessions feed
    status: SessionStatus = "idle"
    last_error: str | None = None

    def observe(self, event: Event) -> LoopStateChanged | None:
        """Fold one event in; the ``loop_state_changed`` to emit when the state changed."""
        self.last_event_at = event.timestamp
        before = self._key()
        kind = event.type
        if kind == EventType.WORKER_STARTED:
            self.workers.add(event.stream_id)
        elif kind in _WORKER_ENDS:
            self.workers.discard(event.stream_id)
        elif event.stream_id == "queen":
            self._fold(event)
            self._follow_status(event)
        after = self._key()
        if after == before:
            return None
        if self.on_change is not None:
            self.on_change()
        if after[:2] == before[:2]:
            return None
        return LoopStateChanged(activity=self.activity, park_reason=self.park_reason,
                                interrupt_cause=self.interrupt_cause)

    def _key(self) -> tuple[object, ...]:
        """What the live-sessions feed shows (the first two: the loop state)."""
        return (self.activity, self.park_reason, len(self.tools), len(self.workers),
                self.questions is not None)

    def _fold(self, event: Event) -> None:
        kind = event.type
        if kind == EventType.EXECUTION_STARTED:
            self._set("executing", None, event.execution_id)
            self.iteration = 0
        elif kind == EventType.LLM_TURN_COMPLETE:
            self.iteration = int(event.data.get("iteration") or 0)
        elif kind == EventType.TOOL_CALL_STARTED:
            self.tools[str(event.data.get("tool_use_id"))] = ToolCallInFlight(
                id=str(event.data.get("tool_use_id")), name=event.data.get("tool_name"),
                started_at=event.timestamp, execution_id=event.execution_id, seq=event.seq)
        elif kind == EventType.TOOL_CALL_COMPLETED:
            self.tools.pop(str(event.data.get("tool_use_id")), None)
        elif kind == EventType.CLIENT_INPUT_REQUESTED:
            self.questions = parse_data(ClientInputRequested, event.data).questions
            self.activity, self.park_reason = "awaiting_user", "ask_user"
            self.execution_id = event.execution_id or self.execution_id
        elif kind == EventType.CLIENT_INPUT_RECEIVED and self.questions is not None:
            if parse_data(ClientInputReceived, event.data).answers_request_seq is not None:
                self.questions = None
                self.activity, self.park_reason = "executing", None
        elif kind == EventType.EXECUTION_FAILED and event.data.get("error_type") == "interrupted":
            self._set("awaiting_user", "cold_interrupted", None)  # a restart ended the turn
        elif kind == EventType.EXECUTION_FAILED and event.data.get("error_type") == "stale":
            self._set("interrupted", None, None)
            self.interrupt_cause = "stale"  # Hive's cause for a turn that went silent
        elif kind in _ENDS:
            self._set(*_ENDS[kind], None)

    def _follow_status(self, event: Event) -> None:
        if event.type in _BUDGET or self.status == "budget_exceeded":
            self._follow_budget(event)  # parked by a spend limit until budget_resumed
            return
        if event.type == EventType.CLIENT_INPUT_RECEIVED:
            if self.status == "awaiting_input" and self.activity == "executing":
                self.status = "active"  # the question was answered: the turn goes on
            return
        status = _STATUS.get(event.type)
        if status is None:
            return
        self.status = status
        if status == "failed":
            self.last_error = (f"{event.data.get('error_type') or 'error'}: "
                               f"{event.data.get('error') or ''}").rstrip(": ")

    def _follow_budget(self, event: Event) -> None:
        if event.type == EventType.BUDGET_EXCEEDED:
            self.status = "budget_exceeded"
            self.last_error = (f"budget_exceeded: {event.data.get('level')} "
                               f"{event.data.get('kind')} limit {event.data.get('limit')}")
        elif event.type == EventType.BUDGET_RESUMED:
            self.status, self.last_error = "idle", None

    def _set(self, activity: Activity, park: ParkReason | None, execution: str | None) -> None:
        self.activity, self.park_reason, self.execution_id = activity, park, execution
        self.interrupt_cause = None
        self.tools.clear()
        self.questions = None

    @property
    def busy_reason(self) -> str | None:
        if self.activity != "executing":
            return None
        return "tool" if self.tools else "llm"

    def snapshot(self, snapshot_seq: int, queued: int) -> SessionSnapshot:
        return SessionSnapshot(
            snapshot_seq=snapshot_seq, activity=self.activity,
            is_executing=self.activity == "executing",
            awaiting_input=self.activity == "awaiting_user",
            interrupted=self.activity == "interrupted", interrupt_cause=self.interrupt_cause,
            park_reason=self.park_reason, queen_busy_reason=self.busy_reason,
            current_execution_id=self.execution_id,
            current_tool_calls=list(self.tools.values()), pending_questions=self.questions,
            queued_inputs=queued, active_worker_count=len(self.workers),
            last_event_at=self.last_event_at)
