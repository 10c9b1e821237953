"""Accounting routes: ``GET /api/sessions/{id}/stats`` (one session, live or cold) and
``GET /api/usage`` (the sum over the sessions the history filters select)."""

from __future__ import annotations

from aiohttp import web

from hive_server import keys
from hive_server.models.agent_views import QueenStats
from hive_server.models.session_query import SessionFilterQuery
from hive_server.models.usage import SessionStats, UsageSummary
from hive_server.services.journal.accounting import usage_view
from hive_server.services.sessions.usage import SessionAccount, session_account, usage_of
from hive_server.web.body import json_response, parse_query
from hive_server.web.openapi import doc

routes = web.RouteTableDef()


@routes.get("/api/sessions/{session_id}/stats")
@doc(response=SessionStats)
async def stats(request: web.Request) -> web.Response:
    """Counters and accounting (tokens, cost, latency, workers, trigger fires) of a session."""
    account = await session_account(request.app[keys.SESSIONS], request.app[keys.COLD_USAGE],
                                    request.match_info["session_id"])
    return json_response(stats_view(account))


@routes.get("/api/usage")
@doc(query=SessionFilterQuery, response=UsageSummary)
async def usage(request: web.Request) -> web.Response:
    """The accounting summed over the sessions the history list's filters select."""
    query = parse_query(request, SessionFilterQuery)
    return json_response(await usage_of(request.app[keys.SESSIONS],
                                        request.app[keys.COLD_USAGE], query))


def stats_view(account: SessionAccount) -> SessionStats:
    usage = usage_view(account.totals)
    live = account.live
    if live is None:
        return SessionStats(session_id=account.meta.session_id, live=False,
                            last_seq=account.last_seq, uptime_seconds=None, queen=None,
                            workers=usage.workers, subscribers=0, dropped_subscribers=0,
                            colony_id=account.meta.agent_id, usage=usage, budget=account.budget)
    session, queen = live.journal, live.queen
    return SessionStats(
        session_id=session.id, live=True, last_seq=session.last_seq,
        uptime_seconds=round(session.uptime_seconds, 3),
        queen=QueenStats(busy=queen.busy, queued=queen.pending, executions=queen.executions),
        workers=usage.workers, subscribers=session.bus.subscriber_count,
        dropped_subscribers=session.bus.dropped_subscribers,
        colony_id=live.colony.agent_id if live.colony else None, usage=usage,
        budget=account.budget)
