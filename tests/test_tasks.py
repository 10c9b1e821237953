"""core/tasks.py ``cancel_and_wait``: every task has ended when it returns, a task's error is
raised, and a cancellation of the caller is never swallowed."""

from __future__ import annotations

import asyncio

import pytest

from hive_server.core.tasks import cancel_and_wait


async def _ends_slowly(release: asyncio.Event, ended: list[str], name: str) -> None:
    """Runs until cancelled, then needs ``release`` to finish its cleanup."""
    try:
        await asyncio.Event().wait()
    finally:
        await release.wait()
        ended.append(name)


async def test_returns_once_every_task_has_ended_their_cancellation_not_raised():
    release, ended = asyncio.Event(), []
    slow = asyncio.create_task(_ends_slowly(release, ended, "slow"))
    quick = asyncio.create_task(asyncio.Event().wait())
    await asyncio.sleep(0)
    waiting = asyncio.create_task(cancel_and_wait(quick, None, slow))
    for _ in range(5):
        await asyncio.sleep(0)
    assert quick.cancelled() and not waiting.done()  # the slow one is still cleaning up
    release.set()
    await waiting
    assert ended == ["slow"] and slow.done()


async def test_a_task_that_ended_with_an_error_raises_it():
    async def fails_on_cancel() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise ValueError("cleanup failed") from None

    task = asyncio.create_task(fails_on_cancel())
    await asyncio.sleep(0)
    with pytest.raises(ValueError, match="cleanup failed"):
        await cancel_and_wait(task)
    done = asyncio.create_task(asyncio.sleep(0))
    await done
    await cancel_and_wait(done)  # an ended task: nothing to do, nothing raised


async def test_a_cancelled_caller_is_cancelled_and_the_task_still_ends():
    release, ended = asyncio.Event(), []
    slow = asyncio.create_task(_ends_slowly(release, ended, "slow"))
    await asyncio.sleep(0)
    closer = asyncio.create_task(cancel_and_wait(slow))
    await asyncio.sleep(0)
    closer.cancel()  # the shutdown grace cuts the closer short
    with pytest.raises(asyncio.CancelledError):
        await closer
    assert closer.cancelled() and not slow.done()
    release.set()
    await asyncio.wait([slow])
    assert ended == ["slow"] and slow.cancelled()
