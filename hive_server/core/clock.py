"""A swappable clock so timers and tests agree on time without real waiting.

``Clock.time()`` is wall-clock epoch seconds (what cron and ``next_fire_at`` need);
``Clock.sleep_until(t)`` waits until ``time() >= t``. ``FakeClock`` moves only when a test
calls ``advance``; sleepers wake in deadline order.

Services take the app's ``Clock`` (``keys.CLOCK``), never a bare ``now`` function or a
``time.time`` default: timers, trigger states, budget days, webhook timestamps and dedup, agent
``loaded_at``, worker runs and ``get_time`` read it. (Event timestamps and a session's
``loaded_at``/uptime are still the journal's own system-clock reads.) Short in-process intervals
(the text-delta throttle, a model turn's latency, the event log's batch window) use the event
loop's monotonic time: a wall clock can jump, and a fake one would stop them. What needs a
monotonic clock and a fake one in tests (the Redis lease keeper) takes a ``MonotonicClock``.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Protocol


class Clock(Protocol):
    def time(self) -> float: ...

    async def sleep_until(self, deadline: float) -> None: ...


class SystemClock:
    """Wall clock. Sleeps in slices of at most 60 s so clock jumps are noticed."""

    def time(self) -> float:
        return time.time()

    async def sleep_until(self, deadline: float) -> None:
        while (remaining := deadline - time.time()) > 0:  # noqa: ASYNC110 (a timer, not a poll)
            await asyncio.sleep(min(remaining, 60.0))


class MonotonicClock:
    """The process's monotonic clock (``time.monotonic``), for intervals that must not follow
    wall-clock jumps yet be swappable for a ``FakeClock`` in tests (the lease keeper)."""

    def time(self) -> float:
        return time.monotonic()

    async def sleep_until(self, deadline: float) -> None:
        await asyncio.sleep(max(0.0, deadline - time.monotonic()))


class FakeClock:
    """A clock that only moves when told to. ``advance`` wakes due sleepers in order."""

    def __init__(self, start: float = 1_800_000_000.0):
        self._now = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._counter = itertools.count()

    def time(self) -> float:
        return self._now

    async def sleep_until(self, deadline: float) -> None:
        if deadline <= self._now:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (deadline, next(self._counter), fut))
        await fut

    @property
    def pending(self) -> int:
        """How many sleepers are waiting (cancelled ones excluded)."""
        return sum(1 for _, _, f in self._sleepers if not f.done())

    async def advance(self, seconds: float) -> None:
        """Move time forward, waking each due sleeper at its own deadline, in order.

        Tasks that are ready to run (e.g. just created) run first, so a sleep they are about
        to start counts from the current time, as it would with a real clock.
        """
        await _settle()
        target = self._now + seconds
        while self._sleepers and self._sleepers[0][0] <= target:
            deadline, _, fut = heapq.heappop(self._sleepers)
            if fut.done():
                continue
            self._now = max(self._now, deadline)
            fut.set_result(None)
            await _settle()
        self._now = target
        await _settle()

    def step(self, seconds: float) -> None:
        """Move time forward without waking anyone or yielding: the time a busy event loop
        takes between two of its tasks (a task created now starts ``seconds`` later)."""
        self._now += seconds

    async def jump(self, seconds: float) -> None:
        """Set the wall clock by ``seconds`` as a system clock change would: forward wakes
        the due sleepers (like ``advance``), backward wakes nobody."""
        if seconds >= 0:
            await self.advance(seconds)
            return
        self._now += seconds
        await _settle()


async def _settle(rounds: int = 20) -> None:
    """Let woken tasks run until they block again."""
    for _ in range(rounds):
        await asyncio.sleep(0)
