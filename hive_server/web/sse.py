"""``GET /api/sessions/{id}/events``: the events as SSE (history pages: ``web/history.py``).

Resume (``Last-Event-ID`` or ``?after_seq=N``): subscribe first, then replay seq > N from the
log, then live events, skipping any seq already sent — no gap, no duplicate. The stream ends
when the session stops, when the subscriber lags (it resumes by its last id), or at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from aiohttp import web

from hive_server import keys
from hive_server.core.bus import Subscription
from hive_server.errors.requests import InvalidLastEventId, InvalidTypes
from hive_server.models.api import EventsQuery
from hive_server.models.events import Event, EventType
from hive_server.services.sessions.manager import Session
from hive_server.web.body import int_query, plain_int
from hive_server.web.openapi import doc
from hive_server.web.paths import live_session
from hive_server.web.sse_streams import Closable, SseResponse

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
SSE_TAIL = 200  # events replayed after the snapshot of a stream opened without a cursor


def _resume_point(request: web.Request) -> int | None:
    header = request.headers.get("Last-Event-ID")
    if header is not None and header.strip():
        value = plain_int(header.strip())
        if value is None:
            raise InvalidLastEventId()
        return value
    return int_query(request, "after_seq", None)


def types_query(request: web.Request,
                error: type[InvalidTypes] = InvalidTypes) -> frozenset[str] | None:
    """``?types=a,b``: the event types wanted (None: all; no names is no filter). An unknown
    name is a 400 ``error`` naming it."""
    raw = request.query.get("types", "")
    wanted = frozenset(t.strip() for t in raw.split(",") if t.strip())
    if not wanted:
        return None
    unknown = wanted - {t.value for t in EventType}
    if unknown:
        raise error(unknown)
    return wanted


def snapshot_event(live: Session) -> Event:
    """The synthesised ``session_snapshot`` (``seq`` 0: it is not in the log)."""
    snapshot = live.queen.snapshot()
    return Event(seq=0, type=EventType.SESSION_SNAPSHOT.value, session_id=live.journal.id,
                 execution_id=snapshot.current_execution_id,
                 colony_id=live.journal.meta.agent_id, data=snapshot.model_dump())


class Framed(Protocol):
    """What a stream writes: an ``Event`` (live) or a log ``Line`` (replay)."""

    @property
    def seq(self) -> int: ...

    @property
    def type(self) -> str: ...

    def sse_frame(self) -> bytes: ...


class Sink(Protocol):
    """Where a stream's frames go (``SseResponse``: its write waits, for the send timeout at
    most, only when the client's connection is backed up)."""

    async def write(self, data: bytes) -> None: ...


class EventStream:
    """One SSE client: a subscription written to one response."""

    def __init__(self, response: Sink, sub: Subscription):
        self.response = response
        self.sub = sub
        self.last_sent = 0

    async def write(self, events: Sequence[Framed]) -> None:
        """Write the events (ascending seqs) not sent yet and of the wanted types, in one
        write."""
        types = self.sub.types
        fresh = events
        if not events:
            return
        if events[0].seq <= self.last_sent or types is not None:  # (live events: neither)
            fresh = [e for e in events
                     if e.seq > self.last_sent and (types is None or e.type in types)]
            if not fresh:
                return
        # each event's frame is built once and shared by every stream (``Event.sse_frame``)
        chunk = fresh[0].sse_frame() if len(fresh) == 1 else b"".join(
            [e.sse_frame() for e in fresh])
        await self.response.write(chunk)
        self.last_sent = fresh[-1].seq

    async def pump(self) -> None:
        """Live events until the subscription ends; writes whatever is buffered in one go."""
        while batch := await self.sub.get_all():
            await self.write(batch)


@routes.get("/api/sessions/{session_id}/events")
@doc(stream=True, query=EventsQuery)
async def stream_events(request: web.Request) -> web.StreamResponse:
    """The session's events as Server-Sent Events, resumable by seq."""
    live = live_session(request)
    after, types = _resume_point(request), types_query(request)
    settings = request.app[keys.SETTINGS]
    session = live.journal
    sub = session.subscribe(settings.sse_queue_size, types)
    opening: Event | None = None
    if after is not None:  # an id past the end (lost in a crash, or an older incarnation)
        after = min(after, session.last_seq)
    else:  # no cursor: the queen's state now, then a bounded tail, then live events
        opening = snapshot_event(live)
        after = max(0, opening.data["snapshot_seq"] - SSE_TAIL)

    async def send(response: SseResponse) -> None:
        stream = EventStream(response, sub)
        if opening is not None and (types is None or opening.type in types):
            await response.write(b"data: %s\n\n" % opening.to_json())  # no id: seq 0
        stream.last_sent = after
        async for chunk in session.log.iter_lines_after(after):  # the log's bytes, no Event
            await stream.write(chunk)
        await stream.pump()

    return await serve_sse(request, sub, send)


async def serve_sse(request: web.Request, closer: Closable,
                    send: Callable[[SseResponse], Awaitable[None]]) -> SseResponse:
    """Open an SSE response, run ``send`` on it, and always clean up.

    ``closer`` ends ``send``'s stream: ``app[SSE_STREAMS]`` closes it when the client goes
    away (its connection closed or its keep-alive failed) and at shutdown.
    """
    settings = request.app[keys.SETTINGS]
    send_timeout = settings.sse_send_timeout_seconds
    response = SseResponse(ping_interval=settings.sse_keepalive_seconds,
                           send_timeout=send_timeout)
    streams = request.app[keys.SSE_STREAMS]
    streams.add(closer)
    try:
        await response.prepare(request)
        streams.watch(closer, request, response)
        await send(response)
        response.stop_streaming()
        async with asyncio.timeout(send_timeout):  # the end of the stream, to a stalled reader
            await response.write_eof()
    except (ConnectionResetError, TimeoutError) as exc:
        log.info("SSE client of %s went away: %r", request.path, exc)
        if isinstance(exc, TimeoutError):
            _drop(request)
    finally:
        closer.close()
        streams.discard(closer)
        if response.prepared:
            with contextlib.suppress(Exception):
                response.stop_streaming()
    return response


def _drop(request: web.Request) -> None:
    """Close a stalled reader's connection now: ``abort`` (``close`` would wait for it to
    drain) with SO_LINGER 0, so the kernel resets it instead of still sending it megabytes."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
