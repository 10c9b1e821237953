"""The event envelope and the catalog of event types.

One shape for the wire, the SSE stream and the disk: ``Event`` is a slotted dataclass that
orjson serialises natively (``Event.to_json``) and that ``Event.from_json`` reads back.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import orjson


class EventType(StrEnum):
    """Every event type, Hive's snake_case names. ``EVENT_DATA`` documents each ``data``."""

    SESSION_STARTED = "session_started"
    SESSION_STOPPED = "session_stopped"
    SESSION_RESUMED = "session_resumed"
    CLIENT_INPUT_RECEIVED = "client_input_received"
    CLIENT_INPUT_REQUESTED = "client_input_requested"
    CLIENT_OUTPUT_DELTA = "client_output_delta"
    LLM_TEXT_DELTA = "llm_text_delta"
    LLM_TURN_COMPLETE = "llm_turn_complete"
    TOOL_CALL_STARTED = "tool_call_started"
    TOOL_CALL_COMPLETED = "tool_call_completed"
    EXECUTION_STARTED = "execution_started"
    EXECUTION_COMPLETED = "execution_completed"
    EXECUTION_FAILED = "execution_failed"
    EXECUTION_CANCELLED = "execution_cancelled"
    WORKER_COLONY_LOADED = "worker_colony_loaded"
    WORKER_COLONY_UNLOADED = "worker_colony_unloaded"
    WORKER_STARTED = "worker_started"
    WORKER_COMPLETED = "worker_completed"
    WORKER_FAILED = "worker_failed"
    TRIGGER_AVAILABLE = "trigger_available"
    TRIGGER_INVALID = "trigger_invalid"
    TRIGGER_ACTIVATED = "trigger_activated"
    TRIGGER_DEACTIVATED = "trigger_deactivated"
    TRIGGER_FIRED = "trigger_fired"
    TRIGGER_UPDATED = "trigger_updated"
    TRIGGER_REMOVED = "trigger_removed"
    TRIGGER_MISSED = "trigger_missed"
    WEBHOOK_RECEIVED = "webhook_received"
    LOG_REPAIRED = "log_repaired"


EVENT_DATA: dict[EventType, str] = {
    EventType.SESSION_STARTED: "{queen_id, queen_name, agent_id|null (the colony a resumed "
    "session had; a new session's colony follows as worker_colony_loaded), model, provider, "
    "resumed: bool, previous_seq: int (last seq before this run, 0 when new)}",
    EventType.SESSION_STOPPED: "{reason: 'deleted'|'agent_deleted'|'shutdown'} always the last "
    "event of a run",
    EventType.SESSION_RESUMED: "not emitted: a resume is session_started with resumed: true "
    "(the name is kept so ?types= may list it)",
    EventType.CLIENT_INPUT_RECEIVED: "{message: str, source: 'user'|'trigger', trigger_id? and "
    "trigger_seq?: int (a trigger's input: the trigger_fired it comes from), "
    "answers_request_seq?: int (answers ask_user), coalesced_into?: int (a coalesced fire)}",
    EventType.CLIENT_INPUT_REQUESTED: "{prompt: str} the queen's ask_user question",
    EventType.CLIENT_OUTPUT_DELTA: "{content: str, snapshot: str} the queen's text as it streams",
    EventType.LLM_TEXT_DELTA: "{content: str, snapshot: str} a worker's text as it streams",
    EventType.LLM_TURN_COMPLETE: "{message: {role, content: [blocks]}, usage: {input_tokens, "
    "output_tokens}, stop_reason, model}",
    EventType.TOOL_CALL_STARTED: "{tool_use_id, tool_name, tool_input}",
    EventType.TOOL_CALL_COMPLETED: "{tool_use_id, tool_name, result: str, is_error: bool}",
    EventType.EXECUTION_STARTED: "{trigger: 'user'|'trigger', input_seq: int, coalesced: int}",
    EventType.EXECUTION_COMPLETED: "{turns: int, usage: {input_tokens, output_tokens}}",
    EventType.EXECUTION_FAILED: "{error: str, error_type: str}",
    EventType.EXECUTION_CANCELLED: "{reason: 'cancelled'}",
    EventType.WORKER_COLONY_LOADED: "{agent_id, agent_path, name, version, tools: [str], "
    "workers: [str]}",
    EventType.WORKER_COLONY_UNLOADED: "{agent_id, reason: 'request'|'agent_unavailable', "
    "error?: str}",
    EventType.WORKER_STARTED: "{worker_id, worker, task}",
    EventType.WORKER_COMPLETED: "{worker_id, worker, result: str, turns: int}",
    EventType.WORKER_FAILED: "{worker_id, worker, error: str ('cancelled' when its execution was "
    "cancelled)}",
    EventType.TRIGGER_AVAILABLE: "{trigger: card}",
    EventType.TRIGGER_INVALID: "{trigger_id: str|null, error: str, source: 'folder'}",
    EventType.TRIGGER_ACTIVATED: "{trigger_id, next_fire_at: int|null (epoch ms; null for a "
    "webhook)}",
    EventType.TRIGGER_DEACTIVATED: "{trigger_id}",
    EventType.TRIGGER_FIRED: "{trigger_id, trigger_type, tick: int|null (the scheduled time, "
    "epoch ms; null for run and webhook fires), manual: bool (run), missed: int (0, or how many "
    "missed ticks / held deliveries a catch-up fire stands for), payload: object|null, "
    "fire_count: int}",
    EventType.TRIGGER_UPDATED: "{trigger: card}",
    EventType.TRIGGER_REMOVED: "{trigger_id}",
    EventType.TRIGGER_MISSED: "{trigger_id, missed: int, capped: bool (cron count hit its cap "
    "of 1000), first_missed_at, last_missed_at (epoch ms: ticks, or held deliveries' "
    "received_at), policy: 'skip'|'fire_once'}",
    EventType.WEBHOOK_RECEIVED: "{delivery_id, agent_id, trigger_id, received_at: int (epoch "
    "ms), headers: {allow-listed}, payload, held?: true (it waited in the inbox)}",
    EventType.LOG_REPAIRED: "{truncated_bytes: int} a torn tail was cut off on open (logged "
    "just before that run's session_started)",
}


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat()


@dataclasses.dataclass(slots=True, frozen=True)
class Event:
    """One immutable record on a session's bus and in its log."""

    seq: int
    type: str
    session_id: str
    stream_id: str = "queen"
    node_id: str = "queen"
    execution_id: str | None = None
    correlation_id: str | None = None
    colony_id: str | None = None
    timestamp: str = dataclasses.field(default_factory=utc_now_iso)
    data: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_json(self) -> bytes:
        """One log line / SSE payload (no trailing newline)."""
        return orjson.dumps(self)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, raw: bytes | str) -> Event:
        return cls(**orjson.loads(raw))
