"""The per-session append-only event log: ``events.jsonl``, one ``Event.to_json()`` per line.

``EventLog`` owns one writer task. In ``fsync`` mode ``append`` enqueues synchronously (so
call order is seq order), the writer takes every queued line, writes and fsyncs them in one
call in a thread (group commit), then resolves the appenders' futures. In ``batch`` and
``none`` mode an append whose file is open and finds nothing queued writes its line to the OS
at once, in the event loop (a write to the page cache), and returns a future already
resolved: the writer task only fsyncs (``batch``: at most ``batch_interval`` after the first
unsynced write) and closes the idle file; while the file is closed (or lines are queued) an
append queues as in ``fsync`` mode. Reads go through the writer-free functions of
``eventlog_reader`` (re-exported here for cold sessions) in a thread.

A log holds no descriptor while it is idle: once nothing was written for ``idle_close``
seconds (and any due fsync is done) the writer syncs and closes the file, and reopens it for
the next batch; a reopen that finds the process out of descriptors is retried for a bounded
time (the batch waits) before it counts as a write failure.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
from collections.abc import AsyncIterator
from enum import StrEnum
from io import FileIO
from pathlib import Path

from hive_server.core.eventlog_file import (
    OpenInfo,
    open_for_append,
    reopen_and_write,
    sync_and_close,
    write_all,
    write_sync_close,
)
from hive_server.core.eventlog_lines import Line
from hive_server.core.eventlog_reader import (
    BLOCK_SIZE,
    last_seq_file,
    read_after_file,
    read_tail_file,
    scan_lines_after,
)
from hive_server.core.log_waiters import Flushers, settle
from hive_server.core.stats import EVENTS_APPENDED, timed_fsync
from hive_server.models.events import Event

__all__ = [
    "BLOCK_SIZE",
    "Durability",
    "EventLog",
    "OpenInfo",
    "last_seq_file",
    "open_for_append",
    "read_after_file",
    "read_tail_file",
]

logger = logging.getLogger(__name__)
IDLE_CLOSE_SECONDS = 1.0
REOPEN_ATTEMPTS = 20  # x REOPEN_DELAY: how long a batch waits for a free descriptor
REOPEN_DELAY = 0.1
OUT_OF_DESCRIPTORS = (errno.EMFILE, errno.ENFILE)


class Durability(StrEnum):
    """When an append is acknowledged (its future resolves).

    ``fsync``: after the batch holding it is written and fsynced (group commit).
    ``batch``: once written to the OS (safe from a process crash); the file is fsynced at most
    ``batch_interval`` (10 ms) later, so a power cut loses at most that window.
    ``none``: once written to the OS; fsynced only when the log closes or goes idle.
    """

    FSYNC = "fsync"
    BATCH = "batch"
    NONE = "none"


class EventLog:
    """One session's ``events.jsonl`` with its writer task. See the module docstring."""

    def __init__(
        self,
        path: Path,
        durability: Durability,
        *,
        batch_interval: float = 0.010,
        block_size: int = BLOCK_SIZE,
        idle_close: float | None = IDLE_CLOSE_SECONDS,
        reopen_delay: float = REOPEN_DELAY,
    ):
        self._path = path
        self._durability = durability
        self._batch_interval = batch_interval
        self._block_size = block_size
        self._idle_close = idle_close
        self._reopen_delay = reopen_delay
        self._unsynced = False  # written since the last fsync
        self._file: FileIO | None = None
        self._writer: asyncio.Task[None] | None = None
        self._wakeup = asyncio.Event()
        self._closed = False
        self._error: OSError | None = None
        self._last_seq = 0
        self._written_seq = 0
        self._queue: list[tuple[bytes, asyncio.Future[None]]] = []
        self._inflight: list[asyncio.Future[None]] = []
        self._sync_deadline: float | None = None
        self._flushers = Flushers()
        self._direct = durability is not Durability.FSYNC  # write in append (module docstring)
        self._direct_writes = 0  # appends written in place: the file is not idle
        self._quiet = False  # close the file once synced (``quiet``)

    @property
    def path(self) -> Path:
        return self._path

    @property
    def last_seq(self) -> int:
        return self._last_seq

    async def open(self) -> OpenInfo:
        """Create or repair the file (cutting a torn tail), read the last seq, start the writer."""
        return self.start(await asyncio.to_thread(open_for_append, self._path))

    def start(self, opened: tuple[FileIO, OpenInfo]) -> OpenInfo:
        """``open`` with the file ``open_for_append(self.path)`` returned (a caller that reads
        other files in the same thread hop)."""
        if self._writer is not None or self._closed:
            raise RuntimeError(f"event log {self._path} was already opened")
        self._file, info = opened
        self._last_seq = self._written_seq = info.last_seq
        self._writer = asyncio.create_task(self._run(), name=f"eventlog-writer:{self._path}")
        return info

    def append(self, event: Event) -> asyncio.Future[None]:
        """Enqueue ``event`` (seq must be ``last_seq + 1``); the future resolves once it is
        durable under the policy, or fails with the writer's ``OSError``."""
        if self._error is not None:
            raise RuntimeError(f"event log {self._path} failed") from self._error
        if self._writer is None or self._closed:
            raise RuntimeError(f"event log {self._path} is not open")
        if event.seq != self._last_seq + 1:
            raise ValueError(f"event seq {event.seq} does not follow {self._last_seq}")
        line = event.to_json() + b"\n"
        self._last_seq = event.seq
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._direct and self._file is not None and not (self._queue or self._inflight):
            self._write_now(self._file, line, future)
        else:
            self._queue.append((line, future))
            self._wakeup.set()
        return future

    def _write_now(self, file: FileIO, line: bytes, future: asyncio.Future[None]) -> None:
        """``batch``/``none``: write ``line`` here (in order: nothing is queued or in flight)
        and resolve ``future``; a ``batch`` log arms its fsync deadline and wakes the writer."""
        try:
            written = os.write(file.fileno(), line)  # all of it, but for a short write
            if written < len(line):
                write_all(file, line[written:], False)
        except OSError as exc:
            self._failed(exc)
            future.set_exception(exc)
            self._wakeup.set()  # the writer stops
            return
        self._unsynced = True
        self._written_seq += 1
        self._direct_writes += 1
        EVENTS_APPENDED.add(1)
        future.set_result(None)
        if self._durability is Durability.BATCH and self._sync_deadline is None:
            self._sync_deadline = asyncio.get_running_loop().time() + self._batch_interval
            self._wakeup.set()

    def quiet(self) -> None:
        """No more appends are expected for a while (a resumed session, once it is up): the
        file is closed at ``batch`` mode's next sync (fsync and close in one thread hop), or
        now when no sync is due, instead of ``idle_close`` seconds later. An append after
        that reopens the file, as after an idle close."""
        self._quiet = True
        self._wakeup.set()

    async def flush(self) -> None:
        """Return once every event appended so far is written (readable, maybe not synced)."""
        await self._flushers.until(self._last_seq, self._written_seq, self._error, self._path)

    async def close(self) -> None:
        """Write and fsync what is queued, stop the writer, close the file (the queued lines
        and the file in one thread hop). Idempotent. A close that is cancelled leaves the
        writer to finish its final write; a later close awaits it."""
        self._closed = True
        self._wakeup.set()
        if self._writer is not None:
            await asyncio.shield(self._writer)
        file, self._file = self._file, None
        if file is not None:
            await asyncio.to_thread(file.close)

    async def read_after(self, after_seq: int, limit: int | None = None) -> list[Event]:
        """Events appended before this call with seq > ``after_seq``, in order."""
        upto = self._last_seq
        await self.flush()
        events = await asyncio.to_thread(
            read_after_file, self._path, after_seq, limit, block_size=self._block_size
        )
        return [event for event in events if event.seq <= upto]

    async def iter_after(self, after_seq: int, chunk: int = 1000) -> AsyncIterator[list[Event]]:
        """``read_after`` in chunks of at most ``chunk`` events, each read in a thread."""
        async for lines in self.iter_lines_after(after_seq, chunk):
            yield [line.to_event() for line in lines]

    async def iter_lines_after(self, after_seq: int,
                               chunk: int = 1000) -> AsyncIterator[list[Line]]:
        """``iter_after``'s log lines, no ``Event`` built: their seq, type and bytes
        (``Line.sse_frame``: what SSE replay sends)."""
        upto = self._last_seq
        await self.flush()
        offset: int | None = None
        while after_seq < upto:
            lines, offset = await asyncio.to_thread(
                scan_lines_after, self._path, after_seq, chunk, offset, self._block_size
            )
            if lines and lines[-1].seq > upto:  # appended after this call: not ours
                lines = [line for line in lines if line.seq <= upto]
            if not lines:
                return
            yield lines
            after_seq = lines[-1].seq

    async def read_tail(self, limit: int, before_seq: int | None = None) -> list[Event]:
        """The last ``limit`` events with seq < ``before_seq`` (all if None), ascending."""
        upto = self._last_seq
        await self.flush()
        before = upto + 1 if before_seq is None else min(before_seq, upto + 1)
        return await asyncio.to_thread(
            read_tail_file, self._path, limit, before, block_size=self._block_size
        )

    # -- the writer task ---------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            while not self._closed and self._error is None:
                idle = await self._wait_for_work()
                if self._closed:  # what is queued goes with the final write
                    break
                if self._queue and self._error is None:
                    await self._write_queued()
                if self._sync_due():
                    await self._sync()
                if idle or (self._quiet and self._sync_deadline is None and not self._queue):
                    await self._close_file()
            if self._error is None and (self._queue or self._file is not None):
                await self._write_queued(final=True)  # written, synced, closed: one hop
        except OSError as exc:
            self._failed(exc)
        finally:
            self._closed = True
            self._fail_pending(RuntimeError(f"event log {self._path} writer stopped"))

    async def _wait_for_work(self) -> bool:
        """Wait for an append, a close or the sync deadline; True when the open file sat idle
        for ``idle_close`` seconds (no sync pending): time to close it."""
        idle = False
        if not (self._queue or self._closed or self._error):
            timeout = None
            if self._sync_deadline is not None:
                timeout = max(0.0, self._sync_deadline - asyncio.get_running_loop().time())
            elif self._file is not None:
                timeout = self._idle_close
            writes = self._direct_writes
            try:
                async with asyncio.timeout(timeout):
                    await self._wakeup.wait()
            except TimeoutError:  # idle unless appends were written in place meanwhile
                idle = self._sync_deadline is None and writes == self._direct_writes
        self._wakeup.clear()
        return idle

    async def _close_file(self) -> None:
        self._quiet = False
        file, self._file = self._file, None
        unsynced, self._unsynced = self._unsynced, False
        if file is not None:
            await asyncio.to_thread(sync_and_close, file, unsynced)

    async def _reopen_and_write(self, data: bytes, fsync: bool, final: bool) -> FileIO | None:
        """The file opened again and ``data`` written in one thread hop (closed again when
        ``final``); out of descriptors, the open is retried ``REOPEN_ATTEMPTS`` times
        ``reopen_delay`` apart (the batch waits) before the error counts."""
        for attempt in range(1, REOPEN_ATTEMPTS + 1):
            try:
                return await asyncio.to_thread(reopen_and_write, self._path, data, fsync, final)
            except OSError as exc:  # raised by the open: nothing was written
                if exc.errno not in OUT_OF_DESCRIPTORS or attempt == REOPEN_ATTEMPTS:
                    raise
                if attempt == 1:
                    logger.warning("event log %s: out of file descriptors; retrying", self._path)
                await asyncio.sleep(self._reopen_delay)
        raise AssertionError("unreachable")

    async def _write_queued(self, final: bool = False) -> None:
        """The queued lines written, with the file's reopen when it was closed idle (one
        thread hop); ``final``: at close, then synced and the file closed."""
        batch, self._queue = self._queue, []
        self._inflight = [future for _, future in batch]
        data = b"".join(line for line, _ in batch)
        fsync = final or self._durability is Durability.FSYNC
        file, self._file = self._file, (None if final else self._file)
        if file is None:
            self._file = await self._reopen_and_write(data, fsync, final)
        else:
            await asyncio.to_thread(write_sync_close if final else write_all, file, data, fsync)
        self._unsynced = not fsync
        self._written_seq += len(batch)
        EVENTS_APPENDED.add(len(batch))
        futures, self._inflight = self._inflight, []
        self._flushers.release(self._written_seq)
        settle(futures)
        if self._durability is Durability.BATCH and self._sync_deadline is None:
            self._sync_deadline = asyncio.get_running_loop().time() + self._batch_interval

    def _sync_due(self) -> bool:
        deadline = self._sync_deadline
        return deadline is not None and asyncio.get_running_loop().time() >= deadline

    async def _sync(self) -> None:
        self._sync_deadline = None
        if self._file is None:  # closed while idle: synced then
            return
        if self._quiet:  # the close that follows syncs it (one hop)
            return
        self._unsynced = False  # before: a line written in place meanwhile stays unsynced
        await asyncio.to_thread(timed_fsync, self._file.fileno())

    def _failed(self, exc: OSError) -> None:
        logger.error("event log %s: write failed; failing pending appends", self._path,
                     exc_info=exc)
        self._error = exc
        self._fail_pending(exc)

    def _fail_pending(self, exc: BaseException) -> None:
        pending = [future for _, future in self._queue] + self._inflight
        pending += self._flushers.take()
        self._queue, self._inflight = [], []
        if failed := settle(pending, exc):
            logger.warning("event log %s: %d pending appends failed: %s", self._path, failed, exc)
