"""Durable dedup of webhook deliveries: a delivery id seen before is acknowledged once,
across restarts (one append-only JSON-lines file, ``core/jsonl.py``)."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Protocol

import orjson

from hive_server.core.clock import Clock, SystemClock
from hive_server.core.files import write_atomic
from hive_server.core.jsonl import append_line, read_records


def delivery_hash(agent_id: str, trigger_id: str, delivery_id: str) -> str:
    return hashlib.sha256(orjson.dumps([agent_id, trigger_id, delivery_id])).hexdigest()[:32]


class DeliveryRecords(Protocol):
    """The delivery ids seen: ``DeliveryStore`` (a file), ``deliveries_redis.RedisDeliveryStore``
    (Redis, shared by the nodes)."""

    async def record(self, agent_id: str, trigger_id: str, delivery_id: str) -> bool: ...

    async def forget(self, agent_id: str, trigger_id: str, delivery_id: str) -> None: ...


class DeliveryStore:
    """Remembers delivery ids so a repeated delivery is acknowledged once, across restarts.

    One append-only ``deliveries.jsonl`` under ``root`` holds ``{"k": <hash>, "t": <time>}``
    lines; the key is a SHA-256 of (agent_id, trigger_id, delivery_id), so untrusted ids never
    reach a path. Ids are kept ``retention_seconds`` (default 7 days, far beyond the 5-minute
    timestamp tolerance of Standard Webhooks) and at most ``max_entries`` (oldest dropped
    first). The file is compacted when it holds twice as many lines as live entries.
    """

    FILENAME = "deliveries.jsonl"

    def __init__(
        self,
        root: Path,
        *,
        clock: Clock | None = None,
        retention_seconds: float = 7 * 86400,
        max_entries: int = 100_000,
    ):
        self._path = root / self.FILENAME
        self._clock = clock or SystemClock()
        self._retention = retention_seconds
        self._max_entries = max_entries
        self._seen: dict[str, float] | None = None
        self._lines = 0
        self._lock = asyncio.Lock()

    async def record(self, agent_id: str, trigger_id: str, delivery_id: str) -> bool:
        """True if the delivery is new (now durably recorded), False for a duplicate."""
        key = delivery_hash(agent_id, trigger_id, delivery_id)
        async with self._lock:
            now = self._clock.time()
            seen = await self._load(now)
            self._expire(seen, now)
            if key in seen:
                return False
            line = orjson.dumps({"k": key, "t": now}) + b"\n"
            await asyncio.to_thread(append_line, self._path, line)
            seen[key] = now
            self._lines += 1
            if self._lines > 2 * len(seen) + 1024:
                await self._compact(seen)
            return True

    async def forget(self, agent_id: str, trigger_id: str, delivery_id: str) -> None:
        """Undo ``record`` for a delivery that could not be accepted after all (so the
        sender's retry is not mistaken for a duplicate). Durable (a tombstone line)."""
        key = delivery_hash(agent_id, trigger_id, delivery_id)
        async with self._lock:
            seen = await self._load(self._clock.time())
            if seen.pop(key, None) is None:
                return
            line = orjson.dumps({"k": key, "t": self._clock.time(), "forget": True}) + b"\n"
            await asyncio.to_thread(append_line, self._path, line)
            self._lines += 1

    async def _load(self, now: float) -> dict[str, float]:
        if self._seen is not None:
            return self._seen
        records, damaged = await asyncio.to_thread(read_records, self._path)
        seen: dict[str, float] = {}
        for record in records:
            key, at = record.get("k"), record.get("t")
            if isinstance(key, str) and record.get("forget") is True:
                seen.pop(key, None)
            elif isinstance(key, str) and isinstance(at, int | float):
                seen[key] = float(at)
        self._seen, self._lines = seen, len(records)
        self._expire(seen, now)
        if damaged or len(seen) < len(records):
            await self._compact(seen)
        return seen

    def _expire(self, seen: dict[str, float], now: float) -> None:
        cutoff = now - self._retention
        while seen:
            oldest = next(iter(seen))
            if seen[oldest] >= cutoff and len(seen) <= self._max_entries:
                break
            del seen[oldest]

    async def _compact(self, seen: dict[str, float]) -> None:
        data = b"".join(orjson.dumps({"k": k, "t": t}) + b"\n" for k, t in seen.items())
        await asyncio.to_thread(write_atomic, self._path, data)
        self._lines = len(seen)
