"""Wire shapes built from service objects (one builder per shape)."""

from __future__ import annotations

from typing import Any

from hive_server.models.session import SessionMeta
from hive_server.services.agent_folder import AgentEntry
from hive_server.services.colony import DEFAULT_WORKER
from hive_server.services.sessions import LiveSession


def live_session_dict(live: LiveSession) -> dict[str, Any]:
    session, colony = live.session, live.colony
    meta = session.meta
    manifest = colony.manifest if colony is not None else None
    return {
        "session_id": session.id,
        "colony_id": colony.agent_id if colony else None,
        "colony_name": manifest.name if manifest else None,
        "has_worker": colony is not None,
        "agent_path": meta.agent_path,
        "description": manifest.description if manifest else "",
        "goal": manifest.goal if manifest else "",
        "node_count": len(colony.workers) if colony else 0,
        "loaded_at": session.loaded_at,
        "uptime_seconds": round(session.uptime_seconds, 3),
        "intro_message": _intro(live),
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


def _intro(live: LiveSession) -> str:
    profile = live.queen.profile
    title = f", {profile.title}" if profile.title else ""
    if live.colony is None:
        return f"{profile.name}{title}, is ready."
    return f"{profile.name}{title}, is ready with the {live.colony.manifest.name} colony."


def agent_dict(entry: AgentEntry, loaded: bool) -> dict[str, Any]:
    manifest = entry.manifest
    base: dict[str, Any] = {
        "agent_id": entry.agent_id, "path": str(entry.path), "is_loaded": loaded,
        "version": entry.version, "valid": entry.is_valid, "error": entry.error,
        "has_triggers": entry.triggers_raw is not None, "has_readme": entry.readme is not None,
    }
    if manifest is None:
        return base
    return {**base, "name": manifest.name, "description": manifest.description,
            "goal": manifest.goal, "category": manifest.category, "tags": manifest.tags,
            "icon": manifest.icon, "model": manifest.model,
            "tool_count": len(entry.worker_tool_names()),
            "worker_count": len({DEFAULT_WORKER, *manifest.workers}),
            "workers": sorted(manifest.workers), "tools": sorted(entry.tools)}
