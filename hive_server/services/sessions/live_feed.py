"""What the live-sessions feed shows: one row per live session, from its queen's state."""

from __future__ import annotations

from hive_server.models.live import LiveSessionRow, LiveSessionsFrame
from hive_server.services.sessions.manager import Session, SessionManager


def live_row(live: Session) -> LiveSessionRow:
    snap, meta = live.queen.snapshot(), live.journal.meta
    busy = snap.queen_busy_reason or ("awaiting_input" if snap.awaiting_input
                                      else "interrupted" if snap.interrupted else None)
    tools = snap.current_tool_calls
    return LiveSessionRow(
        session_id=live.journal.id, colony_id=meta.agent_id, queen_id=meta.queen_id,
        queen_name=meta.queen_name, phase="colony" if live.colony is not None else "independent",
        activity=snap.activity, is_executing=snap.is_executing,
        awaiting_input=snap.awaiting_input, interrupted=snap.interrupted,
        interrupt_cause=snap.interrupt_cause, queen_busy_reason=busy,
        park_reason=snap.park_reason, current_tool_name=tools[0].name if tools else None,
        current_tool_count=len(tools), active_worker_count=snap.active_worker_count,
        queued_inputs=snap.queued_inputs, last_event_at=snap.last_event_at,
        snapshot_seq=snap.snapshot_seq)


def live_frame(manager: SessionManager) -> LiveSessionsFrame:
    rows = [live_row(live) for live in manager.live()]
    rows.sort(key=lambda row: row.last_event_at or "", reverse=True)
    return LiveSessionsFrame(sessions=rows)
