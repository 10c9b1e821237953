"""Pages of a session's event log in its Redis Stream (``hive:{<sid>}:log``, entry id
``<seq>-0``): what ``eventlog_pages.read_page_file`` / ``read_forward_page_file`` answer for
``events.jsonl``, read with XREVRANGE / XRANGE in chunks (issue 14).

The same ``EventPage``: ``lines`` ascending, of the wanted ``types`` (None: all); ``last_seq``
the last seq considered (the stream's, or ``upto_seq`` when lower); ``more_older`` /
``more_newer`` as the file readers answer them. A stream has no byte offsets: a line's
``start`` is its seq (the entry's position in the stream), so ``start_offset`` is the first
event's seq (0 for an empty page) and a ``before_offset`` is read as a seq. Entries that hold
no event are skipped, as every log reader skips a bad line.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable

import redis.asyncio

from hive_server.core.eventlog_lines import Line
from hive_server.core.eventlog_pages import EventPage, Types
from hive_server.core.eventlog_redis import seq_of, session_key, stream_lines

CHUNK = 1000  # entries per XRANGE / XREVRANGE when a filter may skip many


class RedisLogPages:
    """Pages of one session's stream (read only; any node)."""

    def __init__(self, client: redis.asyncio.Redis, session_id: str, chunk: int = CHUNK):
        self._client = client
        self._key = session_key(session_id, "log")
        self._chunk = chunk

    async def last_seq(self) -> int:
        top = await self._client.xrevrange(self._key, "+", "-", count=1)
        return seq_of(top[0][0]) if top else 0

    async def backward(self, limit: int, *, before_seq: int | None = None,
                       upto_seq: int | None = None, types: Types = None) -> EventPage:
        """The last ``limit`` events (of ``types``) with seq < ``before_seq``, none after
        ``upto_seq``."""
        last = await self._bound(upto_seq)
        below = last + 1 if before_seq is None else min(before_seq, last + 1)
        found = await self._older(below - 1, limit + 1, types)
        return _page(found[:limit][::-1], last, more_older=len(found) > limit)

    async def forward(self, limit: int, after_seq: int, *, upto_seq: int | None = None,
                      types: Types = None) -> EventPage:
        """The first ``limit`` events (of ``types``) with seq > ``after_seq``, none after
        ``upto_seq``."""
        last = await self._bound(upto_seq)
        found = await self._newer(after_seq, last, limit + 1, types)
        older = await self._older(min(after_seq, last), 1, types)
        return _page(found[:limit], last, more_older=bool(older),
                     more_newer=len(found) > limit)

    async def lines(self, after: int, upto: int) -> AsyncIterator[list[Line]]:
        """The lines with ``after`` < seq <= ``upto``, ascending, a chunk at a time."""
        while after < upto:
            entries = await self._client.xrange(self._key, f"{after + 1}-0", f"{upto}-0",
                                                count=self._chunk)
            if not entries:
                return
            after = seq_of(entries[-1][0])
            if found := stream_lines(entries):
                yield found

    async def _bound(self, upto_seq: int | None) -> int:
        last = await self.last_seq()
        return last if upto_seq is None else min(upto_seq, last)

    async def _older(self, top: int, wanted: int, types: Types) -> list[Line]:
        """Up to ``wanted`` lines of ``types`` with seq <= ``top``, newest first."""
        found: list[Line] = []
        while top >= 1 and len(found) < wanted:
            count = wanted - len(found) if types is None else self._chunk
            entries = await self._client.xrevrange(self._key, f"{top}-0", "-", count=count)
            if not entries:
                break
            top = seq_of(entries[-1][0]) - 1
            found += _kept(stream_lines(entries), types)  # newest first, as read
        return found[:wanted]

    async def _newer(self, after: int, last: int, wanted: int, types: Types) -> list[Line]:
        """Up to ``wanted`` lines of ``types`` with ``after`` < seq <= ``last``, oldest
        first."""
        found: list[Line] = []
        while after < last and len(found) < wanted:
            count = wanted - len(found) if types is None else self._chunk
            entries = await self._client.xrange(self._key, f"{after + 1}-0", f"{last}-0",
                                                count=count)
            if not entries:
                break
            after = seq_of(entries[-1][0])
            found += _kept(stream_lines(entries), types)
        return found[:wanted]


def _kept(lines: Iterable[Line], types: Types) -> list[Line]:
    return [line for line in lines if types is None or line.type in types]


def _page(lines: list[Line], last_seq: int, **more: bool) -> EventPage:
    """A page whose lines carry their seq as their offset (a stream has no byte offsets)."""
    for line in lines:  # built by this read: nobody else holds them
        line.start = line.seq
    return EventPage(lines, lines[0].start if lines else 0, last_seq, **more)
