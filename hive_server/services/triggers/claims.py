"""Fire claims (mixed into ``SessionTriggers``): with several nodes, a timer tick fires only
after the session claimed it, so that it fires once cluster-wide (issue 14).

``fire_claim(trigger_id, tick) -> bool`` (``tick``: the tick's scheduled epoch seconds) is
asked before a scheduled tick fires: an on-time tick and a catch-up tick alike, never a manual
run nor a webhook delivery. None (file mode, the default) fires as before. The Redis backend
sets it to ``claims_redis.redis_fire_claim`` once the session holds its lease.

- True: this owner fires the tick.
- False: another owner fired that tick (or is firing it). Nothing is fired nor logged as an
  event (a debug log line); the schedule goes on with the next tick, the trigger's state is
  left as it is (the owner that fired stores its own).
- A claim that fails (Redis unreachable, a bug of the claimer): the tick is not fired, as
  firing it might fire it twice; a warning is logged, the card's last outcome is ``failed``
  with ``last_error`` "tick <time> not fired: its fire claim failed (...)" (stored with the
  next save), and the schedule goes on: the timer task never ends because of it.

A node that lost the session's lease fires nothing more: ``halt`` (called by the manager as it
learns of the loss) stops every timer callback at once, and a timer callback whose event is
refused by the fenced log (``LogFenced``, or the log failed by it: another node took the session
over before this one knew) halts them too, in one log line instead of a traceback per tick.

A tick is named the same on every node: ``tick_text`` renders its epoch seconds as a UTC ISO
time to the millisecond. Interval ticks sit on ``anchor + k * interval`` with the anchor from
the saved state, cron ticks on the wall clock, so a node resuming the session from the same
saved state computes the old owner's ticks.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

from hive_server.errors.backend import LogFenced
from hive_server.errors.sessions import LogUnavailable
from hive_server.services.triggers.cards import Trigger
from hive_server.services.triggers.host import TriggerHost

log = logging.getLogger(__name__)
FireClaim = Callable[[str, float], Awaitable[bool]]
"""``(trigger id, tick epoch seconds) -> True`` when this owner may fire the tick."""


def tick_text(tick: float) -> str:
    """A tick's name in a claim: its UTC ISO time to the millisecond (the same on every
    node for the same scheduled time)."""
    return datetime.fromtimestamp(tick, UTC).isoformat(timespec="milliseconds")


class FireClaims(TriggerHost):
    """Needs only ``TriggerHost``; ``fire_claim`` may be set after construction."""

    fire_claim: FireClaim | None = None
    _stopped: bool

    def halt(self) -> None:
        """Fire nothing more, at once: the session's lease is lost (another node runs it).
        Timer callbacks return without firing; ``stop`` disarms the timers later."""
        self._stopped = True

    @contextlib.asynccontextmanager
    async def _fenced(self) -> AsyncIterator[None]:
        """Around a timer callback: a ``LogFenced`` halts the triggers (see the module
        docstring) instead of reaching the scheduler's traceback."""
        try:
            yield
        except (LogFenced, LogUnavailable) as exc:
            if not fenced(exc):  # the log failed otherwise (a disk error): the traceback
                raise
            log.info("session %s: its log is fenced (%s): its triggers fire nothing more",
                     self.session.id, exc.message)
            self.halt()

    async def _claimed(self, trigger: Trigger, tick: float) -> bool:
        """Whether this owner fires ``tick`` of ``trigger`` (see the module docstring)."""
        if self.fire_claim is None:
            return True
        trigger_id = trigger.spec.id
        try:
            if await self.fire_claim(trigger_id, tick):
                return True
        except Exception as exc:  # the trigger tick's boundary: not fired, the timer goes on
            log.warning("session %s: trigger %s: tick %s not fired: its fire claim failed",
                        self.session.id, trigger_id, tick_text(tick), exc_info=True)
            self._outcome(trigger, "failed",
                          f"tick {tick_text(tick)} not fired: its fire claim failed ({exc})")
            return False
        log.debug("session %s: trigger %s: tick %s was claimed by another owner",
                  self.session.id, trigger_id, tick_text(tick))
        return False


def fenced(exc: BaseException | None) -> bool:
    """True when ``exc`` is, or was caused by, a ``LogFenced`` (a log that failed on it
    answers ``LogUnavailable`` from a ``RuntimeError`` from it)."""
    while exc is not None:
        if isinstance(exc, LogFenced):
            return True
        exc = exc.__cause__
    return False
