"""Any node streams any session: a node that does not own a session follows its events in the
session's Redis Stream (``hive:{<sid>}:log``, entry id ``<seq>-0``, field ``e`` the event's
JSON line; ``eventlog_redis.py``) and hands them to its local subscribers (issue 14).

``RedisFeed`` is the node's: one reader task per session with subscribers on this node,
started by the first ``subscribe`` and stopped (cancelled, and awaited by ``wait_stopped`` /
``close``) when the last ``FeedSubscription`` closes. The reader reads the stream's last seq
(the tip), then loops on ``XREAD BLOCK`` from the last id it saw, in batches, and publishes
each event (an ``Event`` built from the line's own bytes, so every subscriber shares one SSE
frame) on the session's local ``EventBus``: a subscriber that falls a buffer behind is
disconnected as on the owner (``end_reason == "lagged"``), never skipped. When Redis fails the
reader (connection lost or killed, timeout, refusal) it waits (bounded backoff,
``redis_backoff.py``; one warning per outage) and reads on from the last id it saw: no event
is lost or repeated. A stream entry that holds no event is skipped, as every log reader does.

``FeedSubscription`` is one subscriber: the events after its resume point (``after``,
``Last-Event-ID``) read from the stream (XRANGE; the log's own lines, no ``Event`` built),
then the live ones from the bus, ascending, with no gap and no duplicate. The handover:

1. ``subscribe`` subscribes to the bus before it awaits anything. Let P be the highest seq the
   reader had published then (for a reader just started: its tip, since it publishes only
   what follows its tip). Every event above P reaches this subscription's buffer.
2. Then (once the reader knows its tip) it reads the stream's last seq S0 and takes
   ``after = min(after, S0)``: an id past the end (an older incarnation's, or lost) resumes
   from the end, as on the owner.
3. The replay XRANGEs from ``after`` until a read returns fewer than a chunk: that read reached
   the stream's end at that moment, which is at or past P (the reader publishes only what is
   stored). So replay and buffer together hold every seq above ``after``.
4. It hands out the replay, then the buffer, skipping every seq at or below the highest it has
   passed: the events both read and buffered (appended between 1 and 3) come out once.

Without ``after`` a subscription gets the live events that follow the reader's position once
the tip is known (no replay).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence

import redis.asyncio

from hive_server.core.bus import EventBus, Subscription
from hive_server.core.eventlog_lines import Line
from hive_server.core.eventlog_redis import seq_of, session_key, stream_lines
from hive_server.core.redis_backoff import RETRIED, Backoff, honour_cancel
from hive_server.errors.backend import FeedUnavailable
from hive_server.models.events import Event

logger = logging.getLogger(__name__)
BLOCK_MS = 1000  # one XREAD's wait: below the client's socket timeout (5 s)
BATCH = 500  # entries per XREAD
REPLAY_CHUNK = 1000  # entries per XRANGE of a replay
Entries = Sequence[tuple[bytes, dict[bytes, bytes]]]


class _Reader:
    """One session's reader task and local bus on this node."""

    def __init__(self, feed: RedisFeed, session_id: str):
        self.feed = feed
        self.session_id = session_id
        self.key = session_key(session_id, "log")
        self.bus = EventBus(f"feed:{session_id}", feed.maxsize)
        self.tip: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.published = 0  # the last seq read from the stream (once the tip is known)
        self.holders: set[FeedSubscription] = set()
        self.backoff = Backoff(f"feed {self.key}", logger, first=feed.backoff[0],
                               cap=feed.backoff[1])
        self.task = asyncio.create_task(self._run(), name=f"redis-feed:{self.key}")

    async def _run(self) -> None:
        try:
            self.published = await self._read_tip()
            self.tip.set_result(self.published)
            while True:
                await self._read_once()
        except RETRIED as exc:  # only the tip's read ends here: the subscribers get why
            self._fail_tip(FeedUnavailable(self.session_id, exc))
        except Exception:  # the task's boundary: a bug ends this feed (its subscribers too)
            logger.exception("feed %s failed", self.key)
        finally:
            self.stopped()
            self.feed._ended(self)

    def stopped(self) -> None:
        """End the subscriptions (``feed_stopped``) and fail a tip still awaited. Idempotent;
        also called before the task ran, when it is cancelled as soon as made."""
        self._fail_tip(FeedUnavailable(self.session_id, "the feed was stopped"))
        self.bus.close("feed_stopped")

    async def _read_tip(self) -> int:
        top = await self.feed.client.xrevrange(self.key, "+", "-", count=1)
        return seq_of(top[0][0]) if top else 0

    async def _read_once(self) -> None:
        """One XREAD from the last id seen; its events published. A Redis failure waits."""
        try:
            reply = await self.feed.client.xread({self.key: f"{self.published}-0"},
                                                 count=self.feed.batch, block=self.feed.block_ms)
        except RETRIED as exc:
            honour_cancel()
            await self.backoff.failed(exc)
            return
        honour_cancel()
        self.backoff.succeeded()
        if reply:
            self._publish(reply[0][1])

    def _publish(self, entries: Entries) -> None:
        for line in stream_lines(entries):
            if line.seq > self.published:
                self.bus.publish(line.to_event())
        self.published = max(self.published, seq_of(entries[-1][0]))

    def _fail_tip(self, exc: FeedUnavailable) -> None:
        if not self.tip.done():
            self.tip.set_exception(exc)
            self.tip.exception()  # retrieved: a reader stopped before anyone awaited it


class FeedSubscription:
    """One subscriber's events of a session: replay, then live. See the module docstring.
    Iterate it or call ``get_all``; ``close()`` unsubscribes (idempotent)."""

    def __init__(self, reader: _Reader, sub: Subscription):
        self._reader = reader
        self._sub = sub
        self.last_seq = 0  # every seq up to this one was handed out (or filtered out)
        self._replaying = False

    @property
    def types(self) -> frozenset[str] | None:
        return self._sub.types

    @property
    def end_reason(self) -> str | None:
        """Why the live part ended (``lagged``, ``closed``, ``feed_stopped``), or None."""
        return self._sub.end_reason

    async def _start(self, after: int | None) -> None:
        await asyncio.shield(self._reader.tip)
        if after is None:
            self.last_seq = self._reader.published
            return
        client, key = self._reader.feed.client, self._reader.key
        try:
            top = await client.xrevrange(key, "+", "-", count=1)
        except RETRIED as exc:
            raise FeedUnavailable(self._reader.session_id, exc) from exc
        self.last_seq = min(after, seq_of(top[0][0]) if top else 0)
        self._replaying = True

    async def get_all(self) -> list[Line | Event]:
        """The next events (ascending seqs, at least one), or [] once the subscription has
        ended and is drained. Replayed events are the log's ``Line``s, live ones ``Event``s:
        both have ``seq``, ``type`` and ``sse_frame()``."""
        while self._replaying:
            if lines := await self._replay_chunk():
                return lines
        while batch := await self._sub.get_all():
            fresh = [event for event in batch if event.seq > self.last_seq]  # not replayed
            if fresh:
                self.last_seq = fresh[-1].seq
                return fresh
        return []

    async def _replay_chunk(self) -> list[Line]:
        """The next XRANGE after ``last_seq``, the events of the wanted types; the replay
        ends with a read shorter than a chunk (it reached the stream's end)."""
        chunk, start = self._reader.feed.replay_chunk, f"{self.last_seq + 1}-0"
        try:
            entries = await self._reader.feed.client.xrange(self._reader.key, start, "+",
                                                            count=chunk)
        except RETRIED as exc:
            raise FeedUnavailable(self._reader.session_id, exc) from exc
        self._replaying = len(entries) == chunk
        if not entries:
            return []
        self.last_seq = seq_of(entries[-1][0])  # passed over, even an entry with no event
        return [line for line in stream_lines(entries) if self._wanted(line.type)]

    def _wanted(self, kind: str) -> bool:
        return self._sub.types is None or kind in self._sub.types

    def close(self) -> None:
        """Unsubscribe (a replay under way ends too); the reader stops with its last
        subscriber."""
        self._replaying = False
        self._sub.close()
        self._reader.feed._release(self._reader, self)

    def __aiter__(self) -> AsyncIterator[Line | Event]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Line | Event]:
        while batch := await self.get_all():
            for item in batch:
                yield item


class RedisFeed:
    """A node's feeds of the sessions it streams from Redis. See the module docstring."""

    def __init__(self, client: redis.asyncio.Redis, *, maxsize: int = 2048,
                 block_ms: int = BLOCK_MS, batch: int = BATCH, replay_chunk: int = REPLAY_CHUNK,
                 backoff: tuple[float, float] = (0.05, 2.0)):
        self.client = client
        self.maxsize = maxsize  # a subscriber's buffer unless it asks for another
        self.block_ms = block_ms
        self.batch = batch
        self.replay_chunk = replay_chunk
        self.backoff = backoff  # (first, cap) seconds: ``Backoff``
        self._readers: dict[str, _Reader] = {}
        self._stopping: set[asyncio.Task[None]] = set()

    @property
    def streaming(self) -> list[str]:
        """The sessions this node has a reader for."""
        return sorted(self._readers)

    async def subscribe(self, session_id: str, after: int | None = None, *,
                        maxsize: int | None = None,
                        types: frozenset[str] | None = None) -> FeedSubscription:
        """The session's events after ``after`` (None: the live ones only); starts its
        reader when it has none. ``FeedUnavailable`` when Redis cannot be read."""
        reader = self._readers.get(session_id)
        if reader is None:
            reader = self._readers[session_id] = _Reader(self, session_id)
        handle = FeedSubscription(reader, reader.bus.subscribe(maxsize, types))
        reader.holders.add(handle)
        try:
            await handle._start(after)
        except BaseException:
            handle.close()
            raise
        return handle

    def _release(self, reader: _Reader, handle: FeedSubscription) -> None:
        reader.holders.discard(handle)
        if not reader.holders and self._readers.get(reader.session_id) is reader:
            self._stop(reader)

    def _stop(self, reader: _Reader) -> None:
        del self._readers[reader.session_id]
        reader.task.cancel()
        reader.stopped()
        self._stopping.add(reader.task)
        reader.task.add_done_callback(self._stopping.discard)

    def _ended(self, reader: _Reader) -> None:
        """A reader's task ended (stopped, or its tip could not be read): forget it."""
        if self._readers.get(reader.session_id) is reader:
            del self._readers[reader.session_id]

    async def wait_stopped(self) -> None:
        """Return once every reader stopped so far has ended."""
        while self._stopping:
            await asyncio.wait(set(self._stopping))

    async def close(self) -> None:
        """Stop every reader and await them; their subscriptions end (``feed_stopped``)."""
        for reader in list(self._readers.values()):
            self._stop(reader)
        await self.wait_stopped()
