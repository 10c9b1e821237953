"""The accounting of one session (``GET /api/sessions/{id}/stats``) and of many
(``GET /api/usage``), live or cold; the numbers come from ``services/journal/accounting.py``.
A session this node does not run is counted from its meta's totals and, past them, its log
(``store.reads``: ``events.jsonl``, or on Redis the stream; a session another node runs is
counted so, its meta as its owner last wrote it)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from hive_server.models.budget import BudgetView
from hive_server.models.session import SessionMeta
from hive_server.models.session_query import SessionFilterQuery
from hive_server.models.usage import UsageSummary, UsageTotals
from hive_server.services.journal.accounting import ColdTotals, gap_source, merge, usage_view
from hive_server.services.sessions.lookup import live_or_cold
from hive_server.services.sessions.manager import Session, SessionManager


@dataclasses.dataclass(frozen=True, slots=True)
class SessionAccount:
    meta: SessionMeta
    live: Session | None
    last_seq: int
    totals: UsageTotals
    budget: BudgetView | None = None  # a live session's spend limits now


async def session_account(manager: SessionManager, cold: ColdTotals,
                          session_id: str) -> SessionAccount:
    """A session's totals, and its spend limits when live (404 ``session_not_found``, 409
    ``session_loading``)."""
    live = await live_or_cold(manager, session_id)
    if live is not None:
        session = live.journal
        totals = await session.accounting.totals(gap_source(session.log, session.dir))
        return SessionAccount(session.meta, live, session.last_seq, totals,
                              await manager.budgets.view_of(session_id))
    meta = await manager.store.read_meta(session_id)
    totals = (await manager.store.reads.cold_totals(cold, [meta]))[0]
    return SessionAccount(meta, None, totals.through_seq, totals)


async def usage_of(manager: SessionManager, cold: ColdTotals,
                   query: SessionFilterQuery) -> UsageSummary:
    """How many sessions the history filters select, their totals summed, and today's
    server-wide and per-agent spend limits."""
    metas = await manager.store.index.matching(query.to_filter())
    totals = await sessions_usage(manager, cold, metas)
    return UsageSummary(sessions=len(metas), usage=usage_view(totals),
                        budget=manager.budgets.server_view())


async def sessions_usage(manager: SessionManager, cold: ColdTotals,
                         metas: Iterable[SessionMeta]) -> UsageTotals:
    """The sum over ``metas`` (live ones from memory, cold ones from meta or their log)."""
    lives = {live.journal.id: live for live in manager.live()}
    parts: list[UsageTotals] = []
    colds: list[SessionMeta] = []
    for meta in metas:
        live = lives.get(meta.session_id)
        if live is None:
            colds.append(meta)
        else:
            journal = live.journal
            parts.append(await journal.accounting.totals(gap_source(journal.log, journal.dir)))
    parts += await manager.store.reads.cold_totals(cold, colds)
    return merge(parts)
