"""Sessions on disk as the history list and the agent directory see them.

A live session is described from memory (its meta holds inputs not yet written to
``meta.json``), a cold one from its ``meta.json``. A meta written before the input fields
existed (``message_count`` None) still answers: it has messages when its log holds more than a
start and a stop (``last_seq > 2``), and its last activity is its ``updated_at``.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterable
from datetime import datetime

from hive_server.errors import InvalidInput, NotFound
from hive_server.models.agent import is_agent_id
from hive_server.models.session import CorruptSession, SessionMeta
from hive_server.services.agent_folder import AgentEntry
from hive_server.services.sessions import LiveSession, SessionManager

LEGACY_EMPTY_LOG = 2  # session_started + session_stopped


def epoch(iso: str | None) -> float | None:
    """Epoch seconds of an ISO 8601 time; None when absent or unreadable."""
    if not iso:
        return None
    try:
        return datetime.fromisoformat(iso).timestamp()
    except ValueError:
        return None


@dataclasses.dataclass(frozen=True, slots=True)
class HistoryEntry:
    meta: SessionMeta
    last_seq: int
    live: bool

    @property
    def has_messages(self) -> bool:
        if self.meta.message_count is None:
            return self.last_seq > LEGACY_EMPTY_LOG
        return self.meta.message_count > 0

    @property
    def created_at(self) -> float:
        return epoch(self.meta.created_at) or 0.0

    @property
    def last_active_at(self) -> float:
        return (epoch(self.meta.last_input_at) or epoch(self.meta.updated_at)
                or self.created_at)


@dataclasses.dataclass(frozen=True, slots=True)
class AgentUsage:
    session_count: int = 0
    run_count: int = 0  # inputs handed to the queens of its sessions (each one an execution)
    last_active: float | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class AgentOverview:
    entry: AgentEntry
    loaded: bool
    usage: AgentUsage


async def session_history(manager: SessionManager) -> list[HistoryEntry]:
    """Every session on disk, newest first; live ones described from memory."""
    return (await history_listing(manager))[0]


async def history_listing(
        manager: SessionManager) -> tuple[list[HistoryEntry], list[CorruptSession]]:
    """``session_history``, and the sessions whose meta.json is corrupt (kept aside)."""
    lives = {live.session.id: live for live in manager.live()}
    entries = []
    metas, corrupt = await manager.store.scan()
    for meta, last_seq in metas:
        live = lives.get(meta.session_id)
        if live is not None:
            meta, last_seq = live.session.meta, live.session.last_seq
        entries.append(HistoryEntry(meta, last_seq, live is not None))
    return entries, corrupt


async def agent_overview(manager: SessionManager) -> list[AgentOverview]:
    """Every agent folder (valid or not) with whether it is loaded and its sessions' usage."""
    loaded = {live.colony.agent_id for live in manager.live() if live.colony is not None}
    usage = _usage(await session_history(manager))
    return [AgentOverview(entry, entry.agent_id in loaded, usage.get(entry.agent_id, AgentUsage()))
            for entry in manager.catalog.entries()]


async def agent_sessions(manager: SessionManager, agent_id: str) -> list[HistoryEntry]:
    """The sessions (newest first) that have ``agent_id`` as their colony (the agent folder
    itself may be gone: its sessions stay on disk)."""
    if not is_agent_id(agent_id):
        raise InvalidInput(f"invalid agent id: {agent_id!r}", code="invalid_agent_id")
    return [entry for entry in await session_history(manager) if entry.meta.agent_id == agent_id]


def _usage(entries: Iterable[HistoryEntry]) -> dict[str, AgentUsage]:
    found: dict[str, AgentUsage] = {}
    for item in entries:
        agent = item.meta.agent_id
        if agent is None:
            continue
        old = found.get(agent, AgentUsage())
        latest = max(filter(None, (old.last_active, item.last_active_at)), default=None)
        found[agent] = AgentUsage(old.session_count + 1,
                                  old.run_count + (item.meta.message_count or 0), latest)
    return found


async def live_or_cold(manager: SessionManager, session_id: str) -> LiveSession | None:
    """The live session, or None when it is only on disk (``session_not_found`` when neither;
    409 ``session_loading`` while it starts)."""
    try:
        return manager.get(session_id)
    except NotFound:
        if not await asyncio.to_thread(manager.store.exists, session_id):
            raise NotFound(f"session {session_id!r} not found", code="session_not_found") from None
        return None
