"""``GET /api/sessions/{id}/events/history``: pages of the event log (live or cold).

``?limit`` (default 2000, 1..10000). A backward page (the default) ends before its cursor:
``before_seq`` or Hive's ``before_index`` (the same number) or ``before_offset`` (a byte
offset, used when no seq is given). ``after_seq=N`` asks for a forward page instead, the events
after seq N (with a ``before_*`` cursor: 400). ``types=a,b`` keeps only events of those types
(an unknown name: 400 ``invalid_query`` naming it). The answer has our keys (``events,
session_id, total, returned, truncated, limit``) and Hive's (``start_index``: the first event's
seq; ``start_offset``: the byte offset of its line in ``events.jsonl``; ``has_more_older``);
what ``total``, ``truncated`` and ``has_more_older`` mean with filters:
``services/sessions/event_history.py``.

The body is spliced from each event's JSON bytes (the log lines as read: one ``orjson.loads``
per line checks it, no ``Event`` is built; ``Line.to_json``), with no dict or model round trip;
``EventPage`` documents it.
"""

from __future__ import annotations

import orjson
from aiohttp import web

from hive_server import keys
from hive_server.errors.requests import InvalidHistoryTypes, InvalidQuery
from hive_server.models.api import HistoryQuery
from hive_server.models.responses import EventPage
from hive_server.services.sessions.event_history import HistoryCursor, HistoryPage, history_page
from hive_server.web.body import int_query
from hive_server.web.openapi import doc
from hive_server.web.sse import types_query

routes = web.RouteTableDef()


def _cursor(request: web.Request) -> HistoryCursor:
    before_seq = int_query(request, "before_seq", None, minimum=1)
    before_index = int_query(request, "before_index", None, minimum=1)
    before_offset = int_query(request, "before_offset", None, minimum=0)
    after_seq = int_query(request, "after_seq", None, minimum=0)
    if None not in (before_seq, before_index) and before_seq != before_index:
        raise InvalidQuery("before_seq and before_index differ")
    if after_seq is not None and (before_seq, before_index, before_offset) != (None,) * 3:
        raise InvalidQuery("after_seq pages forward: give it without a before_* cursor")
    return HistoryCursor(before_seq=before_seq or before_index, before_offset=before_offset,
                         after_seq=after_seq, types=types_query(request, InvalidHistoryTypes))


def page_body(session_id: str, limit: int, result: HistoryPage) -> bytes:
    """``EventPage`` as JSON: the events' own bytes in the ``events`` array, then the rest."""
    lines = result.page.lines
    rest = orjson.dumps({
        "session_id": session_id, "total": result.total, "returned": len(lines),
        "truncated": result.truncated, "limit": limit, "start_index": result.start_index,
        "start_offset": result.page.start_offset, "has_more_older": result.has_more_older})
    return b'{"events":[%s],%s' % (b",".join([line.to_json() for line in lines]), rest[1:])


@routes.get("/api/sessions/{session_id}/events/history")
@doc(query=HistoryQuery, response=EventPage)
async def event_history(request: web.Request) -> web.Response:
    """A page of the session's event log (live or cold), backward or forward, of some types."""
    session_id = request.match_info["session_id"]
    limit = int_query(request, "limit", 2000, minimum=1, maximum=10_000) or 2000
    result = await history_page(request.app[keys.SESSIONS], session_id, limit,
                                _cursor(request))
    return web.Response(body=page_body(session_id, limit, result),
                        content_type="application/json")
