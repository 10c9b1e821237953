"""Resume at start, in the background, the sessions that were live when the server stopped.

The listener does not wait for them: ``start`` only lists the session folders; then
``BootResume`` owns one task that reads their ``meta.json`` in chunks off the event loop and
resumes the live ones, at most ``concurrency`` at a time (worker tasks in a ``TaskGroup``
under that one task). The meta read there is handed to the resume: each ``meta.json`` is read
once.

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

log = logging.getLogger(__name__)
CHUNK = 256  # meta.json files read per thread hop
FREEZE_EVERY = 256  # sessions resumed between two gc.freeze() (see the module docstring)

ListFolders = Callable[[], list[str]]
LiveAmong = Callable[[Iterable[str]], list[SessionMeta]]


class BootResume:
    def __init__(self, *, folders: ListFolders, live_among: LiveAmong,
                 resume: Callable[[SessionMeta], Awaitable[bool]],
                 taken: Callable[[str], bool],
                 concurrency: int):
        self._folders = folders  # blocking: the session folder names
        self._live_among = live_among  # blocking: the metas of those that say live
        self._resume = resume  # resume one session (its meta); False when it could not be
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
        try:
            queue: asyncio.Queue[SessionMeta | None] = asyncio.Queue()
            async with asyncio.TaskGroup() as group:
                for number in range(self._concurrency):
                    group.create_task(self._worker(queue), name=f"boot-resume-{number}")
                await self._read(queue)
                for _ in range(self._concurrency):
                    queue.put_nowait(None)
            if self.resumed or self.failed:
                log.info("resumed %d session(s) that were live at the last stop (%d could "
                         "not be resumed)", self.resumed, self.failed)
        finally:
            gc.unfreeze()
            self._unread.clear()
            self._waiting.clear()
            self._done.set()

    async def _read(self, queue: asyncio.Queue[SessionMeta | None]) -> None:
        """Read the folders' metas a chunk at a time; queue each live session found."""
        names = sorted(self._unread, reverse=True)  # ids start with their creation time
        for start in range(0, len(names), CHUNK):
            chunk = names[start:start + CHUNK]
            for meta in await asyncio.to_thread(self._live_among, chunk):
                if not self._taken(meta.session_id):
                    self._waiting.add(meta.session_id)
                    queue.put_nowait(meta)
            self._unread.difference_update(chunk)

    async def _worker(self, queue: asyncio.Queue[SessionMeta | None]) -> None:
        while (meta := await queue.get()) is not None:
            try:
                if await self._resume(meta):
                    self.resumed += 1
                else:
                    self.failed += 1
            finally:
                self._waiting.discard(meta.session_id)
            if (self.resumed + self.failed) % FREEZE_EVERY == 0:
                gc.freeze()
