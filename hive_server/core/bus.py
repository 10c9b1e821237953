"""Per-session pub/sub. Publishing never waits on a subscriber.

Each subscriber has a bounded buffer. When a subscriber's buffer is full the subscriber is
disconnected (``end_reason == "lagged"``): it still receives everything it had buffered, then
its iterator ends, so it never silently skips an event; it can resume from its last seq.
``subscribe`` returns the ``Subscription``, which is also the handle that unsubscribes.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable

from hive_server.core.stats import BUS_DROPS
from hive_server.models.events import Event

log = logging.getLogger(__name__)


class Subscription:
    """One subscriber's bounded buffer. Iterate it; ``close()`` unsubscribes."""

    __slots__ = ("_detach", "_items", "_maxsize", "_waiter", "end_reason", "types")

    def __init__(self, detach: Callable[[Subscription], None], maxsize: int,
                 types: frozenset[str] | None):
        self._detach = detach
        self._items: deque[Event] = deque()
        self._maxsize = maxsize
        self._waiter: asyncio.Future[None] | None = None
        self.end_reason: str | None = None
        self.types = types

    def _offer(self, event: Event) -> bool:
        """Buffer ``event``; False when the buffer is full (the caller drops us)."""
        if self.types is not None and event.type not in self.types:
            return True
        if len(self._items) >= self._maxsize:
            return False
        self._items.append(event)
        waiter = self._waiter  # ``_wake`` inlined: this runs once per event per subscriber
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        return True

    def _end(self, reason: str) -> None:
        if self.end_reason is None:
            self.end_reason = reason
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    @property
    def pending(self) -> int:
        return len(self._items)

    async def get(self) -> Event | None:
        """The next event, or None once the subscription has ended and is drained."""
        return self._items.popleft() if await self._ready() else None

    async def get_all(self) -> list[Event]:
        """Every buffered event (at least one), or [] once the subscription has ended and is
        drained: a writer takes what piled up while it waited in one go."""
        if not await self._ready():
            return []
        items = list(self._items)
        self._items.clear()
        return items

    async def _ready(self) -> bool:
        """Wait until an event is buffered (True) or the subscription has ended (False)."""
        while not self._items:
            if self.end_reason is not None:
                return False
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return True

    def get_nowait(self) -> Event | None:
        return self._items.popleft() if self._items else None

    def close(self) -> None:
        """Unsubscribe. Idempotent."""
        self._detach(self)
        self._end("closed")

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Event]:
        while (event := await self.get()) is not None:
            yield event


class EventBus:
    """Fan-out of one session's events to its subscribers."""

    def __init__(self, name: str = "", default_maxsize: int = 2048):
        self.name = name
        self.default_maxsize = default_maxsize
        self._subs: set[Subscription] = set()
        self.dropped_subscribers = 0
        self.closed = False

    def subscribe(self, maxsize: int | None = None,
                  types: frozenset[str] | None = None) -> Subscription:
        sub = Subscription(self._subs.discard, maxsize or self.default_maxsize, types)
        if self.closed:
            sub._end("bus_closed")
        else:
            self._subs.add(sub)
        return sub

    @property
    def subscriber_count(self) -> int:
        return len(self._subs)

    def publish(self, event: Event) -> None:
        """Offer ``event`` to every subscriber without waiting; drop the ones that lag."""
        lagging = [sub for sub in self._subs if not sub._offer(event)]
        for sub in lagging:
            self._subs.discard(sub)
            sub._end("lagged")
            self.dropped_subscribers += 1
            BUS_DROPS.add()
            log.warning("bus %s: subscriber dropped at seq %d (buffer full, %d dropped so far)",
                        self.name, event.seq, self.dropped_subscribers)

    def close(self, reason: str = "bus_closed") -> None:
        """End every subscription (their buffered events are still delivered)."""
        self.closed = True
        subs, self._subs = self._subs, set()
        for sub in subs:
            sub._end(reason)
