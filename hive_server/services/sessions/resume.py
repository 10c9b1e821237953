"""Resume at start, in the background, the sessions that were live when the server stopped.

The listener does not wait for them: ``start`` only lists the session folders; then
``BootResume`` owns one task that reads their ``meta.json`` in chunks off the event loop,
opening the files of the live ones in the same thread hop (a hop per session was a tenth of
the resume's CPU), and resumes them, at most ``concurrency`` at a time (worker tasks in a
``TaskGroup`` under that one task). What was read there is handed to the resume: each
``meta.json`` is read once, each log opened once. The queue between the reader and the
workers is bounded, so at most a chunk and ``2 x concurrency`` sessions wait with their log
open; files opened for a session that is not resumed after all (taken meanwhile, or the
resume stopped) are closed.

- ``holds(id)``: the id's folder is not read yet, or its session is waiting for its turn or
  resuming. The ``SessionManager`` answers such an id 409 ``session_loading`` (202 ``loading``
  for ``GET /api/sessions/{id}``), so a create, a rename or a delete never races the resume.
- ``left``: what ``/api/health`` reports as ``resuming`` (folders not read yet count: the
  number only goes down, and is 0 once every live session has been tried).
- ``stop``: cancels the task and awaits it. A session cut short in the middle of its resume
  is closed as it was and stays marked live, so the next start resumes it.

Each live session is some 150 long-lived objects; the cyclic garbage collector's full
collections, which run each time the tracked objects grew by a quarter, would traverse all
of them over and over (13 full collections, a third of the time, for 10,000 sessions). So
every ``FREEZE_EVERY`` sessions resumed the objects made so far are frozen (``gc.freeze``:
left out of collections), and unfrozen once the resume is done (a stopped session's cycles
are collected again from then on).
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Awaitable, Callable, Iterable

from hive_server.models.session import SessionMeta
from hive_server.services.sessions.store import Opened, SessionFiles

log = logging.getLogger(__name__)
CHUNK = 64  # session folders read (and, for the live ones, opened) per thread hop
FREEZE_EVERY = 256  # sessions resumed between two gc.freeze() (see the module docstring)

ListFolders = Callable[[], list[str]]
LiveOpened = Callable[[Iterable[str]], list[tuple[SessionMeta, Opened]]]
Queued = tuple[SessionMeta, Opened] | None


class BootResume:
    def __init__(self, *, folders: ListFolders, live_opened: LiveOpened,
                 resume: Callable[[SessionMeta, Opened], Awaitable[bool]],
                 taken: Callable[[str], bool],
                 concurrency: int):
        self._folders = folders  # blocking: the session folder names
        self._live_opened = live_opened  # blocking: those that say live, their files opened
        self._resume = resume  # resume one session (meta, files); False when it could not be
        self._taken = taken  # already live or loading (created over the API meanwhile)
        self._concurrency = max(1, concurrency)
        self._unread: set[str] = set()
        self._waiting: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self._done = asyncio.Event()
        self.resumed = 0
        self.failed = 0

    async def start(self) -> None:
        """List the session folders (each held until its meta is read), then resume in the
        background: the caller goes on (the listener opens) at once."""
        self._unread = set(await asyncio.to_thread(self._folders))
        self._task = asyncio.create_task(self._run(), name="boot-resume")

    def holds(self, session_id: str) -> bool:
        return session_id in self._unread or session_id in self._waiting

    @property
    def left(self) -> int:
        return len(self._unread) + len(self._waiting)

    async def wait(self) -> None:
        """Until every live session has been tried (or the resume was stopped)."""
        await self._done.wait()

    async def stop(self) -> None:
        """Cancel the resume and await it: nothing of it runs afterwards."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        await asyncio.wait([task])

    async def _run(self) -> None:
        queue: asyncio.Queue[Queued] = asyncio.Queue(2 * self._concurrency)
        try:
            async with asyncio.TaskGroup() as group:
                for number in range(self._concurrency):
                    group.create_task(self._worker(queue), name=f"boot-resume-{number}")
                await self._read(queue)
                for _ in range(self._concurrency):
                    await queue.put(None)
            if self.resumed or self.failed:
                log.info("resumed %d session(s) that were live at the last stop (%d could "
                         "not be resumed)", self.resumed, self.failed)
        finally:
            _close_left(queue)
            gc.unfreeze()
            self._unread.clear()
            self._waiting.clear()
            self._done.set()

    async def _read(self, queue: asyncio.Queue[Queued]) -> None:
        """Read the folders' metas a chunk at a time, the live ones' files opened; queue each
        live session (waiting while the workers are behind)."""
        names = sorted(self._unread, reverse=True)  # ids start with their creation time
        for start in range(0, len(names), CHUNK):
            chunk = names[start:start + CHUNK]
            found = await self._open_chunk(chunk)
            try:
                while found:
                    meta, files = found[0]
                    if not self._taken(meta.session_id):
                        self._waiting.add(meta.session_id)
                        await queue.put(found[0])
                    elif isinstance(files, SessionFiles):
                        files.close()
                    found.pop(0)
            finally:
                _close_all(found)  # the resume was stopped while these waited
            self._unread.difference_update(chunk)

    async def _open_chunk(self, chunk: list[str]) -> list[tuple[SessionMeta, Opened]]:
        """``live_opened`` in a thread; cancelled meanwhile, what the thread still opens is
        closed as it returns."""
        hop = asyncio.ensure_future(asyncio.to_thread(self._live_opened, chunk))
        try:
            return await asyncio.shield(hop)
        except asyncio.CancelledError:
            hop.add_done_callback(_close_result)
            raise

    async def _worker(self, queue: asyncio.Queue[Queued]) -> None:
        while (item := await queue.get()) is not None:
            meta, files = item
            try:
                if await self._resume(meta, files):
                    self.resumed += 1
                else:
                    self.failed += 1
            finally:
                self._waiting.discard(meta.session_id)
            if (self.resumed + self.failed) % FREEZE_EVERY == 0:
                gc.freeze()


def _close_all(found: list[tuple[SessionMeta, Opened]]) -> None:
    for _, files in found:
        if isinstance(files, SessionFiles):
            files.close()


def _close_result(hop: asyncio.Future[list[tuple[SessionMeta, Opened]]]) -> None:
    if not hop.cancelled() and hop.exception() is None:
        _close_all(hop.result())


def _close_left(queue: asyncio.Queue[Queued]) -> None:
    """Close the files of the sessions still queued when the resume ends (it was stopped)."""
    while not queue.empty():
        item = queue.get_nowait()
        if item is not None:
            _close_all([item])
