"""The ``data`` of every event type: one pydantic model per type, the only place it is defined
(the trigger and webhook ones are in ``trigger_events.py``; ``MODELS`` lists them all).

Emitters build these models (``SessionJournal.emit(ClientInputReceived(...))``); readers (the
conversation rebuild, the activity tracker) parse a stored ``data`` dict back through them with
``parse_data``. Field names are Hive's where Hive's UI reads them (``content`` on inputs,
``iteration``/``inner_turn`` on deltas, ``questions`` on ``client_input_requested``, top-level
token counts on ``llm_turn_complete``, flat trigger card fields on ``trigger_*``).
``GET /api/events/schema`` publishes each model's JSON Schema.

Logs written before the Hive names still parse: a renamed field accepts its old name
(``client_input_received.message`` -> ``content``). Unknown keys are ignored on read.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from pydantic import (
    AliasChoices,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
)

from hive_server.models.base import Model
from hive_server.models.budget import BudgetExceeded, BudgetResumed, BudgetWarning, TriggerHeld
from hive_server.models.event_base import EventData
from hive_server.models.events import EventType
from hive_server.models.handoff import Handoff
from hive_server.models.trigger_events import (
    TriggerActivated,
    TriggerAvailable,
    TriggerCardFields,
    TriggerDeactivated,
    TriggerFired,
    TriggerInvalid,
    TriggerMissed,
    TriggerRemoved,
    TriggerUpdated,
    WebhookReceived,
    WebhookRejected,
)

Activity = Literal["executing", "awaiting_user", "interrupted", "idle"]
ParkReason = Literal["ask_user", "turn_done", "user_stopped", "llm_error", "cold_interrupted"]


# -- session --------------------------------------------------------------------------------------
class SessionStarted(EventData):
    """The first event of every run of a session (new or resumed)."""

    TYPE = EventType.SESSION_STARTED
    queen_id: str
    queen_name: str
    agent_id: str | None = Field(description="the colony a resumed session had; a new "
                                             "session's colony follows as worker_colony_loaded")
    model: str
    provider: str
    resumed: bool
    previous_seq: int = Field(description="last seq before this run, 0 when new")


class SessionStopped(EventData):
    """Always the last event of a run."""

    TYPE = EventType.SESSION_STOPPED
    reason: Literal["deleted", "agent_deleted", "shutdown", "failed_to_start"] | str


class SessionSummary(EventData):
    """The handoff notes of a stop, just before its ``session_stopped`` (also in ``meta.json``
    as ``handoff``): what was done, what is pending, what failed, the last decisions."""

    TYPE = EventType.SESSION_SUMMARY
    handoff: Handoff


class SessionResumed(EventData):
    """Never emitted: a resume is ``session_started`` with ``resumed: true`` (the name is kept
    so ``?types=`` may list it)."""

    TYPE = EventType.SESSION_RESUMED


class LogRepaired(EventData):
    """A torn tail was cut off on open (logged just before that run's session_started)."""

    TYPE = EventType.LOG_REPAIRED
    truncated_bytes: int


class LogCorrupt(EventData):
    """A line of ``events.jsonl`` that is not a valid event (half JSON, NULs, invalid UTF-8):
    every reader skips it, nothing rewrites it; reported once, when the session resumes."""

    TYPE = EventType.LOG_CORRUPT
    offset: int = Field(description="byte offset of the line in events.jsonl")
    length: int = Field(description="its length in bytes, newline excluded")


class StateCorrupt(EventData):
    """A session file (``triggers.json``) that was corrupt or unreadable at start: kept aside
    byte for byte, never overwritten; what could be read of it is used."""

    TYPE = EventType.STATE_CORRUPT
    file: str = Field(description="the file's name in the session folder")
    error: str = Field(description="what was wrong with it")
    kept_as: str = Field(description="its new name beside it: <file>.corrupt-<UTC timestamp>")


# -- queen input and output -----------------------------------------------------------------------
class ClientInputReceived(EventData):
    """An input for the queen: a user's chat (``content``) or a trigger's task (``text``)."""

    TYPE = EventType.CLIENT_INPUT_RECEIVED
    content: str = Field(default="", validation_alias=AliasChoices("content", "message"),
                         description="what the user typed; empty for a trigger input, "
                                     "which Hive's UI shows as the trigger_fired banner")
    text: str | None = Field(default=None, description="the queen's message when it is not "
                                                       "the user's (a trigger fire)")
    source: Literal["user", "trigger"] = "user"
    trigger_id: str | None = None
    trigger_seq: int | None = Field(default=None, description="a trigger input: the seq of "
                                                              "the trigger_fired it comes from")
    answers_request_seq: int | None = Field(default=None, description="answers the "
                                            "client_input_requested with this seq (ask_user)")
    coalesced_into: int | None = Field(default=None, description="a coalesced trigger fire: "
                                       "the seq of the pending input it was folded into")
    request_id: str | None = Field(
        default=None, exclude_if=lambda value: value is None,
        description="a chat forwarded to its owner (--redis): the forward's request id, by "
                    "which a new owner finds a chat an earlier owner stored (absent otherwise)")

    @property
    def message(self) -> str:
        """What the queen receives."""
        return self.text if self.text is not None else self.content


class ClientInputCommitted(EventData):
    """The queen takes a queued input into her conversation (just before its
    ``execution_started``); its ``correlation_id`` is that of the ``client_input_received``,
    so Hive's UI moves the user's bubble to this moment."""

    TYPE = EventType.CLIENT_INPUT_COMMITTED
    seq: int = Field(description="the client_input_received taken in")


class Question(Model):
    model_config = ConfigDict(extra="ignore", frozen=True)
    id: str
    prompt: str
    options: list[str] | None = None


class QueueCleared(EventData):
    """``DELETE /api/sessions/{id}/queue``: inputs waiting for the queen were dropped (a cold
    resume does not hand them to her again)."""

    TYPE = EventType.QUEUE_CLEARED
    dropped: int
    input_seqs: list[int] = Field(description="the dropped inputs' client_input_received seqs")


class ClientInputRequested(EventData):
    """The queen's ``ask_user`` question; the next chat answers it."""

    TYPE = EventType.CLIENT_INPUT_REQUESTED
    questions: list[Question]
    park_reason: ParkReason = "ask_user"
    tool_use_id: str | None = None


class TextDeltaData(EventData):
    content: str = Field(description="the new text")
    snapshot: str = Field(description="the turn's text so far")
    iteration: int = Field(default=0, description="index of the execution's model turn: text "
                                                  "before and after a tool call differs")
    inner_turn: int = 0


class ClientOutputDelta(TextDeltaData):
    """The queen's text as it streams (coalesced: at most one event per 50 ms)."""

    TYPE = EventType.CLIENT_OUTPUT_DELTA


class LlmTextDelta(TextDeltaData):
    """A worker's text as it streams."""

    TYPE = EventType.LLM_TEXT_DELTA


class LlmTurnComplete(EventData):
    """One model turn: the full assistant message (what the rebuild reads) and its usage."""

    TYPE = EventType.LLM_TURN_COMPLETE
    message: dict[str, Any] = Field(description="{role: assistant, content: [blocks]}")
    model: str = ""
    stop_reason: str | None = None
    iteration: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = Field(default=0, description="input tokens read from the prompt cache")
    cache_creation_tokens: int = 0
    cost_usd: float | None = Field(default=None, description="estimated from the price table "
                                   "in llm/pricing.py; 0 offline, null for an unknown model")
    latency_ms: float | None = Field(default=None, description="from the request to the "
                                     "whole message (null in logs written before it existed)")
    ttft_ms: float | None = Field(default=None, description="time to the first text token; "
                                  "null for a turn without text")


class ToolCallStarted(EventData):
    TYPE = EventType.TOOL_CALL_STARTED
    tool_use_id: str
    tool_name: str
    tool_input: Any = None


class ToolCallCompleted(EventData):
    """A tool's full result (the rebuild gives it back to the model)."""

    TYPE = EventType.TOOL_CALL_COMPLETED
    tool_use_id: str
    tool_name: str = ""
    result: str = ""
    is_error: bool = False


# -- executions -----------------------------------------------------------------------------------
class UsageData(Model):
    model_config = ConfigDict(extra="ignore", frozen=True)
    input_tokens: int = 0
    output_tokens: int = 0


class ExecutionStarted(EventData):
    TYPE = EventType.EXECUTION_STARTED
    trigger: Literal["user", "trigger"] | str = Field(description="the input's source")
    input_seq: int = Field(description="the client_input_received this execution handles")
    coalesced: int = 0


class ExecutionCompleted(EventData):
    TYPE = EventType.EXECUTION_COMPLETED
    turns: int
    usage: UsageData


_BUDGET_FIELDS = ("level", "kind", "limit", "spent")


class ExecutionFailed(EventData):
    TYPE = EventType.EXECUTION_FAILED
    error: str
    error_type: str = Field(description="the API's error type, a local one, or 'interrupted' "
                                        "(the server stopped during the turn)")
    reason: str | None = Field(default=None, description="'server_restart' for 'interrupted'")
    level: str | None = Field(default=None, description="budget_exceeded: the limit's level "
                                                        "(session, agent, server)")
    kind: str | None = Field(default=None, description="budget_exceeded: tokens or cost_usd")
    limit: float | None = Field(default=None, description="budget_exceeded: the limit crossed")
    spent: float | None = Field(default=None, description="budget_exceeded: spent against it")

    @model_serializer(mode="wrap")
    def _without_unset_budget(self, handler: SerializerFunctionWrapHandler):
        """The budget fields only on a budget_exceeded failure (other failures keep their
        shape, in the log and on the wire). No return annotation: the published schema
        stays the model's."""
        data = handler(self)
        for name in _BUDGET_FIELDS:
            if data.get(name, 0) is None:
                del data[name]
        return data


class ExecutionCancelled(EventData):
    TYPE = EventType.EXECUTION_CANCELLED
    reason: Literal["cancelled"] = "cancelled"


class LoopStateChanged(EventData):
    """The queen's loop changed between executing, waiting for the user and interrupted."""

    TYPE = EventType.LOOP_STATE_CHANGED
    activity: Activity
    park_reason: ParkReason | None = None
    interrupt_cause: str | None = None


# -- colony and workers ---------------------------------------------------------------------------
class WorkerColonyLoaded(EventData):
    TYPE = EventType.WORKER_COLONY_LOADED
    agent_id: str
    agent_path: str
    name: str
    version: str
    tools: list[str]
    workers: list[str]


class WorkerColonyUnloaded(EventData):
    TYPE = EventType.WORKER_COLONY_UNLOADED
    agent_id: str
    reason: Literal["request", "agent_unavailable"] | str
    error: str | None = None


class WorkerStarted(EventData):
    TYPE = EventType.WORKER_STARTED
    worker_id: str
    worker: str
    task: str


class WorkerCompleted(EventData):
    TYPE = EventType.WORKER_COMPLETED
    worker_id: str
    worker: str
    result: str
    turns: int


class WorkerFailed(EventData):
    TYPE = EventType.WORKER_FAILED
    worker_id: str
    worker: str
    error: str = Field(description="'cancelled' when its execution was cancelled")


# -- synthesised (never stored) ----------------------------------------------------------------
class ToolCallInFlight(Model):
    model_config = ConfigDict(frozen=True)
    id: str
    name: str | None
    started_at: str
    execution_id: str | None
    seq: int


class SessionSnapshot(EventData):
    """The first frame of an SSE connection without a cursor (``seq: 0``, never stored), and
    ``GET /api/sessions/{id}/snapshot``: the queen's state at ``snapshot_seq``."""

    TYPE = EventType.SESSION_SNAPSHOT
    snapshot_seq: int
    activity: Activity
    is_executing: bool
    awaiting_input: bool
    interrupted: bool
    interrupt_cause: str | None
    park_reason: ParkReason | None
    queen_busy_reason: Literal["llm", "tool"] | None
    current_execution_id: str | None
    current_tool_calls: list[ToolCallInFlight]
    pending_questions: list[Question] | None
    queued_inputs: int = Field(description="inputs waiting for the queen")
    active_worker_count: int
    last_event_at: str | None


M = TypeVar("M", bound=EventData)
__all__ = ["MODELS", "EventData", "TriggerCardFields", "parse_data", "schemas"]

MODELS: dict[EventType, type[EventData]] = {
    model.TYPE: model for model in (
        SessionStarted, SessionStopped, SessionSummary, SessionResumed, LogRepaired, LogCorrupt,
        StateCorrupt, ClientInputReceived,
        ClientInputCommitted, ClientInputRequested, ClientOutputDelta, LlmTextDelta,
        LlmTurnComplete, ToolCallStarted, ToolCallCompleted, ExecutionStarted, ExecutionCompleted,
        ExecutionFailed, ExecutionCancelled, LoopStateChanged, WorkerColonyLoaded,
        WorkerColonyUnloaded, WorkerStarted, WorkerCompleted, WorkerFailed, TriggerAvailable,
        TriggerActivated, TriggerUpdated, TriggerFired, TriggerInvalid, TriggerDeactivated,
        TriggerRemoved, TriggerMissed, WebhookReceived, WebhookRejected, QueueCleared,
        SessionSnapshot, BudgetWarning, BudgetExceeded, BudgetResumed, TriggerHeld)
}
"""Every event type's payload model (a test checks that no type is missing)."""


def parse_data(model: type[M], data: dict[str, Any]) -> M:
    """A stored ``data`` dict read through its model (old field names accepted)."""
    return model.model_validate(data)


def schemas() -> dict[str, Any]:
    """The JSON Schema of every type's ``data``, by type name."""
    return {str(kind): model.model_json_schema(mode="serialization")
            for kind, model in MODELS.items()}
