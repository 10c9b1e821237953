"""``GET /api/sessions/{id}/events/history``: backward pages of the event log (live or cold).

``?limit`` (default 2000, 1..10000); the cursor is ``before_seq`` or Hive's ``before_index``
(the same number) or ``before_offset`` (a byte offset, used when no seq is given). The answer
has our keys (``events, session_id, total, returned, truncated, limit``) and Hive's
(``start_index``: the first event's seq; ``start_offset``: the byte offset of its line in
``events.jsonl``; ``has_more_older``).
"""

from __future__ import annotations

from aiohttp import web

from hive_server import keys
from hive_server.errors import InvalidInput
from hive_server.models.api import HistoryQuery
from hive_server.models.responses import EventPage, EventView
from hive_server.services.event_history import history_page
from hive_server.web.body import int_query, json_response
from hive_server.web.openapi import doc

routes = web.RouteTableDef()


@routes.get("/api/sessions/{session_id}/events/history")
@doc(query=HistoryQuery, response=EventPage)
async def event_history(request: web.Request) -> web.Response:
    """A page of the session's event log (live or cold)."""
    session_id = request.match_info["session_id"]
    limit = int_query(request, "limit", 2000, minimum=1, maximum=10_000) or 2000
    before_seq = int_query(request, "before_seq", None, minimum=1)
    before_index = int_query(request, "before_index", None, minimum=1)
    before_offset = int_query(request, "before_offset", None, minimum=0)
    if None not in (before_seq, before_index) and before_seq != before_index:
        raise InvalidInput("before_seq and before_index differ", code="invalid_query")
    result = await history_page(request.app[keys.SESSIONS], session_id, limit,
                               before_seq=before_seq or before_index,
                               before_offset=before_offset)
    events = result.page.events
    return json_response(EventPage(
        events=[EventView.model_validate(e.to_dict()) for e in events], session_id=session_id,
        total=result.total, returned=len(events), truncated=result.has_more_older, limit=limit,
        start_index=result.start_index, start_offset=result.page.start_offset,
        has_more_older=result.has_more_older,
    ))
