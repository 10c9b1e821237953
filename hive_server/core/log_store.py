"""``LogStore``: what a live session's event log offers its journal, the readers and the routes,
whichever backend holds it: ``EventLog`` (``events.jsonl``, ``core/eventlog.py``) satisfies it
unchanged, ``RedisEventLog`` (a Redis Stream, ``core/eventlog_redis.py``) implements it.

How a log is opened is the backend's own (``EventLog.open``/``start``, ``RedisEventLog.open``);
both report an ``OpenInfo``. Every other use goes through this surface:

- ``append(event)``: synchronous, so call order is seq order; ``event.seq`` must be
  ``last_seq + 1`` (``ValueError`` otherwise: a gap or a duplicate is refused, never stored).
  The future resolves once the event is stored under the durability policy, or fails with the
  backend's error; ``RuntimeError`` at once when the log failed earlier or is not open.
- ``flush()``: every event appended so far is readable.
- reads see the events appended before the call: ``read_after``, ``iter_after`` and
  ``iter_lines_after`` (the log's own line bytes, ``Line``), ``read_tail``.
- ``quiet()``: a hint that no appends are expected for a while; ``close()``: store what is
  queued, release the backend's resources; idempotent.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Protocol

from hive_server.core.eventlog_lines import Line
from hive_server.models.events import Event


class LogStore(Protocol):
    """One session's append-only event log. See the module docstring."""

    @property
    def last_seq(self) -> int: ...

    def append(self, event: Event) -> asyncio.Future[None]: ...

    def quiet(self) -> None: ...

    async def flush(self) -> None: ...

    async def close(self) -> None: ...

    async def read_after(self, after_seq: int, limit: int | None = None) -> list[Event]: ...

    def iter_after(self, after_seq: int, chunk: int = 1000) -> AsyncIterator[list[Event]]: ...

    def iter_lines_after(self, after_seq: int,
                         chunk: int = 1000) -> AsyncIterator[list[Line]]: ...

    async def read_tail(self, limit: int, before_seq: int | None = None) -> list[Event]: ...
