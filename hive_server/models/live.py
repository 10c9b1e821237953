"""Rows of the live-sessions feed (``GET /api/sessions/live``), in Hive's field names."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict

from hive_server.models.base import Model


class LiveSessionRow(Model):
    """One live session's state, as Hive's sidebar badges read it."""

    model_config = ConfigDict(frozen=True)

    session_id: str
    colony_id: str | None
    queen_id: str
    queen_name: str
    phase: str
    activity: str
    is_executing: bool
    awaiting_input: bool
    interrupted: bool
    interrupt_cause: str | None
    queen_busy_reason: Literal["llm", "tool", "awaiting_input", "interrupted"] | None
    park_reason: str | None
    current_tool_name: str | None
    current_tool_count: int
    active_worker_count: int
    queued_inputs: int
    last_event_at: str | None
    snapshot_seq: int


class LiveSessionsFrame(Model):
    """The data of one ``event: snapshot`` frame: every live session, newest first."""

    model_config = ConfigDict(frozen=True)

    sessions: list[LiveSessionRow]
