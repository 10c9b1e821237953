"""Stopping every live session at shutdown, within the grace (for ``SessionManager``).

Sessions stop concurrently, at most ``STOP_CONCURRENCY`` at once (so they finish one after
another, not all near the end). One still stopping, or still waiting for its turn, after the
timeout (a tool that ignores cancellation, or too many sessions for the grace) is cut short:
its stop is cancelled and its log closed as it is, so every event emitted so far is stored
(a cancelled log close leaves its writer to finish); the next start resumes it as after a
crash (its open turn is closed as interrupted).

The objects of every live session are frozen (``gc.freeze``) while they stop, and unfrozen
at the end, as at the resume at start (``resume.py``): the cyclic GC's full collections
traversed all of them again and again (2.5 s of a 9 s shutdown of 10,000 sessions).
"""

from __future__ import annotations

import asyncio
import gc
import logging

from hive_server.services.journal.journal import SessionJournal
from hive_server.services.sessions.session import Session

log = logging.getLogger(__name__)
LATE_CANCEL_SECONDS = 0.5  # how long a cancelled late stop, then a late log close, is awaited
STOP_CONCURRENCY = 64  # sessions stopped at once (each stop is two thread hops)


async def stop_all(lives: list[Session], closing: list[asyncio.Task[None]],
                   timeout: float | None) -> None:
    """Stop ``lives`` (kept marked live) and await ``closing`` (closes and deletes under way),
    all within ``timeout`` seconds (see the module docstring)."""
    slots = asyncio.Semaphore(STOP_CONCURRENCY)
    stops = {asyncio.create_task(_stop(live, slots), name=f"shutdown:{live.journal.id}"): live
             for live in lives}
    tasks = [*closing, *stops]
    if not tasks:
        return
    gc.freeze()
    try:
        _, late = await asyncio.wait(tasks, timeout=timeout)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late, timeout=LATE_CANCEL_SECONDS)  # owned, not waited on
        await _cut_short([stops[task].journal for task in late & stops.keys()], timeout)
    finally:
        gc.unfreeze()


async def _stop(live: Session, slots: asyncio.Semaphore) -> None:
    try:
        async with slots:
            await live.stop("shutdown", mark_stopped=False)
    except Exception:  # one session's failure never stops the others' shutdown
        log.exception("session %s: shutdown failed", live.journal.id)


async def _cut_short(sessions: list[SessionJournal], timeout: float | None) -> None:
    """Close the logs of the sessions that did not stop within the shutdown's ``timeout``
    (waited for ``LATE_CANCEL_SECONDS`` at most: thousands of them are cut short at once when
    there are more live sessions than the grace can stop)."""
    if not sessions:
        return
    named = ", ".join(session.id for session in sessions[:5])
    log.warning("%d session(s) did not stop within %g s (%s%s); their logs are closed as "
                "they are", len(sessions), timeout, named, ", ..." if len(sessions) > 5 else "")
    closes = [asyncio.create_task(session.log.close(), name=f"log-close:{session.id}")
              for session in sessions]
    done, left = await asyncio.wait(closes, timeout=LATE_CANCEL_SECONDS)
    for task in done:
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("closing a session's log at shutdown failed", exc_info=exc)
    if left:  # the process ends within its grace; these finish or go with the event loop
        log.warning("%d session log(s) still closing after %g s", len(left),
                    LATE_CANCEL_SECONDS)
