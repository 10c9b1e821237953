"""Today's spend (UTC day) of every session together and of each agent, for the server-wide
and per-agent limits.

A session's own spend is its accounting (``services/journal/accounting.py``); the accounting has no
day, so the day's sums are kept here, fed with each settled model call (its tokens and its
cost from the one price table) and stored in ``HIVE_HOME/budget/spend.json`` so a restart
keeps the day's spend. Writes never wait on the caller: one owned writer task writes the
latest state at most ``WRITE_SECONDS`` after a change (one write for many calls), at once when
a session stops or the app closes (``flush``). ``Ledger`` is the surface the budgets use; with
``--redis`` the day's spend is the cluster's (``ledger_redis.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import orjson
from pydantic import BaseModel, Field, ValidationError

from hive_server.core.clock import Clock
from hive_server.core.files import write_atomic

log = logging.getLogger(__name__)
FILENAME = "spend.json"
WRITE_SECONDS = 2.0  # spend.json follows the calls at most this late (at once on a flush)


@dataclasses.dataclass(slots=True, frozen=True)
class Spend:
    tokens: int = 0
    cost_usd: float = 0.0

    def __add__(self, other: Spend) -> Spend:
        return Spend(self.tokens + other.tokens, round(self.cost_usd + other.cost_usd, 8))

    def __sub__(self, other: Spend) -> Spend:
        return Spend(self.tokens - other.tokens, round(self.cost_usd - other.cost_usd, 8))

    def of(self, kind: str) -> float:
        return self.tokens if kind == "tokens" else self.cost_usd


class DaySpend(BaseModel):
    """What ``spend.json`` holds."""

    day: str
    tokens: int = 0
    cost_usd: float = 0.0
    agents: dict[str, tuple[int, float]] = Field(default_factory=dict)


def utc_day(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).date().isoformat()


class Ledger(Protocol):
    """Today's spend (UTC day) in all and by agent. The reads and ``add`` are synchronous and
    cheap (the gate of every model call); writes never wait on the caller."""

    @property
    def day(self) -> str: ...

    def total(self) -> Spend: ...

    def agent(self, agent_id: str) -> Spend: ...

    def add(self, agent_id: str | None, spend: Spend) -> None: ...

    async def load(self) -> None: ...

    async def flush(self) -> None: ...

    async def close(self) -> None: ...


class SpendLedger:
    """Today's spend, by agent and in all; ``close`` writes the last state."""

    def __init__(self, folder: Path, clock: Clock):
        self.path = folder / FILENAME
        self.clock = clock
        self.state = DaySpend(day=utc_day(clock.time()))
        self._dirty = False
        self._writer: asyncio.Task[None] | None = None
        self._due = asyncio.Event()  # set by flush: write now

    async def load(self) -> None:
        """Read today's spend (another day's file, or an unreadable one, starts at 0)."""
        try:
            raw = await asyncio.to_thread(self.path.read_bytes)
            stored = DaySpend.model_validate(orjson.loads(raw))
        except FileNotFoundError:
            return
        except (OSError, orjson.JSONDecodeError, ValidationError) as exc:
            log.warning("%s unreadable (%s): today's spend starts at 0", self.path, exc)
            return
        if stored.day == self.state.day:
            self.state = stored

    @property
    def day(self) -> str:
        self._roll()
        return self.state.day

    def total(self) -> Spend:
        self._roll()
        return Spend(self.state.tokens, self.state.cost_usd)

    def agent(self, agent_id: str) -> Spend:
        self._roll()
        tokens, cost = self.state.agents.get(agent_id, (0, 0.0))
        return Spend(tokens, cost)

    def add(self, agent_id: str | None, spend: Spend) -> None:
        self._roll()
        state = self.state
        state.tokens += spend.tokens
        state.cost_usd = round(state.cost_usd + spend.cost_usd, 8)
        if agent_id is not None:
            now = self.agent(agent_id) + spend
            state.agents[agent_id] = (now.tokens, now.cost_usd)
        self._dirty = True
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_soon(), name="spend-ledger")

    def _roll(self) -> None:
        today = utc_day(self.clock.time())
        if today != self.state.day:
            self.state = DaySpend(day=today)

    async def _write_soon(self) -> None:
        """Write at most ``WRITE_SECONDS`` after the first change (at once when flushed):
        one write for many model calls."""
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._due.wait(), WRITE_SECONDS)
            while self._dirty:
                self._dirty = False
                payload = self.state.model_dump_json().encode()
                await asyncio.to_thread(write_atomic, self.path, payload)
        except OSError:
            self._dirty = True  # the next change, or the close, tries again
            log.exception("writing %s failed", self.path)
        finally:
            self._writer = None
            self._due.clear()

    async def flush(self) -> None:
        """Write what was added so far now (a session's stop waits for it)."""
        if self._writer is not None:
            self._due.set()
            await asyncio.shield(self._writer)

    async def close(self) -> None:
        await self.flush()
        if self._dirty:  # a write failed: try once more
            self._writer = asyncio.create_task(self._write_soon(), name="spend-ledger")
            await self.flush()
