"""What the event log backends (``EventLog``, ``RedisEventLog``) share about the futures
they hand out: settling them, and the ``flush`` callers waiting for a seq to be stored."""

from __future__ import annotations

import asyncio


def settle(futures: list[asyncio.Future[None]], exc: BaseException | None = None) -> int:
    """Resolve the futures not done, or fail them with ``exc`` (each marked retrieved: an
    emit nobody awaits); how many were not done."""
    pending = [future for future in futures if not future.done()]
    for future in pending:
        if exc is None:
            future.set_result(None)
        else:
            future.set_exception(exc)
            future.exception()
    return len(pending)


class Flushers:
    """``flush`` callers, each waiting until the log has stored up to its target seq."""

    __slots__ = ("_waiting",)

    def __init__(self) -> None:
        self._waiting: list[tuple[int, asyncio.Future[None]]] = []

    async def until(self, target: int, stored_seq: int, error: BaseException | None,
                    name: object) -> None:
        """A log's ``flush``: return once ``target`` is stored (at once when ``stored_seq``
        reached it); RuntimeError when the log ``name`` failed (``error``) first."""
        if stored_seq >= target:
            return
        if error is not None:
            raise RuntimeError(f"event log {name} failed") from error
        await self.wait_for(target)

    def wait_for(self, target: int) -> asyncio.Future[None]:
        """A future resolved once ``release`` is told a seq >= ``target`` is stored."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((target, future))
        return future

    def release(self, stored_seq: int) -> None:
        """Resolve the callers whose target is stored."""
        if not self._waiting:
            return
        done = [future for target, future in self._waiting if target <= stored_seq]
        self._waiting = [(t, f) for t, f in self._waiting if t > stored_seq]
        settle(done)

    def take(self) -> list[asyncio.Future[None]]:
        """Every waiting future, no longer held (to fail them: the log stopped)."""
        futures = [future for _, future in self._waiting]
        self._waiting = []
        return futures
