"""The bounded backoff of a node's long-running Redis loops (the feed readers of
``redis_feed.py``, the command loop of ``redis_forward.py``): when Redis fails them (connection
lost, killed, timed out, refused), they wait and go on from where they were.

``Backoff.failed`` waits ``first`` seconds after the first failure of an outage, twice as long
after each next one, ``cap`` at most; ``succeeded`` ends the outage. One warning is logged per
outage (at its first failure), and one line when the loop is back: a Redis that stays down
for an hour leaves two lines, not thousands.

``honour_cancel``: such a loop calls it after each Redis call. On Python 3.11 a cancel that
lands while redis-py writes a command to its socket can be lost (its ``asyncio.wait_for``
around the write returns the write's result when that completes as the cancel arrives, CPython
gh-86296): the command then runs to its end (an XREAD BLOCK: its block time) and the loop
stops at its next turn.
"""

from __future__ import annotations

import asyncio
import logging

from redis.exceptions import RedisError

# What a loop survives: anything Redis or the socket can raise (a ResponseError too: a NOAUTH
# after a password change, a LOADING Redis). A bug of ours is not in this list: it ends the loop.
RETRIED = (RedisError, OSError)


class Backoff:
    """The waits of one loop's outages. See the module docstring."""

    def __init__(self, name: str, logger: logging.Logger, *, first: float = 0.05,
                 cap: float = 2.0):
        if not 0 < first <= cap:
            raise ValueError(f"backoff needs 0 < first <= cap, not {first}, {cap}")
        self.name = name
        self._logger = logger
        self._first = first
        self._cap = cap
        self.failures = 0  # of the outage going on (0: none)
        self.outages = 0

    @property
    def next_delay(self) -> float:
        """How long ``failed`` waits now."""
        return min(self._cap, self._first * 2 ** min(self.failures, 30))

    async def failed(self, exc: BaseException) -> None:
        """Count a failure (one warning per outage), then wait the next delay."""
        if self.failures == 0:
            self.outages += 1
            self._logger.warning("%s: Redis failed (%r); retrying every %.2f-%.2f s until it "
                                 "answers", self.name, exc, self._first, self._cap)
        delay = self.next_delay
        self.failures += 1
        await asyncio.sleep(delay)

    def succeeded(self) -> None:
        """Redis answered: the outage, if any, is over."""
        if self.failures:
            self._logger.warning("%s: Redis answers again after %d failed attempt(s)",
                                 self.name, self.failures)
            self.failures = 0


def honour_cancel() -> None:
    """Raise ``CancelledError`` when the running task was cancelled and the request was lost
    on the way (see the module docstring)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
