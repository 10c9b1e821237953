"""Sessions on disk as the history list and the agent directory see them, from the index.

The sessions index (``SessionIndex``) answers which sessions match, in which order, how many;
only the rows of the page are described further: a live session from memory, a cold one with
its log's last seq (read from the end of its ``events.jsonl``). A meta written before the input
fields existed (``message_count`` None) still answers: it has messages when its log holds more
than a start and a stop (``last_seq > 2``), and its last activity is its ``updated_at``.
"""

from __future__ import annotations

import dataclasses

from hive_server.errors.requests import InvalidQuery
from hive_server.errors.sessions import InvalidAgentId
from hive_server.models.agent import is_agent_id
from hive_server.models.session import CorruptSession, SessionMeta
from hive_server.models.session_query import SessionFilter, SessionListQuery
from hive_server.services.catalog.agent_folder import AgentEntry
from hive_server.services.sessions.index_sql import AgentUsage, epoch
from hive_server.services.sessions.lookup import live_elsewhere
from hive_server.services.sessions.manager import SessionManager

__all__ = ["AgentOverview", "AgentUsage", "HistoryEntry", "HistoryPage", "epoch"]
LEGACY_EMPTY_LOG = 2  # session_started + session_stopped


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
        return epoch(self.meta.active_iso) or self.created_at


@dataclasses.dataclass(frozen=True, slots=True)
class HistoryPage:
    entries: list[HistoryEntry]
    total: int
    next_cursor: str | None
    corrupt: list[CorruptSession]


@dataclasses.dataclass(frozen=True, slots=True)
class AgentOverview:
    entry: AgentEntry
    loaded: bool
    usage: AgentUsage


async def history_page(manager: SessionManager, query: SessionListQuery) -> HistoryPage:
    """One page of the sessions on disk matching the query, newest activity first."""
    if query.cursor is not None and query.page is not None:
        raise InvalidQuery("give cursor or page, not both")
    index = manager.store.index
    found = await index.query(query.to_filter(), query.limit, query.cursor, query.page)
    return HistoryPage(await _entries(manager, found.metas), found.total, found.next_cursor,
                       await index.corrupt())


async def _entries(manager: SessionManager, metas: list[SessionMeta]) -> list[HistoryEntry]:
    """The rows described: live ones from memory, cold ones with the last seq their meta.json
    was written with at the stop (read from the log's end only for an older meta.json). On
    Redis, a session live on another node (or being taken over) is live, with its stream's
    last seq."""
    lives = {live.journal.id: live for live in manager.live()}
    elsewhere = {meta.session_id for meta in metas
                 if meta.session_id not in lives and live_elsewhere(manager, meta)}
    unknown = [meta.session_id for meta in metas if meta.session_id not in lives
               and (meta.last_seq is None or meta.session_id in elsewhere)]
    seqs = dict(zip(unknown, await manager.store.reads.last_seqs(unknown), strict=True))
    entries = []
    for meta in metas:
        live = lives.get(meta.session_id)
        if live is not None:
            entries.append(HistoryEntry(live.journal.meta, live.journal.last_seq, True))
        else:
            seq = seqs.get(meta.session_id, meta.last_seq)
            entries.append(HistoryEntry(meta, seq or 0, meta.session_id in elsewhere))
    return entries


async def agent_overview(manager: SessionManager) -> list[AgentOverview]:
    """Every agent folder (valid or not) with whether it is loaded and its sessions' usage."""
    loaded = {live.colony.agent_id for live in manager.live() if live.colony is not None}
    usage = await manager.store.index.usage_by_agent()
    return [AgentOverview(entry, entry.agent_id in loaded, usage.get(entry.agent_id, AgentUsage()))
            for entry in manager.catalog.entries()]


async def agent_sessions(manager: SessionManager, agent_id: str) -> list[HistoryEntry]:
    """The sessions (newest activity first) that have ``agent_id`` as their colony (the agent
    folder itself may be gone: its sessions stay on disk)."""
    if not is_agent_id(agent_id):
        raise InvalidAgentId(agent_id)
    metas = await manager.store.index.matching(SessionFilter(agent_id=agent_id))
    return await _entries(manager, metas)
