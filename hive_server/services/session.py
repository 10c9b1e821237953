"""A live session's event stream: seq assignment, the log, the bus and ``meta.json``.

``Session.emit`` is synchronous: it numbers the event, hands it to the log writer and
publishes it, in that order, so log order is seq order and publishing never waits.
``emit_durable`` additionally waits until the event is stored under the durability policy —
use it before answering a request that reports an action.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from hive_server.core.bus import EventBus, Subscription
from hive_server.core.eventlog import EventLog
from hive_server.core.files import write_atomic
from hive_server.errors import Unavailable
from hive_server.models.events import Event, EventType
from hive_server.models.session import SessionMeta

log = logging.getLogger(__name__)


class SessionPart(Protocol):
    """Something a session owns and stops (queen, colony, triggers)."""

    async def stop(self) -> None: ...


def utc_iso() -> str:
    return datetime.now(UTC).isoformat()


class Session:
    """The event stream and metadata of one live session."""

    def __init__(self, meta: SessionMeta, directory: Path, event_log: EventLog,
                 *, bus_queue_size: int = 2048):
        self.meta = meta
        self.id = meta.session_id
        self.dir = directory
        self.workspace = directory / "workspace"
        self.log = event_log
        self.bus = EventBus(self.id, bus_queue_size)
        self.started_monotonic = time.monotonic()
        self.loaded_at = time.time()
        self.parts: list[SessionPart] = []
        self.stopping = False
        self._sealed = False  # after session_stopped: nothing more is logged or saved
        self._meta_lock = asyncio.Lock()

    @property
    def last_seq(self) -> int:
        return self.log.last_seq

    def emit(self, type: EventType | str, data: dict[str, Any] | None = None, *,
             stream_id: str = "queen", node_id: str | None = None,
             execution_id: str | None = None, correlation_id: str | None = None,
             colony_id: str | None = None) -> tuple[Event, asyncio.Future[None]]:
        """Number, store (asynchronously) and publish one event.

        Raises ``Unavailable`` once the session has logged ``session_stopped`` (an action that
        raced the stop is refused, not a server error).
        """
        if self._sealed:
            raise Unavailable(f"session {self.id!r} is stopping", code="session_stopping")
        event = Event(
            seq=self.log.last_seq + 1, type=str(type), session_id=self.id,
            stream_id=stream_id, node_id=node_id or stream_id, execution_id=execution_id,
            correlation_id=correlation_id, colony_id=colony_id or self.meta.agent_id,
            data=data or {},
        )
        try:
            stored = self.log.append(event)
        except RuntimeError as exc:  # the log failed earlier (disk full, I/O error)
            raise Unavailable(f"session {self.id!r} cannot store events: {exc}",
                              code="log_unavailable") from exc
        self.bus.publish(event)
        return event, stored

    async def emit_durable(self, type: EventType | str, data: dict[str, Any] | None = None,
                           **kwargs: Any) -> Event:
        """``emit``, then wait until the event is stored under the durability policy."""
        event, stored = self.emit(type, data, **kwargs)
        try:
            await stored
        except (OSError, RuntimeError) as exc:
            raise Unavailable(f"session {self.id!r} cannot store events: {exc}",
                              code="log_unavailable") from exc
        return event

    def subscribe(self, maxsize: int | None = None,
                  types: frozenset[str] | None = None) -> Subscription:
        return self.bus.subscribe(maxsize, types)

    async def save_meta(self, **changes: Any) -> None:
        """Apply ``changes`` to meta and write ``meta.json`` atomically (``Unavailable`` once
        the session is stopping: its folder may be about to be deleted)."""
        async with self._meta_lock:
            if self._sealed:
                raise Unavailable(f"session {self.id!r} is stopping", code="session_stopping")
            await self._write_meta(changes)

    async def _write_meta(self, changes: dict[str, Any]) -> None:
        self.meta = self.meta.model_copy(update={**changes, "updated_at": utc_iso()})
        payload = self.meta.model_dump_json(indent=2).encode()
        await asyncio.to_thread(write_atomic, self.dir / "meta.json", payload)

    @property
    def uptime_seconds(self) -> float:
        return time.monotonic() - self.started_monotonic

    async def close(self, reason: str, *, mark_stopped: bool, log_stop: bool = True) -> None:
        """Stop every part (reverse order), log ``session_stopped``, end streams, close the log.

        Streams end, the log closes and meta is marked even when the log cannot be written
        (that error is raised afterwards).
        """
        self.stopping = True
        for part in reversed(self.parts):
            try:
                await part.stop()
            except Exception:
                log.exception("session %s: stopping %r failed", self.id, part)
        self.parts.clear()
        try:
            if log_stop:
                await self._log_stopped(reason)
        finally:
            self._sealed = True
            self.bus.close("session_stopped")
            await self.log.close()
            if mark_stopped:
                async with self._meta_lock:
                    await self._write_meta({"status": "stopped", "stopped_at": utc_iso()})

    async def _log_stopped(self, reason: str) -> None:
        _, stored = self.emit(EventType.SESSION_STOPPED, {"reason": reason})
        self._sealed = True  # session_stopped is the last event
        await stored
