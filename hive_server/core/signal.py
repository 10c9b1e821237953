"""A change signal: many waiters, one ``notify`` wakes them all, nothing is queued.

A waiter that was busy while several changes happened wakes once and reads the state as it is
then; that is what a "current state" feed wants (it never needs the changes in between).
"""

from __future__ import annotations

import asyncio


class ChangeSignal:
    def __init__(self) -> None:
        self.version = 0
        self._event = asyncio.Event()

    def notify(self) -> None:
        self.version += 1
        self._event.set()
        self._event = asyncio.Event()

    async def wait_past(self, version: int) -> int:
        """Wait until a change after ``version``; the version now."""
        while self.version <= version:
            await self._event.wait()
        return self.version
