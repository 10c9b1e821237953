"""Counters that the storage and bus code update and ``GET /metrics`` reads at scrape time.

An update is one integer add: no label lookup and no registry on the event loop's path.
``web/metrics.py`` turns these into Prometheus families when it is scraped. The process-wide
ones (appends, fsyncs, bus drops) count for every app in the process. In a server there is
one app. In tests, compare values before and after.
"""

from __future__ import annotations

import os
import threading
import time
from bisect import bisect_left
from collections.abc import Sequence

FSYNC_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                 0.25, 0.5, 1.0)
LAG_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 60.0, 300.0)
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class Counter:
    """A monotonic count (``add`` from the event loop; one int add)."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0

    def add(self, n: int = 1) -> None:
        self.value += n


class Histogram:
    """Observations in fixed buckets (upper bounds, like Prometheus's ``le``). Safe to
    ``observe`` from worker threads (the fsyncs run in ``asyncio.to_thread``)."""

    __slots__ = ("_lock", "bounds", "counts", "total")

    def __init__(self, bounds: Sequence[float]):
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # the last one: above every bound (+Inf)
        self.total = 0.0
        self._lock = threading.Lock()

    def observe(self, value: float) -> None:
        index = bisect_left(self.bounds, value)
        with self._lock:
            self.counts[index] += 1
            self.total += value

    def cumulative(self) -> tuple[list[tuple[str, int]], float]:
        """``([(le, count of observations <= le), ..., ("+Inf", all)], sum)``."""
        with self._lock:
            counts, total = list(self.counts), self.total
        buckets, running = [], 0
        for bound, count in zip((*map(str, self.bounds), "+Inf"), counts, strict=True):
            running += count
            buckets.append((bound, running))
        return buckets, total

    def quantile(self, q: float) -> float | None:
        """The ``q`` quantile (0 < q < 1) estimated from the buckets as Prometheus's
        ``histogram_quantile`` does (linear within the bucket holding it, from 0 for the first
        one; the largest bound when it lies above every bound); None before any observation."""
        with self._lock:
            counts = list(self.counts)
        rank, below, lower = q * sum(counts), 0, 0.0
        if not rank:
            return None
        for bound, count in zip(self.bounds, counts, strict=False):
            if below + count >= rank:
                return lower + (bound - lower) * (rank - below) / count
            below, lower = below + count, bound
        return self.bounds[-1]


EVENTS_APPENDED = Counter()
"""Events written to an ``events.jsonl`` (every session of the process)."""
FSYNC_SECONDS = Histogram(FSYNC_BUCKETS)
"""How long each ``fsync`` of an event log took."""
BUS_DROPS = Counter()
"""Bus subscribers (SSE streams, feeds) ended because they fell a whole buffer behind."""
LEASE_RENEW_SECONDS = Histogram(FSYNC_BUCKETS)
"""How long each round of the node's Redis lease renewals took (one pipeline, every lease)."""
LEASES_LOST = Counter()
"""Session leases this node gave up: taken over, lapsed, or not renewed in time."""
TAKEOVERS = Counter()
"""Sessions this node took over from a node whose lease lapsed (Redis backend)."""
FORWARD_SECONDS = Histogram(FSYNC_BUCKETS)
"""Commands forwarded to a session's owner node: from XADD to its reply (``redis_forward``)."""


def timed_fsync(fd: int) -> None:
    """``os.fsync(fd)``, its duration observed in ``FSYNC_SECONDS``."""
    started = time.perf_counter()
    os.fsync(fd)
    FSYNC_SECONDS.observe(time.perf_counter() - started)
