"""``FolderWatcher``: one owned task that runs ``watchfiles.awatch`` on a folder and calls a
reload coroutine after each debounced batch of changes (agents dir, queens dir);
``stop_watchers`` stops several at once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from contextlib import suppress
from pathlib import Path

from watchfiles import awatch

log = logging.getLogger(__name__)

WATCH_RETRY_SECONDS = 1.0
WATCH_STOP_TIMEOUT = 5.0


class FolderWatcher:
    """Owns the task that calls ``reload`` whenever files under ``root`` change."""

    def __init__(self, root: Path, reload: Callable[[], Awaitable[object]], *,
                 debounce_ms: int = 300, name: str = "folder", watch: bool = True) -> None:
        self.root = root
        self.watch = watch  # False: scan once at start, never watch
        self._reload_fn = reload
        self._name = name
        self._debounce_ms = debounce_ms
        self._stop_event = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Create the folder if missing, start watching, then reload once.

        The watch task gets one loop step to register its watch before the initial scan, so
        a change lands either in that scan or in a watch batch.
        """
        if self._task is not None:
            raise RuntimeError(f"{self._name} watcher already started")
        await asyncio.to_thread(self.root.mkdir, parents=True, exist_ok=True)
        if not self.watch:
            await self._reload()
            return
        self._stop_event = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name=f"watch:{self._name}")
        await asyncio.sleep(0)
        await self._reload()

    async def stop(self) -> None:
        """Stop watching and wait for the task to end."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stop_event.set()
        try:
            await asyncio.wait_for(task, WATCH_STOP_TIMEOUT)
        except TimeoutError:
            log.warning("%s watcher did not stop in %ss; cancelled", self._name,
                        WATCH_STOP_TIMEOUT)

    async def _run(self) -> None:
        root = self.root
        while not self._stop_event.is_set():
            try:
                async for changes in awatch(root, debounce=self._debounce_ms,
                                            stop_event=self._stop_event):
                    log.debug("%s changed: %d file events", root, len(changes))
                    await self._reload()
            except Exception:  # task boundary: log, wait a moment, watch again
                log.exception("watching %s failed; retrying", root)
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._stop_event.wait(), WATCH_RETRY_SECONDS)
                with suppress(OSError):
                    await asyncio.to_thread(root.mkdir, parents=True, exist_ok=True)
                await self._reload()

    async def _reload(self) -> None:
        try:
            await self._reload_fn()
        except Exception:  # task boundary: a failed scan must not end the watcher
            log.exception("%s reload failed", self._name)


async def stop_watchers(watchers: Iterable[FolderWatcher]) -> None:
    """Stop every watcher concurrently: each waits up to one poll step of its watch thread, so
    the agents and queens watchers stop in the time of one."""
    async with asyncio.TaskGroup() as group:
        for watcher in watchers:
            group.create_task(watcher.stop(), name=f"stop:{watcher.root.name}")
