"""The event envelope and the catalog of event types.

One shape for the wire, the SSE stream and the disk: ``Event`` is a slotted dataclass that
orjson serialises natively (``Event.to_json``) and that ``Event.from_json`` reads back. An event
is serialised once: ``to_json`` and ``sse_frame`` keep their bytes, which the log writer and every
SSE subscriber then share (an event is immutable, its ``data`` included once it is built).
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import orjson


class EventType(StrEnum):
    """Every event type, Hive's snake_case names. ``models/event_data.py`` defines each
    type's ``data`` (one model per type)."""

    SESSION_STARTED = "session_started"
    SESSION_STOPPED = "session_stopped"
    SESSION_RESUMED = "session_resumed"
    SESSION_SUMMARY = "session_summary"
    CLIENT_INPUT_RECEIVED = "client_input_received"
    CLIENT_INPUT_REQUESTED = "client_input_requested"
    CLIENT_INPUT_COMMITTED = "client_input_committed"
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
    WEBHOOK_REJECTED = "webhook_rejected"
    QUEUE_CLEARED = "queue_cleared"
    LOG_REPAIRED = "log_repaired"
    LOG_CORRUPT = "log_corrupt"
    STATE_CORRUPT = "state_corrupt"
    LOOP_STATE_CHANGED = "loop_state_changed"
    BUDGET_WARNING = "budget_warning"
    BUDGET_EXCEEDED = "budget_exceeded"
    BUDGET_RESUMED = "budget_resumed"
    TRIGGER_HELD = "trigger_held"
    SESSION_SNAPSHOT = "session_snapshot"  # synthesised: first SSE frame, never stored


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat()


class _Encoded:
    """The slots where an ``Event`` keeps its serialised bytes. They are not dataclass fields,
    so orjson, ``asdict``, equality and pickling ignore them."""

    __slots__ = ("_frame", "_json")


@dataclasses.dataclass(slots=True, frozen=True)
class Event(_Encoded):
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
        """One log line / SSE payload (no trailing newline), serialised on the first call."""
        try:
            return self._json
        except AttributeError:
            encoded = orjson.dumps(self)
            object.__setattr__(self, "_json", encoded)  # a cache, not a field: frozen holds
            return encoded

    def sse_frame(self) -> bytes:
        """The event as one SSE frame, ``id: <seq>\ndata: <json>\n\n``, built on the first
        call and then shared by every stream."""
        try:
            return self._frame
        except AttributeError:
            frame = b"id: %d\ndata: %s\n\n" % (self.seq, self.to_json())
            object.__setattr__(self, "_frame", frame)
            return frame

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, raw: bytes | str) -> Event:
        """The event on one line. A line with every envelope field (what the log writer
        writes) is kept as the event's ``to_json``, so re-sending a logged event (SSE replay,
        ``events/history``) serialises nothing. Not a line holding a ``\\r``: an SSE reader
        would take it for a line end."""
        return cls.from_fields(orjson.loads(raw), raw)

    @classmethod
    def from_fields(cls, fields: dict[str, Any], raw: bytes | str) -> Event:
        """The event of ``fields``, parsed from the line ``raw`` (``from_json``)."""
        event = cls(**fields)
        if isinstance(raw, bytes) and len(fields) == _FIELD_COUNT and b"\r" not in raw:
            object.__setattr__(event, "_json", raw)
        return event


_FIELD_COUNT = len(dataclasses.fields(Event))
