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
import logging
from collections.abc import AsyncIterator, Awaitable
from typing import TypeVar

import orjson
from aiohttp import web
from aiohttp_sse import EventSourceResponse

from hive_server import keys
from hive_server.models.event_data import schemas
from hive_server.models.events import Event, utc_now_iso
from hive_server.services.catalog import CatalogChange
from hive_server.services.live_feed import live_frame
from hive_server.web.body import json_response
from hive_server.web.openapi import doc

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
SEND_TIMEOUT = 30.0
GLOBAL_QUEUE = 64
T = TypeVar("T")


class FeedEnd:
    """What shutdown (``app[SSE_STREAMS]``) closes to end a feed."""

    def __init__(self) -> None:
        self.ended = asyncio.Event()

    def close(self) -> None:
        self.ended.set()


@routes.get("/api/sessions/{session_id}/snapshot")
async def snapshot(request: web.Request) -> web.Response:
    """The queen's state now: executing, waiting for the user, tool calls in flight."""
    live = request.app[keys.SESSIONS].get(request.match_info["session_id"])
    return json_response(live.queen.snapshot().model_dump())


@routes.get("/api/events/schema")
async def event_schema(request: web.Request) -> web.Response:
    """The JSON Schema of each event type's ``data``."""
    return json_response({"envelope": ["seq", "type", "session_id", "stream_id", "node_id",
                                       "execution_id", "correlation_id", "colony_id",
                                       "timestamp", "data"],
                          "types": schemas()})


@contextlib.asynccontextmanager
async def _feed(request: web.Request) -> AsyncIterator[tuple[EventSourceResponse, FeedEnd]]:
    """An open SSE response and the end signal (shutdown, or the client went away)."""
    settings = request.app[keys.SETTINGS]
    response = EventSourceResponse(ping_interval=settings.sse_keepalive_seconds,
                                   send_timeout=SEND_TIMEOUT)
    end = FeedEnd()
    streams = request.app[keys.SSE_STREAMS]
    streams.add(end)
    watcher: asyncio.Task[None] | None = None
    try:
        await response.prepare(request)
        watcher = asyncio.create_task(_end_when_gone(response, end))
        yield response, end
    except (ConnectionResetError, TimeoutError) as exc:
        log.info("SSE feed client went away: %r", exc)
    finally:
        streams.discard(end)
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        if response.prepared:
            with contextlib.suppress(Exception):
                response.stop_streaming()


async def _end_when_gone(response: EventSourceResponse, end: FeedEnd) -> None:
    await response.wait()
    end.close()


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
    manager = request.app[keys.SESSIONS]
    async with _feed(request) as (response, end):
        version = manager.changes.version
        while True:
            frame = live_frame(manager).model_dump_json().encode()
            await response.write(b"event: snapshot\ndata: %s\n\n" % frame)
            seen = await _until(manager.changes.wait_past(version), end)
            if seen is None:
                break
            version = seen
    return response


@routes.get("/api/events/global")
@doc(stream=True)
async def global_events(request: web.Request) -> web.StreamResponse:
    """Server-wide events (``tool_catalog_refreshed`` when agent folders change)."""
    queue: asyncio.Queue[CatalogChange] = asyncio.Queue(GLOBAL_QUEUE)

    def offer(change: CatalogChange) -> None:
        with contextlib.suppress(asyncio.QueueFull):  # a slow reader sees a later refresh
            queue.put_nowait(change)

    unsubscribe = request.app[keys.CATALOG].subscribe(offer)
    try:
        async with _feed(request) as (response, end):
            while (change := await _until(queue.get(), end)) is not None:
                await response.write(b"data: %s\n\n" % _global_event(change))
    finally:
        unsubscribe()
    return response


def _global_event(change: CatalogChange) -> bytes:
    event = Event(seq=0, type="tool_catalog_refreshed", session_id="", stream_id="global",
                  node_id="global", timestamp=utc_now_iso(),
                  data={"added": list(change.added), "changed": list(change.changed),
                        "removed": list(change.removed)})
    return orjson.dumps(event)
