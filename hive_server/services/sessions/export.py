"""A session's transcript as a download (``GET /api/sessions/{id}/export``), live or cold.

The log is read line by line (``LogScan``: large blocks, only the lines of the types the
format shows are parsed, bad lines skipped and logged) in a worker thread, a batch of about
``CHUNK_BYTES`` of output at a time, so a log of any size is exported in bounded memory and
the event loop never reads the file. ``jsonl`` is the stored lines themselves. A live
session's log is flushed first and read up to the seq it had when the export began.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Callable, Collection, Generator
from pathlib import Path

import orjson

from hive_server.core.eventlog_reader import last_seq_file
from hive_server.core.log_scan import LogScan
from hive_server.errors.sessions import InvalidFormat
from hive_server.models.events import EventType
from hive_server.models.session import SessionMeta
from hive_server.services.sessions.export_formats import FORMATS, Format
from hive_server.services.sessions.lookup import live_or_cold
from hive_server.services.sessions.manager import SessionManager
from hive_server.services.sessions.transcript import WANTED, Transcript

log = logging.getLogger(__name__)
CHUNK_BYTES = 64 * 1024
EXPORT_FORMATS = (*FORMATS, "jsonl")
JSONL = ("jsonl", "application/x-ndjson")
Stored = tuple[bytes, dict[str, object]]


@dataclasses.dataclass(frozen=True, slots=True)
class Export:
    filename: str
    media_type: str
    chunks: AsyncIterator[bytes]


async def open_export(manager: SessionManager, session_id: str, fmt: str) -> Export:
    """The export of a session in ``fmt`` (400 ``invalid_format``; 404; 409 loading)."""
    if fmt not in EXPORT_FORMATS:
        raise InvalidFormat(EXPORT_FORMATS)
    live = await live_or_cold(manager, session_id)
    path = manager.store.path(session_id) / "events.jsonl"
    if live is not None:
        meta, upto = live.journal.meta, live.journal.last_seq
        await live.journal.log.flush()
    else:
        meta = await manager.store.read_meta(session_id)
        upto = await asyncio.to_thread(last_seq_file, path)
    if fmt == "jsonl":
        extension, media_type = JSONL
        chunks = _batches(_stored(path, upto, EventType), _raw)
    else:
        writer = FORMATS[fmt]()
        extension, media_type = writer.extension, writer.media_type
        chunks = _transcript(path, upto, meta, writer)
    return Export(f"{session_id}.{extension}", media_type, chunks)


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


def _raw(stored: Stored) -> bytes:
    return stored[0] + b"\n"


async def _transcript(path: Path, upto: int, meta: SessionMeta,
                      writer: Format) -> AsyncIterator[bytes]:
    transcript = Transcript()

    def render(stored: Stored) -> bytes:
        return "".join(writer.entry(e) for e in transcript.feed(stored[1])).encode()

    yield writer.header(meta).encode()
    async with contextlib.aclosing(_batches(_stored(path, upto, WANTED), render)) as batches:
        async for chunk in batches:
            yield chunk
    tail = "".join(writer.entry(e) for e in transcript.finish()) + writer.footer()
    yield tail.encode()


async def _batches(source: Generator[Stored, None, None],
                   render: Callable[[Stored], bytes]) -> AsyncIterator[bytes]:
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


def _next_chunk(source: Generator[Stored, None, None], render: Callable[[Stored], bytes]) -> bytes:
    parts, size = [], 0
    for item in source:
        piece = render(item)
        parts.append(piece)
        size += len(piece)
        if size >= CHUNK_BYTES:
            break
    return b"".join(parts)
