"""State feeds for Hive's UI: a session's snapshot, the live-sessions feed, the global stream.

- ``GET /api/sessions/{id}/snapshot``: the queen's state now (the same data as the first SSE
  frame of a stream opened without a cursor).
- ``GET /api/sessions/live`` (SSE): ``event: snapshot`` frames of every live session's state,
  at connect and after every change (session started or stopped, queen executing / waiting /
  interrupted, tool calls and workers in flight).
- ``GET /api/events/global`` (SSE): server-wide events; today ``tool_catalog_refreshed`` when
  agent folders change. Both feeds end at shutdown like session streams.
- ``GET /api/events/schema``: the JSON Schema of every event type's ``data``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import TypeVar

import orjson
from aiohttp import web
from aiohttp_sse import EventSourceResponse

from hive_server import keys
from hive_server.models.event_data import SessionSnapshot, schemas
from hive_server.models.events import Event, utc_now_iso
from hive_server.models.responses import EventSchemas, EventView
from hive_server.services.catalog.agents import CatalogChange
from hive_server.services.sessions.live_feed import live_frame
from hive_server.web.body import json_response
from hive_server.web.openapi import doc
from hive_server.web.paths import live_session
from hive_server.web.sse import serve_sse

routes = web.RouteTableDef()
GLOBAL_QUEUE = 64
T = TypeVar("T")


class FeedEnd:
    """Ends a feed: closed at shutdown (``app[SSE_STREAMS]``) or when the client goes."""

    def __init__(self) -> None:
        self.ended = asyncio.Event()

    def close(self) -> None:
        self.ended.set()


@routes.get("/api/sessions/{session_id}/snapshot")
@doc(response=SessionSnapshot)
async def snapshot(request: web.Request) -> web.Response:
    """The queen's state now: executing, waiting for the user, tool calls in flight."""
    live = live_session(request)
    return json_response(live.queen.snapshot())


@routes.get("/api/events/schema")
@doc(response=EventSchemas)
async def event_schema(request: web.Request) -> web.Response:
    """The JSON Schema of each event type's ``data``."""
    return json_response(EventSchemas(envelope=list(EventView.model_fields),
                                      types=schemas()))


async def _until(wanted: Awaitable[T], end: FeedEnd) -> T | None:
    """``wanted``'s result, or None when the feed ended first (``wanted`` is then cancelled)."""
    task = asyncio.ensure_future(wanted)
    ending = asyncio.ensure_future(end.ended.wait())
    try:
        await asyncio.wait([task, ending], return_when=asyncio.FIRST_COMPLETED)
    finally:
        for pending in (task, ending):
            if not pending.done():
                pending.cancel()
        await asyncio.gather(task, ending, return_exceptions=True)
    return task.result() if task.done() and not task.cancelled() else None


@routes.get("/api/sessions/live")
@doc(stream=True)
async def live_sessions(request: web.Request) -> web.StreamResponse:
    """Every live session's state as ``event: snapshot`` frames, at connect and on change."""
    manager, end = request.app[keys.SESSIONS], FeedEnd()

    async def send(response: EventSourceResponse) -> None:
        version = manager.changes.version
        while True:
            frame = live_frame(manager).model_dump_json().encode()
            await response.write(b"event: snapshot\ndata: %s\n\n" % frame)
            seen = await _until(manager.changes.wait_past(version), end)
            if seen is None:
                return
            version = seen

    return await serve_sse(request, end, send)


@routes.get("/api/events/global")
@doc(stream=True)
async def global_events(request: web.Request) -> web.StreamResponse:
    """Server-wide events (``tool_catalog_refreshed`` when agent folders change)."""
    queue: asyncio.Queue[CatalogChange] = asyncio.Queue(GLOBAL_QUEUE)
    end = FeedEnd()

    def offer(change: CatalogChange) -> None:
        with contextlib.suppress(asyncio.QueueFull):  # a slow reader sees a later refresh
            queue.put_nowait(change)

    async def send(response: EventSourceResponse) -> None:
        while (change := await _until(queue.get(), end)) is not None:
            await response.write(b"data: %s\n\n" % _global_event(change))

    unsubscribe = request.app[keys.CATALOG].subscribe(offer)
    try:
        return await serve_sse(request, end, send)
    finally:
        unsubscribe()


def _global_event(change: CatalogChange) -> bytes:
    event = Event(seq=0, type="tool_catalog_refreshed", session_id="", stream_id="global",
                  node_id="global", timestamp=utc_now_iso(),
                  data={"added": list(change.added), "changed": list(change.changed),
                        "removed": list(change.removed)})
    return orjson.dumps(event)
