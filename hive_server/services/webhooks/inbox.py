"""The cold-agent inbox: webhook deliveries held for an agent's trigger while no live session
has it active, one JSON-lines file per trigger (``core/jsonl.py``)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Protocol

import orjson

from hive_server.core.jsonl import append_line, read_records, take_records
from hive_server.errors.triggers import InvalidId, NotSerialisable, WebhookInboxFull
from hive_server.models.held import HeldDelivery, HeldTrigger, HeldWebhooks
from hive_server.models.triggers import SAFE_ID_RE


def check_segment(value: str, what: str) -> str:
    if not isinstance(value, str) or not SAFE_ID_RE.match(value):
        raise InvalidId(what)
    return value


class HeldInbox(Protocol):
    """The cold-agent inbox: ``WebhookInbox`` (files), ``inbox_redis.RedisWebhookInbox``
    (Redis, shared by the nodes)."""

    async def put(self, agent_id: str, trigger_id: str, delivery: dict) -> None: ...

    async def take(self, agent_id: str, trigger_id: str) -> list[dict]: ...

    async def held(self) -> HeldWebhooks: ...


class WebhookInbox:
    """Deliveries for an agent's trigger while no live session has it active.

    ``root/inbox/<agent_id>/<trigger_id>.jsonl``, one delivery per line, fsynced on ``put``.
    ``take`` returns them in arrival order and deletes the file (durably) before returning,
    so a hand-over is at most once. A full inbox (``max_bytes``) refuses with ``Unavailable``
    so the sender retries later.
    """

    def __init__(self, root: Path, *, max_bytes: int = 16 * 1024 * 1024):
        self._root = root / "inbox"
        self._max_bytes = max_bytes
        self._lock = asyncio.Lock()

    def _path(self, agent_id: str, trigger_id: str) -> Path:
        agent = check_segment(agent_id, "agent id")
        trigger = check_segment(trigger_id, "trigger id")
        return self._root / agent / f"{trigger}.jsonl"

    async def put(self, agent_id: str, trigger_id: str, delivery: dict) -> None:
        path = self._path(agent_id, trigger_id)
        try:
            line = orjson.dumps(delivery) + b"\n"
        except TypeError as exc:
            raise NotSerialisable(exc) from None
        async with self._lock:
            stored = await asyncio.to_thread(append_line, path, line, self._max_bytes)
        if not stored:
            raise WebhookInboxFull()

    async def take(self, agent_id: str, trigger_id: str) -> list[dict]:
        path = self._path(agent_id, trigger_id)
        async with self._lock:
            return await asyncio.to_thread(take_records, path)

    async def held(self) -> HeldWebhooks:
        """Every delivery waiting in the inbox, by agent and trigger (without payloads)."""
        async with self._lock:
            found = await asyncio.to_thread(self._scan)
        held = [held_trigger(agent_id, trigger_id, records)
                for agent_id, trigger_id, records in found]
        return HeldWebhooks(held=held, total=sum(h.count for h in held))

    def _scan(self) -> list[tuple[str, str, list[dict]]]:
        if not self._root.is_dir():
            return []
        found = []
        for folder in sorted(self._root.iterdir()):
            if not folder.is_dir() or not SAFE_ID_RE.match(folder.name):
                continue
            for path in sorted(folder.glob("*.jsonl")):
                records, _ = read_records(path)
                if records and SAFE_ID_RE.match(path.stem):
                    found.append((folder.name, path.stem, records))
        return found


def held_trigger(agent_id: str, trigger_id: str, records: list[dict]) -> HeldTrigger:
    deliveries = [HeldDelivery(
        delivery_id=str(r.get("delivery_id") or ""),
        received_at=r["received_at"] if isinstance(r.get("received_at"), int) else None,
        headers={str(k): str(v) for k, v in headers.items()})
        for r in records
        for headers in [r["headers"] if isinstance(r.get("headers"), dict) else {}]]
    return HeldTrigger(agent_id=agent_id, trigger_id=trigger_id, count=len(deliveries),
                       first_received_at=deliveries[0].received_at,
                       last_received_at=deliveries[-1].received_at, deliveries=deliveries)
