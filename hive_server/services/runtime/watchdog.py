"""The stale-turn watchdog: a queen turn that goes silent is failed, not left spinning.

One ``TurnWatchdog`` per session (a session part: ``start`` hooks it to the queen, and its
task, if any, is cancelled and awaited when the session stops). It runs only while the queen
runs a turn: the queen calls ``watch`` as each execution starts and ends, which starts the task
and cancels it, so an idle session has no task and no
timer (10,000 resumed sessions would otherwise wake 330 times a second). While it runs it looks
at the session's last turn event (``SessionJournal.last_turn_seq``: an event with an execution
id) every tenth of ``stale_seconds`` on the injected clock. While the queen runs a turn, any
event of it (the queen's text, tool calls and model turns, its workers' steps) is progress; an
event that is not the turn's (a chat queued meanwhile, a trigger fire) is not. A turn that
produced none for ``stale_seconds`` (measured from when the watchdog saw the last one, so at
most a tenth late) is failed by ``Queen.fail_stale``: ``execution_failed {error_type:
"stale"}``, its tool calls and workers cancelled, the queen free for the next input. A turn
waiting on an ``ask_user`` answer is waiting for a person, not stuck: it never goes stale.
"""

from __future__ import annotations

import asyncio
import logging

from hive_server.core.clock import Clock
from hive_server.core.tasks import cancel_and_wait
from hive_server.services.journal.journal import SessionJournal
from hive_server.services.runtime.queen import Queen

log = logging.getLogger(__name__)
CHECKS_PER_PERIOD = 10


class TurnWatchdog:
    def __init__(self, session: SessionJournal, queen: Queen, clock: Clock, stale_seconds: float):
        self.session = session
        self.queen = queen
        self.clock = clock
        self.stale_seconds = stale_seconds
        self._task: asyncio.Task[None] | None = None  # watching the current execution
        self._tasks: set[asyncio.Task[None]] = set()  # with those cancelled, not yet ended
        self._failing = False  # the task is failing a stale turn (the turn's end waits for it)

    def start(self) -> None:
        self.queen.on_turn = self.watch

    def watch(self, running: bool) -> None:
        """The queen started (True) or ended (False) an execution: a task watches in between
        (cancelled at the end, unless it is the one failing the turn: it ends by itself, or
        watches the next execution if one started meanwhile)."""
        if running and self._task is None:
            self._task = task = asyncio.create_task(self._run(),
                                                    name=f"watchdog:{self.session.id}")
            self._tasks.add(task)
            task.add_done_callback(self._ended)
        elif not running and self._task is not None and not self._failing:
            self._task.cancel()
            self._task = None

    def _ended(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if self._task is task:
            self._task = None

    async def stop(self) -> None:
        self.queen.on_turn = None
        self._task = None
        await cancel_and_wait(*self._tasks)

    async def _run(self) -> None:
        step = self.stale_seconds / CHECKS_PER_PERIOD
        seen, since = self.session.last_turn_seq, self.clock.time()
        while self.queen.busy:
            await self.clock.sleep_until(min(since + self.stale_seconds,
                                             self.clock.time() + step))
            now = self.clock.time()
            if self.session.last_turn_seq != seen or not self.queen.may_stall:
                seen, since = self.session.last_turn_seq, now  # progress, or nothing to watch
            elif now - since >= self.stale_seconds:
                log.warning("session %s: the queen's turn produced no event for %g s; "
                            "failing it as stale", self.session.id, now - since)
                self._failing = True
                try:
                    await self.queen.fail_stale(self.stale_seconds)
                except Exception:  # the watchdog's task boundary: log it, keep watching
                    log.exception("session %s: failing a stale turn failed", self.session.id)
                finally:
                    self._failing = False
                seen, since = self.session.last_turn_seq, self.clock.time()
