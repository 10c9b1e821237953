"""Wire shapes built from service objects (one builder per shape)."""

from __future__ import annotations

from typing import Any

from hive_server.models.session import SessionMeta
from hive_server.services.sessions import LiveSession


def live_session_dict(live: LiveSession) -> dict[str, Any]:
    session = live.session
    meta = session.meta
    return {
        "session_id": session.id,
        "colony_id": meta.agent_id,
        "colony_name": None,
        "has_worker": False,
        "agent_path": meta.agent_path,
        "description": "",
        "goal": "",
        "node_count": 0,
        "loaded_at": session.loaded_at,
        "uptime_seconds": round(session.uptime_seconds, 3),
        "intro_message": "",
        "queen_phase": meta.phase,
        "queen_id": meta.queen_id,
        "queen_name": meta.queen_name,
        "model": meta.model,
        "last_seq": session.last_seq,
        "created_at": meta.created_at,
        "live": True,
        "cold": False,
    }


def cold_session_dict(meta: SessionMeta, last_seq: int) -> dict[str, Any]:
    return {
        "session_id": meta.session_id,
        "colony_id": meta.agent_id,
        "agent_path": meta.agent_path,
        "queen_id": meta.queen_id,
        "queen_name": meta.queen_name,
        "queen_phase": meta.phase,
        "model": meta.model,
        "status": meta.status,
        "created_at": meta.created_at,
        "updated_at": meta.updated_at,
        "stopped_at": meta.stopped_at,
        "last_seq": last_seq,
        "live": False,
        "cold": True,
    }
