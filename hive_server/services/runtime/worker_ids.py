"""Worker ids: ``<worker>-<n>``, ``n`` counting up across a session's whole life.

One counter per session (not per colony, not per server run): after a restart it goes on from
the highest ``n`` the session's log holds (found by the rebuild, ``TurnTracker``), and a colony
unloaded and loaded again goes on too. So a ``worker:<id>`` stream names one worker in the log.
"""

from __future__ import annotations


def worker_number(worker_id: str) -> int:
    """The ``n`` of ``<worker>-<n>`` (0 when the id does not end in one)."""
    _, _, tail = worker_id.rpartition("-")
    return int(tail) if tail.isascii() and tail.isdigit() else 0


class WorkerIds:
    def __init__(self, highest_used: int = 0):
        self._last = highest_used

    def next(self, worker: str) -> str:
        self._last += 1
        return f"{worker}-{self._last}"
