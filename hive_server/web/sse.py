"""``GET /api/sessions/{id}/events``: the events as SSE (history pages: ``web/history.py``).

Resume (``Last-Event-ID`` or ``?after_seq=N``): subscribe first, then replay seq > N from the
log, then live events, skipping any seq already sent — no gap, no duplicate. The stream ends
when the session stops, when the subscriber lags (it resumes by its last id), or at shutdown.
With ``--redis`` every stream is read from the session's Redis stream (``RedisFeed``, which
replays and hands over to live events the same way), on the owner and on every other node.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from aiohttp import web

from hive_server import keys
from hive_server.core.bus import Subscription
from hive_server.core.eventlog_lines import Line
from hive_server.errors.requests import InvalidLastEventId, InvalidTypes
from hive_server.models.api import EventsQuery
from hive_server.models.events import Event, EventType
from hive_server.services.sessions.lookup import fed_session
from hive_server.services.sessions.manager import Session
from hive_server.web.body import int_query, plain_int
from hive_server.web.openapi import doc
from hive_server.web.paths import live_session
from hive_server.web.sse_streams import Closable, SseResponse

if TYPE_CHECKING:  # redis-py is imported only with --redis
    from hive_server.core.redis_feed import FeedSubscription, RedisFeed

log = logging.getLogger(__name__)
STOPPED = EventType.SESSION_STOPPED.value
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

    def __init__(self, response: Sink, sub: Subscription | UntilStopped):
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
    if (node := request.app.get(keys.REDIS_NODE)) is not None:
        return await _stream_from_redis(request, node.feed)
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


async def _stream_from_redis(request: web.Request, feed: RedisFeed) -> SseResponse:
    """``--redis``: every node streams every live session from its Redis stream (the node's
    ``RedisFeed``), the owner too: a client sees only events Redis stored (never one a lost
    lease's fence refused) and its stream goes on across a takeover. With no cursor, the
    owner opens the stream with its queen's snapshot; another node has none: the stream
    opens with the log's last ``SSE_TAIL`` events."""
    session_id = request.match_info["session_id"]
    manager = request.app[keys.SESSIONS]
    live = await fed_session(manager, session_id)
    after, types = _resume_point(request), types_query(request)
    tip = await manager.store.last_seq(session_id)
    opening = snapshot_event(live) if after is None and live is not None else None
    if after is None:
        after = max(0, (tip if opening is None else opening.data["snapshot_seq"]) - SSE_TAIL)
    handle = await feed.subscribe(session_id, after, types=_with_stop(types),
                                  maxsize=request.app[keys.SETTINGS].sse_queue_size)
    sub = UntilStopped(handle, types, tip)

    async def send(response: SseResponse) -> None:
        if opening is not None and (types is None or opening.type in types):
            await response.write(b"data: %s\n\n" % opening.to_json())  # no id: seq 0
        stream = EventStream(response, sub)
        stream.last_sent = handle.last_seq  # the cursor, at most the stream's last seq
        await stream.pump()

    return await serve_sse(request, sub, send)


def _with_stop(types: frozenset[str] | None) -> frozenset[str] | None:
    return None if types is None else types | {STOPPED}


class UntilStopped:
    """A feed subscription that ends with the session's next ``session_stopped`` (one stored
    after ``tip``, the log's last seq when the stream opened; an older one is history): a
    stream from Redis ends when the session stops, as one from the owner's bus does. A lost
    lease logs no stop, a node's shutdown hands the session over (``_handed_over``): the stream
    goes on with the next owner's events. ``types``: the
    client's (``session_stopped`` is written only when it asked for it)."""

    def __init__(self, handle: FeedSubscription, types: frozenset[str] | None, tip: int):
        self._handle = handle
        self.types = types
        self._tip = tip
        self._stopped = False

    async def get_all(self) -> Sequence[Framed]:
        if self._stopped:
            return []
        batch = await self._handle.get_all()
        for index, event in enumerate(batch):
            if event.type == STOPPED and event.seq > self._tip and not _handed_over(event):
                self._stopped = True
                return batch[:index + 1]
        return batch

    def close(self) -> None:
        self._handle.close()


def _handed_over(event: Line | Event) -> bool:
    """A stop at its node's shutdown: the node released the lease, another node takes the
    session over, and the stream goes on with its events."""
    data = event.data if isinstance(event, Event) else (event.fields or {}).get("data") or {}
    return data.get("reason") == "shutdown"


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
        request.app[keys.GUARD].add_cors(request, response)
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
