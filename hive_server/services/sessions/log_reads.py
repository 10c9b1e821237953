"""Reads of a session's stored log that do not need it live (history pages, exports, the
totals of a session this node does not run): ``store.reads`` of either backend. This module is
the file backend's (``events.jsonl`` read by path in worker threads); ``log_reads_redis.py`` is
the Redis backend's, with the same methods.

Exports read the log line by line (``LogScan``: large blocks, only the lines of the kinds
wanted are parsed, bad lines skipped and logged) in a worker thread, a batch of about
``CHUNK_BYTES`` of output at a time, so a log of any size is exported in bounded memory and the
event loop never reads the file.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator, Callable, Collection, Generator, Sequence
from functools import partial
from pathlib import Path
from typing import Protocol

import orjson

from hive_server.core.eventlog_pages import EventPage, read_forward_page_file, read_page_file
from hive_server.core.eventlog_reader import last_seq_file
from hive_server.core.log_scan import LogScan
from hive_server.models.session import SessionMeta
from hive_server.models.usage import UsageTotals
from hive_server.services.journal.accounting import ColdTotals

log = logging.getLogger(__name__)
CHUNK_BYTES = 64 * 1024
LOG = "events.jsonl"
Stored = tuple[bytes, dict[str, object]]  # a stored line and its event
Render = Callable[[Stored], bytes]


@dataclasses.dataclass(frozen=True, slots=True)
class HistoryCursor:
    """Where a page starts: at most one of ``before_seq``/``before_offset`` and ``after_seq``
    (the handler refuses both); ``types``: the event types kept (None: all)."""

    before_seq: int | None = None
    before_offset: int | None = None
    after_seq: int | None = None
    types: frozenset[str] | None = None


class SessionReads(Protocol):
    """What ``store.reads`` offers on either backend."""

    async def page(self, session_id: str, limit: int, cursor: HistoryCursor,
                   upto_seq: int | None) -> EventPage: ...

    def chunks(self, session_id: str, upto: int, kinds: Collection[str],
               render: Render) -> AsyncIterator[bytes]: ...

    async def cold_totals(self, cold: ColdTotals,
                          metas: Sequence[SessionMeta]) -> list[UsageTotals]: ...

    async def last_seqs(self, session_ids: list[str]) -> list[int]: ...


class FileReads:
    """The file backend's reads (see the module docstring)."""

    def __init__(self, root: Path):
        self.root = root  # the sessions folder (ids are validated by the store's ``path``)

    async def page(self, session_id: str, limit: int, cursor: HistoryCursor,
                   upto_seq: int | None) -> EventPage:
        """A page of the log as ``/events/history`` serves it (none after ``upto_seq``)."""
        path = self.root / session_id / LOG
        if cursor.after_seq is not None:
            read = partial(read_forward_page_file, path, limit, cursor.after_seq)
        else:
            read = partial(read_page_file, path, limit, before_seq=cursor.before_seq,
                           before_offset=cursor.before_offset)
        return await asyncio.to_thread(read, upto_seq=upto_seq, types=cursor.types)

    def chunks(self, session_id: str, upto: int, kinds: Collection[str],
               render: Render) -> AsyncIterator[bytes]:
        """``render`` of every stored event of ``kinds`` up to seq ``upto``, in chunks of
        about ``CHUNK_BYTES``."""
        return _batches(_stored(self.root / session_id / LOG, upto, kinds), render)

    async def cold_totals(self, cold: ColdTotals,
                          metas: Sequence[SessionMeta]) -> list[UsageTotals]:
        """The totals of sessions not live here: each meta's and, past them, its log (one
        thread hop; ``cold`` caches what a log gave)."""
        items = [(self.root / meta.session_id, meta.usage) for meta in metas]
        return await asyncio.to_thread(lambda: [cold.totals(*item) for item in items])

    async def last_seqs(self, session_ids: list[str]) -> list[int]:
        """Each session's log's last seq (read from its end), in one thread hop."""
        paths = [self.root / session_id / LOG for session_id in session_ids]
        return await asyncio.to_thread(lambda: [last_seq_file(path) for path in paths])


def _stored(path: Path, upto: int, kinds: Collection[str]) -> Generator[Stored, None, None]:
    """The stored lines (and their events) of ``kinds`` with seq ascending up to ``upto``."""
    scan, last = LogScan(kinds), 0
    if not path.exists():
        return
    for offset, line in scan.lines(path):
        try:
            event = orjson.loads(line)
            seq = event["seq"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            scan.mark_bad(offset, line)
            continue
        if type(seq) is int and last < seq <= upto:
            last = seq
            yield line, event
    if scan.bad:
        log.warning("event log %s: %d bad lines skipped by an export", path, len(scan.bad))


async def _batches(source: Generator[Stored, None, None], render: Render) -> AsyncIterator[bytes]:
    """``render`` of every item, joined into chunks of about ``CHUNK_BYTES``, each read and
    rendered in a worker thread. Closing it closes the file, except while a thread still
    reads it (a cancel): the generator is then closed when that thread lets it go."""
    reading = False
    try:
        while True:
            reading = True
            chunk = await asyncio.to_thread(_next_chunk, source, render)
            reading = False
            if not chunk:
                return
            yield chunk
    finally:
        if not reading:
            source.close()


def _next_chunk(source: Generator[Stored, None, None], render: Render) -> bytes:
    parts, size = [], 0
    for item in source:
        piece = render(item)
        parts.append(piece)
        size += len(piece)
        if size >= CHUNK_BYTES:
            break
    return b"".join(parts)
