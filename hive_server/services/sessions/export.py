"""A session's transcript as a download (``GET /api/sessions/{id}/export``), live or cold.

The log is read through the store's ``reads`` (``log_reads.py``: ``events.jsonl`` in worker
threads, a batch of about ``CHUNK_BYTES`` of output at a time; ``log_reads_redis.py``: the
session's Redis stream, a chunk of entries at a time), so a log of any size is exported in
bounded memory. ``jsonl`` is the stored lines themselves. A live session's log is flushed first
and read up to the seq it had when the export began; a session another node runs (``--redis``)
is read up to its stream's last seq then.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator

from hive_server.errors.sessions import InvalidFormat
from hive_server.models.events import EventType
from hive_server.models.session import SessionMeta
from hive_server.services.sessions.export_formats import FORMATS, Format
from hive_server.services.sessions.log_reads import CHUNK_BYTES, SessionReads, Stored
from hive_server.services.sessions.lookup import live_or_cold
from hive_server.services.sessions.manager import SessionManager
from hive_server.services.sessions.transcript import WANTED, Transcript

__all__ = ["CHUNK_BYTES", "EXPORT_FORMATS", "Export", "open_export"]
EXPORT_FORMATS = (*FORMATS, "jsonl")
JSONL = ("jsonl", "application/x-ndjson")


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
    reads = manager.store.reads
    if live is not None:
        meta, upto = live.journal.meta, live.journal.last_seq
        await live.journal.log.flush()
    else:
        meta = await manager.store.read_meta(session_id)
        upto = await manager.store.last_seq(session_id)
    if fmt == "jsonl":
        extension, media_type = JSONL
        chunks = reads.chunks(session_id, upto, EventType, _raw)
    else:
        writer = FORMATS[fmt]()
        extension, media_type = writer.extension, writer.media_type
        chunks = _transcript(reads, session_id, upto, meta, writer)
    return Export(f"{session_id}.{extension}", media_type, chunks)


def _raw(stored: Stored) -> bytes:
    return stored[0] + b"\n"


async def _transcript(reads: SessionReads, session_id: str, upto: int, meta: SessionMeta,
                      writer: Format) -> AsyncIterator[bytes]:
    transcript = Transcript()

    def render(stored: Stored) -> bytes:
        return "".join(writer.entry(e) for e in transcript.feed(stored[1])).encode()

    yield writer.header(meta).encode()
    async with contextlib.aclosing(reads.chunks(session_id, upto, WANTED, render)) as batches:
        async for chunk in batches:
            yield chunk
    tail = "".join(writer.entry(e) for e in transcript.finish()) + writer.footer()
    yield tail.encode()
