"""Wire shapes built from service objects (one builder per shape)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TypeVar

from hive_server.models.agent import AgentManifest, WorkerSpec
from hive_server.models.agent_views import (
    AgentView,
    Discover,
    Response,
    ValidAgentView,
    WorkerEntry,
)
from hive_server.models.responses import (
    ColdSessionView,
    HistoryRow,
    LiveSessionDetail,
    LiveSessionView,
    RemoteSessionView,
    SessionLoading,
)
from hive_server.models.session import QueenPhase, SessionMeta
from hive_server.services.catalog.agent_folder import AgentEntry
from hive_server.services.runtime.colony import DEFAULT_WORKER
from hive_server.services.sessions.history import AgentOverview, AgentUsage, HistoryEntry
from hive_server.services.sessions.lookup import ColdSession, Found, LoadingSession, RemoteSession
from hive_server.services.sessions.manager import Session
from hive_server.services.tools.builtins import BUILTIN_TOOL_NAMES


def queen_phase(agent_id: str | None) -> QueenPhase:
    """Hive's phase: ``colony`` while a colony is loaded, else ``independent``."""
    return "colony" if agent_id else "independent"


def live_session_view(live: Session) -> LiveSessionView:
    return _live(LiveSessionView, live)


def session_answer(found: Found) -> tuple[Response, int]:
    """``GET /api/sessions/{id}``: a live session with its entry points (trigger cards), the
    one on disk, one another node runs (``--redis``), or 202 while it loads."""
    if isinstance(found, LoadingSession):
        return SessionLoading(session_id=found.session_id, loading=True), 202
    if isinstance(found, ColdSession):
        return _on_disk(ColdSessionView, found.meta, found.last_seq,
                        created_at=found.meta.created_at, live=False, cold=True), 200
    if isinstance(found, RemoteSession):
        return remote_session_view(found), 200
    return _live(LiveSessionDetail, found, entry_points=found.triggers.cards()), 200


def remote_session_view(found: RemoteSession) -> RemoteSessionView:
    """A session another node runs (``--redis``), from its meta and stream."""
    return _on_disk(RemoteSessionView, found.meta, found.last_seq,
                    created_at=found.meta.created_at, live=True, cold=False,
                    node_id=found.node_id)


L = TypeVar("L", bound=LiveSessionView)
D = TypeVar("D", bound=ColdSessionView | RemoteSessionView | HistoryRow)


def _live(shape: type[L], live: Session, **more: object) -> L:
    """A live session's view (``more``: the fields a detail adds)."""
    session, colony = live.journal, live.colony
    meta = session.meta
    manifest = colony.manifest if colony is not None else None
    return shape(
        session_id=session.id,
        colony_id=colony.agent_id if colony else None,
        colony_name=manifest.name if manifest else None,
        has_worker=colony is not None,
        agent_path=meta.agent_path or "",  # Hive's UI calls .endsWith on it: never null
        description=manifest.description if manifest else "",
        goal=manifest.goal if manifest else "",
        node_count=len(colony.workers) if colony else 0,
        loaded_at=session.loaded_at,
        uptime_seconds=round(session.uptime_seconds, 3),
        intro_message=_intro(live),
        queen_phase=queen_phase(colony.agent_id if colony else None),
        queen_id=meta.queen_id, queen_name=meta.queen_name,
        colony_spawned=False, spawned_colony_id=None,
        model=meta.model, last_seq=session.last_seq, created_at=meta.created_at,
        title=meta.title, status=meta.status, last_error=meta.last_error,
        last_active_at=meta.active_iso, last_message=meta.last_message,
        message_count=meta.message_count, live=True, cold=False, warnings=meta.warnings,
        **more)


def _on_disk(shape: type[D], meta: SessionMeta, last_seq: int, **more: object) -> D:
    """A session's view from its ``meta.json`` (``more``: the fields of the cold view or of
    the history row)."""
    return shape(
        session_id=meta.session_id, colony_id=meta.agent_id, agent_path=meta.agent_path or "",
        queen_id=meta.queen_id, queen_name=meta.queen_name,
        queen_phase=queen_phase(meta.agent_id), colony_spawned=False, spawned_colony_id=None,
        model=meta.model, status=meta.status, last_error=meta.last_error,
        first_message=meta.first_message, updated_at=meta.updated_at,
        stopped_at=meta.stopped_at, last_seq=last_seq, title=meta.title,
        warnings=meta.warnings, handoff=meta.handoff, **more)


def history_row(entry: HistoryEntry) -> HistoryRow:
    """A row of ``GET /api/sessions/history``: times in epoch seconds, as Hive's UI reads."""
    return _on_disk(HistoryRow, entry.meta, entry.last_seq, created_at=entry.created_at,
                    last_active_at=entry.last_active_at, last_message=entry.meta.last_message,
                    has_messages=entry.has_messages, message_count=entry.meta.message_count,
                    agent_name=None, live=entry.live, cold=not entry.live)


def _intro(live: Session) -> str:
    profile = live.queen.profile
    title = f", {profile.title}" if profile.title else ""
    if live.colony is None:
        return f"{profile.name}{title}, is ready."
    return f"{profile.name}{title}, is ready with the {live.colony.manifest.name} colony."


def agent_view(entry: AgentEntry, loaded: bool, usage: AgentUsage | None = None,
               queen_name: str = "") -> ValidAgentView | AgentView:
    """An agent folder in Hive's discover shape (plus our keys); an invalid folder has only
    the base keys and its ``error``. ``queen_name``: the queen a new session of the colony
    gets (Hive's UI labels the colony's replies with it before a session exists)."""
    manifest, usage = entry.manifest, usage or AgentUsage()
    if manifest is None:
        return _agent(AgentView, entry, loaded, usage)
    worker_names = sorted({DEFAULT_WORKER, *manifest.workers})
    return _agent(ValidAgentView, entry, loaded, usage, name=manifest.name,
                  description=manifest.description, goal=manifest.goal,
                  category=manifest.category, tags=manifest.tags, icon=manifest.icon,
                  model=manifest.model, tool_count=len(entry.worker_tool_names()),
                  node_count=len(worker_names), worker_count=len(worker_names),
                  worker_names=worker_names,
                  workers=_worker_entries(entry, manifest, worker_names, queen_name),
                  tools=sorted(entry.tools))


A = TypeVar("A", bound=AgentView)


def _agent(shape: type[A], entry: AgentEntry, loaded: bool, usage: AgentUsage,
           **more: object) -> A:
    """An agent folder's view: the keys of any folder (``more``: a valid one's)."""
    return shape(agent_id=entry.agent_id, path=str(entry.path), is_loaded=loaded,
                 version=entry.version, valid=entry.is_valid, error=entry.error,
                 has_triggers=entry.triggers_raw is not None,
                 has_readme=entry.readme is not None, session_count=usage.session_count,
                 run_count=usage.run_count, last_active=_iso(usage.last_active),
                 created_at=None, **more)


def _worker_entries(entry: AgentEntry, manifest: AgentManifest, names: list[str],
                    queen_name: str) -> list[WorkerEntry]:
    """Hive's ``WorkerEntry`` for each worker spec of the agent (none has run: no task)."""
    offered = set(entry.tools) | BUILTIN_TOOL_NAMES
    default = WorkerSpec(description=manifest.description, tools=manifest.tools)
    specs = {DEFAULT_WORKER: default, **manifest.workers}
    return [WorkerEntry(
        name=name, task="", queen_name=queen_name, spawned_at="",
        description=specs[name].description,
        tool_count=len((set(specs[name].tools) or offered) & offered),
        config_path=str(entry.path / "agent.json"), colony_id=entry.agent_id,
    ) for name in names]


def discover_view(overview: list[AgentOverview], queen_name: str = "") -> Discover:
    """``GET /api/discover``: the valid agents by category, categories at the top level."""
    grouped: dict[str, list[ValidAgentView]] = {}
    for item in overview:
        view = agent_view(item.entry, item.loaded, item.usage, queen_name)
        if item.entry.is_valid and isinstance(view, ValidAgentView):
            grouped.setdefault(view.category, []).append(view)
    return Discover(dict(sorted(grouped.items())))


def _iso(epoch_seconds: float | None) -> str | None:
    if epoch_seconds is None:
        return None
    return datetime.fromtimestamp(epoch_seconds, UTC).isoformat()
