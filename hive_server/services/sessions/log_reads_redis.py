"""The Redis backend's ``store.reads`` (``log_reads.py`` has the file backend's and the
protocol): a session's log read from its stream ``hive:{<sid>}:log`` on any node, whoever
runs the session. History pages: ``core/eventlog_redis_pages.py`` (``start_offset`` is the
first event's seq, ``before_offset`` a seq). Exports: a chunk of entries per XRANGE, each
rendered in a worker thread. Totals: each meta's, and past them the events of its stream (the
last seqs of all the sessions asked in one pipeline; no cache: Redis is read each time).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection, Sequence

import redis.asyncio

from hive_server.core.eventlog_lines import Line
from hive_server.core.eventlog_pages import EventPage
from hive_server.core.eventlog_redis import seq_of, session_key
from hive_server.core.eventlog_redis_pages import RedisLogPages
from hive_server.models.session import SessionMeta
from hive_server.models.usage import UsageTotals
from hive_server.services.journal.accounting import ColdTotals, count_lines
from hive_server.services.sessions.log_reads import CHUNK_BYTES, HistoryCursor, Render


class RedisReads:
    """See the module docstring."""

    def __init__(self, client: redis.asyncio.Redis):
        self.client = client

    async def page(self, session_id: str, limit: int, cursor: HistoryCursor,
                   upto_seq: int | None) -> EventPage:
        pages = RedisLogPages(self.client, session_id)
        if cursor.after_seq is not None:
            return await pages.forward(limit, cursor.after_seq, upto_seq=upto_seq,
                                       types=cursor.types)
        before = cursor.before_seq if cursor.before_seq is not None else cursor.before_offset
        return await pages.backward(limit, before_seq=before, upto_seq=upto_seq,
                                    types=cursor.types)

    async def chunks(self, session_id: str, upto: int, kinds: Collection[str],
                     render: Render) -> AsyncIterator[bytes]:
        parts: list[bytes] = []
        size, wanted = 0, frozenset(kinds)  # (an Enum class as ``kinds``: its values)
        async for lines in RedisLogPages(self.client, session_id).lines(0, upto):
            piece = await asyncio.to_thread(_render, lines, wanted, render)
            parts.append(piece)
            size += len(piece)
            if size >= CHUNK_BYTES:
                yield b"".join(parts)
                parts, size = [], 0
        if parts and size:
            yield b"".join(parts)

    async def cold_totals(self, cold: ColdTotals,
                          metas: Sequence[SessionMeta]) -> list[UsageTotals]:
        lasts = await self.last_seqs([meta.session_id for meta in metas])
        return [await self._totals(meta, last) for meta, last in zip(metas, lasts, strict=True)]

    async def last_seqs(self, session_ids: list[str]) -> list[int]:
        """Each session's stream's last seq, in one pipeline."""
        if not session_ids:
            return []
        async with self.client.pipeline(transaction=False) as pipe:
            for session_id in session_ids:
                pipe.xrevrange(session_key(session_id, "log"), "+", "-", count=1)
            tops = await pipe.execute()
        return [seq_of(top[0][0]) if top else 0 for top in tops]

    async def _totals(self, meta: SessionMeta, last: int) -> UsageTotals:
        """The meta's totals plus the stream's counted events past them (``scan_totals``)."""
        stored = meta.usage
        if stored is not None and stored.through_seq >= last:
            return stored
        totals = stored.model_copy(deep=True) if stored is not None else UsageTotals()
        pages = RedisLogPages(self.client, meta.session_id)
        async for lines in pages.lines(totals.through_seq, last):
            count_lines(totals, lines, last)
        totals.through_seq = max(totals.through_seq, last)
        return totals


def _render(lines: list[Line], kinds: frozenset[str], render: Render) -> bytes:
    return b"".join(render((line.raw, line.fields or {})) for line in lines
                    if line.type in kinds)
