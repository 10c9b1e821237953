"""The one owner of every timer task.

``TriggerScheduler`` runs one asyncio task per armed key. Each task loops: sleep (on the
injected ``Clock``) until the next tick, await ``on_fire``, compute the following tick.

Contract for callers:

* ``on_fire`` calls for one key never overlap: the next sleep starts only after ``on_fire``
  returned, and the ``tick`` values it sees strictly increase. The callback persists
  ``TriggerState.last_tick`` itself (``on_missed`` persists ``info.last`` likewise).
* Catch-up on ``arm(..., last_tick=t)``: the ticks in ``(t, now]`` were missed while not
  armed (server down). ``on_missed`` gets one report; with ``misfire="fire_once"``
  ``on_fire`` then runs once for the latest missed tick (``FireInfo.missed`` > 0); with
  ``"skip"`` nothing fires. The schedule then continues with the first tick after now.
* Waking late: if more than one tick is due when a task wakes (event loop stalled, machine
  suspended, a callback slower than the interval), the due ticks are handled the same way as
  an outage, so a backlog is never replayed tick by tick.
* A callback that raises is logged with its traceback and the schedule goes on; a tick is
  always later than the previous one, so nothing can spin. If the next tick cannot be
  computed at all the timer stops (logged) and ``next_fire_at`` returns None.
* ``disarm``/``rearm`` cancel a callback that is in progress — except when called from that
  key's own callback, where the running callback finishes and the old loop then ends.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from hive_server.core.clock import Clock
from hive_server.core.stats import LAG_BUCKETS, Histogram
from hive_server.errors.triggers import SchedulerClosed, TimerArmed, TimerChanged, TimerNotArmed
from hive_server.models.triggers import MisfirePolicy, TimerConfig
from hive_server.services.triggers.schedule import MissedTicks, missed_ticks, next_fire

log = logging.getLogger(__name__)

MISSED_CAP = 1000
"""Cron ticks counted at most in one missed report (``MissedInfo.capped`` when reached)."""


@dataclass(frozen=True, slots=True)
class FireInfo:
    key: str
    tick: float
    """The scheduled time (epoch seconds) this fire is for."""
    missed: int = 0
    """0 for an on-time fire; for a catch-up fire, how many missed ticks it stands in for."""


@dataclass(frozen=True, slots=True)
class MissedInfo:
    key: str
    count: int
    first: float
    last: float
    policy: MisfirePolicy
    fired: bool
    """True when ``on_fire`` follows for ``last`` (policy ``fire_once``)."""
    capped: bool
    """True when ``count`` hit the counting cap (cron only): at least that many were missed."""


OnFire = Callable[[FireInfo], Awaitable[None]]
OnMissed = Callable[[MissedInfo], Awaitable[None]]
_Info = TypeVar("_Info", FireInfo, MissedInfo)


@dataclass(slots=True, eq=False)
class _Timer:
    key: str
    cfg: TimerConfig
    anchor: float
    on_fire: OnFire
    on_missed: OnMissed | None
    cursor: float
    """Every tick <= cursor is done (fired, skipped, or before arming)."""
    next_at: float | None = None
    task: asyncio.Task[None] | None = None
    stopped: bool = False


class TriggerScheduler:
    """Arms, re-arms and disarms timer tasks; ``close()`` stops them all."""

    def __init__(self, clock: Clock):
        self._clock = clock
        self._timers: dict[str, _Timer] = {}
        self._retiring: set[asyncio.Task[None]] = set()
        self._closed = False
        self.lag = Histogram(LAG_BUCKETS)  # seconds from each fire's tick to its dispatch

    def __len__(self) -> int:
        return len(self._timers)

    def __contains__(self, key: object) -> bool:
        return key in self._timers

    @property
    def armed_keys(self) -> frozenset[str]:
        return frozenset(self._timers)

    def next_fire_at(self, key: str) -> float | None:
        timer = self._timers.get(key)
        return None if timer is None else timer.next_at

    def arm(
        self,
        key: str,
        cfg: TimerConfig,
        *,
        anchor: float,
        last_tick: float | None,
        on_fire: OnFire,
        on_missed: OnMissed | None = None,
    ) -> float:
        """Start the timer for ``key``; returns its next fire time. ``Conflict`` if armed."""
        if self._closed:
            raise SchedulerClosed()
        if key in self._timers:
            raise TimerArmed(key)
        now = self._clock.time()
        backlog = None
        if last_tick is not None:
            backlog = missed_ticks(cfg, last_tick, now, anchor, cap=MISSED_CAP)
        cursor = now if last_tick is None else max(now, last_tick)
        timer = _Timer(key, cfg, anchor, on_fire, on_missed, cursor)
        timer.next_at = next_fire(cfg, cursor, anchor)
        self._start(timer, backlog, now)
        return timer.next_at

    async def rearm(self, key: str, cfg: TimerConfig, *, anchor: float | None = None) -> float:
        """Swap the config of an armed timer (PATCH). No catch-up; returns the next fire time.

        ``anchor`` defaults to the old one. Ticks <= the last handled tick never fire again.
        """
        old = self._timers.get(key)
        if old is None:
            raise TimerNotArmed(key)
        new_anchor = old.anchor if anchor is None else anchor
        cursor = max(self._clock.time(), old.cursor)
        next_at = next_fire(cfg, cursor, new_anchor)  # fails before anything changes
        del self._timers[key]
        await self._stop(old)
        if key in self._timers or self._closed:
            raise TimerChanged(key)
        timer = _Timer(key, cfg, new_anchor, old.on_fire, old.on_missed, cursor, next_at)
        self._start(timer, None, cursor)
        return next_at

    async def disarm(self, key: str) -> bool:
        """Stop the timer for ``key``; False if it was not armed."""
        timer = self._timers.pop(key, None)
        if timer is None:
            return False
        await self._stop(timer)
        return True

    async def close(self) -> None:
        """Cancel and await every timer task. Arming afterwards raises ``Unavailable``."""
        self._closed = True
        timers = list(self._timers.values())
        self._timers.clear()
        for timer in timers:
            await self._stop(timer)
        current = asyncio.current_task()
        retiring = [task for task in self._retiring if task is not current]
        for task in retiring:
            task.cancel()
        if retiring:
            await asyncio.wait(retiring)

    def _start(self, timer: _Timer, backlog: MissedTicks | None, until: float) -> None:
        """``backlog``: the ticks missed up to ``until`` (the clock when it was counted)."""
        timer.task = asyncio.create_task(self._run(timer, backlog, until),
                                         name=f"timer:{timer.key}")
        self._timers[timer.key] = timer

    async def _stop(self, timer: _Timer) -> None:
        timer.stopped = True
        task = timer.task
        if task is None or task.done():
            return
        if task is asyncio.current_task():
            # Called from this timer's own callback: let the callback finish, end the loop.
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)
            return
        task.cancel()
        await asyncio.wait([task])

    async def _run(self, timer: _Timer, backlog: MissedTicks | None, until: float) -> None:
        try:
            if backlog is not None and backlog.count > 0:
                # from ``until``, not now: a tick due since the backlog was counted is next
                await self._catch_up(timer, backlog, until)
            while timer.next_at is not None and not timer.stopped:
                await self._clock.sleep_until(timer.next_at)
                await self._wake(timer)
        except Exception:
            log.exception("timer %s stopped: its schedule could not be computed", timer.key)
            timer.next_at = None

    async def _wake(self, timer: _Timer) -> None:
        tick = timer.next_at
        if tick is None:
            return
        now = self._clock.time()
        following = next_fire(timer.cfg, tick, timer.anchor)
        if following <= tick:
            raise RuntimeError(f"schedule did not advance past {tick}")
        if following > now:
            timer.cursor, timer.next_at = tick, following
            await self._fire(timer, FireInfo(timer.key, tick), now)
            return
        due = missed_ticks(timer.cfg, timer.cursor, now, timer.anchor, cap=MISSED_CAP)
        await self._catch_up(timer, due, now)

    async def _catch_up(self, timer: _Timer, due: MissedTicks, now: float) -> None:
        """Report ticks in (cursor, now] as missed and apply the misfire policy."""
        if due.first is None or due.last is None:
            return
        policy = timer.cfg.misfire
        capped = timer.cfg.cron is not None and due.count >= MISSED_CAP
        fire = policy == "fire_once"
        info = MissedInfo(timer.key, due.count, due.first, due.last, policy, fire, capped)
        timer.cursor = max(timer.cursor, due.last)
        timer.next_at = next_fire(timer.cfg, max(timer.cursor, now), timer.anchor)
        if timer.on_missed is not None:
            await self._call(timer, timer.on_missed, info)
        if fire and not timer.stopped:
            await self._fire(timer, FireInfo(timer.key, due.last, due.count), self._clock.time())

    async def _fire(self, timer: _Timer, info: FireInfo, now: float) -> None:
        """Observe how late the fire is dispatched (``lag``), then call ``on_fire``."""
        self.lag.observe(max(0.0, now - info.tick))
        await self._call(timer, timer.on_fire, info)

    async def _call(
        self, timer: _Timer, callback: Callable[[_Info], Awaitable[None]], info: _Info
    ) -> None:
        try:
            await callback(info)
        except Exception:
            log.exception("timer %s: callback %r failed", timer.key, callback)
