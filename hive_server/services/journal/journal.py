"""A live session's event stream: seq assignment, the log, the bus and ``meta.json``.

``SessionJournal.emit`` is synchronous: it numbers the event, hands it to the log writer and
publishes it, in that order, so log order is seq order and publishing never waits.
``emit_durable`` additionally waits until the event is stored under the durability policy —
use it before answering a request that reports an action.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Generic, TypeVar

from hive_server.core.bus import EventBus, Subscription
from hive_server.core.files import write_atomic
from hive_server.core.log_store import LogStore
from hive_server.core.tasks import cancel_and_wait
from hive_server.errors.sessions import LogUnavailable, SessionStopping
from hive_server.models.event_data import EventData, SessionStopped, SessionSummary
from hive_server.models.events import Event
from hive_server.models.handoff import HandoffTrigger
from hive_server.models.session import TITLE_CHARS, SessionMeta, preview, resumed_status
from hive_server.services.journal.accounting import LiveAccounting
from hive_server.services.journal.activity import QueenActivity
from hive_server.services.journal.handoff import HandoffNotes
from hive_server.services.journal.spend_gate import UNLIMITED, SpendGate

log = logging.getLogger(__name__)
META_FLUSH_SECONDS = 2.0  # inputs are counted in memory; meta.json follows at most this late
LogT = TypeVar("LogT", bound=LogStore)  # the backend's log: its owner keeps its own methods


MetaWriter = Callable[[SessionMeta, Path], Awaitable[None]]


def utc_iso() -> str:
    return datetime.now(UTC).isoformat()


async def write_meta_file(meta: SessionMeta, directory: Path) -> None:
    """``meta.json`` in ``directory``, written atomically (the file backend's meta write)."""
    await asyncio.to_thread(write_atomic, directory / "meta.json",
                            meta.model_dump_json(indent=2).encode())


class SessionJournal(Generic[LogT]):
    """The event stream and metadata of one live session (``log``: any ``LogStore``)."""

    def __init__(self, meta: SessionMeta, directory: Path, event_log: LogT,
                 *, bus_queue_size: int = 2048,
                 on_meta: Callable[[SessionMeta], None] | None = None,
                 write_meta: MetaWriter | None = None):
        status = resumed_status(meta.status)
        self.meta = meta.model_copy(update={"status": status})
        self.id = meta.session_id
        self.dir = directory
        self.workspace = directory / "workspace"
        self.log = event_log
        self.bus = EventBus(self.id, bus_queue_size)
        self.activity = QueenActivity(status=status, last_error=meta.last_error)
        self.on_meta = on_meta  # the sessions index: told of every change, in memory or not
        self.write_meta = write_meta or write_meta_file  # the backend's (``store*.py``)
        self.accounting = LiveAccounting(meta.usage)
        self.gate: SpendGate = UNLIMITED  # every model call passes it (services/budget/budgets.py)
        self.started_monotonic = time.monotonic()
        self.loaded_at = time.time()
        self.notes = HandoffNotes()  # fed every event; a resume seeds it from the log
        self.last_turn_seq = 0  # the last event of a turn (the stale-turn watchdog reads it)
        self.stopping = False
        self._sealed = False  # after session_stopped: nothing more is logged or saved
        self._meta_lock = asyncio.Lock()
        self._meta_dirty = False  # meta changed in memory (inputs) and not yet written
        self._meta_flush: asyncio.Task[None] | None = None

    @property
    def last_seq(self) -> int:
        return self.log.last_seq

    def emit(self, payload: EventData, *, stream_id: str = "queen", node_id: str | None = None,
             execution_id: str | None = None, correlation_id: str | None = None,
             colony_id: str | None = None) -> tuple[Event, asyncio.Future[None]]:
        """Number, store (asynchronously) and publish one event built from ``payload``.

        When the event changes the queen's loop state, ``loop_state_changed`` follows it.
        Raises ``Unavailable`` once the session has logged ``session_stopped`` (an action that
        raced the stop is refused, not a server error).
        """
        if self._sealed:
            raise SessionStopping(self.id)
        event = Event(
            seq=self.log.last_seq + 1, type=payload.TYPE.value, session_id=self.id,
            stream_id=stream_id, node_id=node_id or stream_id, execution_id=execution_id,
            correlation_id=correlation_id, colony_id=colony_id or self.meta.agent_id,
            data=payload.model_dump(),
        )
        try:
            stored = self.log.append(event)
        except RuntimeError as exc:  # the log failed earlier (disk full, I/O error)
            raise LogUnavailable(self.id, exc) from exc
        self.bus.publish(event)
        self.accounting.observe(event)
        self.notes.add(event.seq, event.type, event.stream_id, event.data, event.timestamp)
        if execution_id is not None:  # a step of a turn (the queen's or a worker's)
            self.last_turn_seq = event.seq
        if (change := self.activity.observe(event)) is not None:
            self.emit(change, execution_id=execution_id)
        if self.activity.status != self.meta.status:
            self._note({"status": self.activity.status, "last_error": self.activity.last_error,
                        "last_active_at": event.timestamp})
        return event, stored

    async def emit_durable(self, payload: EventData, **kwargs: Any) -> Event:
        """``emit``, then wait until the event is stored under the durability policy."""
        event, stored = self.emit(payload, **kwargs)
        try:
            await stored
        except (OSError, RuntimeError) as exc:
            raise LogUnavailable(self.id, exc) from exc
        return event

    def subscribe(self, maxsize: int | None = None,
                  types: frozenset[str] | None = None) -> Subscription:
        return self.bus.subscribe(maxsize, types)

    def record_input(self, text: str, source: str) -> None:
        """Count an input handed to the queen (a chat or a trigger) in ``meta``: its count,
        time and, for a user message, a preview (the first one also gives the session a title
        when it has none). Kept in memory; ``meta.json`` is written at most
        ``META_FLUSH_SECONDS`` later (or at close), never once per chat."""
        now = utc_iso()
        changes: dict[str, Any] = {"message_count": (self.meta.message_count or 0) + 1,
                                   "last_input_at": now, "last_active_at": now}
        if source == "user":
            changes["last_message"] = preview(text)
            if self.meta.first_message is None:
                changes["first_message"] = changes["last_message"]
            if self.meta.title is None:
                changes["title"] = preview(text, TITLE_CHARS)
        self._note(changes)

    def _note(self, changes: dict[str, Any]) -> None:
        """Apply ``changes`` to meta in memory (the index follows at once, ``meta.json``
        at most ``META_FLUSH_SECONDS`` later)."""
        self.meta = self.meta.model_copy(update=changes)
        if self.on_meta is not None:
            self.on_meta(self.meta)
        self._meta_dirty = True
        if self._meta_flush is None and not self._sealed:
            self._meta_flush = asyncio.create_task(self._flush_meta_later(),
                                                   name=f"meta-flush:{self.id}")

    async def _flush_meta_later(self) -> None:
        try:
            while self._meta_dirty:  # an input recorded during a write waits for the next
                await asyncio.sleep(META_FLUSH_SECONDS)
                async with self._meta_lock:
                    if self._sealed:
                        return
                    await self._write_meta({})
        except OSError:
            log.exception("session %s: writing meta.json failed", self.id)
        finally:
            self._meta_flush = None

    async def _stop_meta_flush(self) -> None:
        task, self._meta_flush = self._meta_flush, None
        await cancel_and_wait(task)

    async def save_meta(self, **changes: Any) -> None:
        """Apply ``changes`` to meta and write ``meta.json`` atomically (``Unavailable`` once
        the session is stopping: its folder may be about to be deleted)."""
        async with self._meta_lock:
            if self._sealed:
                raise SessionStopping(self.id)
            await self._write_meta(changes)

    async def _write_meta(self, changes: dict[str, Any]) -> None:
        self.meta = self.meta.model_copy(update={**changes, "updated_at": utc_iso(),
                                                 "last_seq": self.last_seq,
                                                 "usage": self.accounting.persisted()})
        self._meta_dirty = False
        await self.write_meta(self.meta, self.dir)
        if self.on_meta is not None:
            self.on_meta(self.meta)

    @property
    def uptime_seconds(self) -> float:
        return time.monotonic() - self.started_monotonic

    async def close(self, reason: str, *, mark_stopped: bool, log_stop: bool = True,
                    armed: list[HandoffTrigger] | None = None) -> None:
        """The journal's part of a stop (``Session.stop``, once the parts have stopped): log
        ``session_summary`` (its handoff notes name the ``armed`` triggers) and
        ``session_stopped``, close the log (the last events written, synced and the file
        closed in one thread hop), then end the streams (a stream that ended has its events
        stored), then write meta.

        Streams end, the log closes and meta is marked even when the log cannot be written
        (that error is raised afterwards).
        """
        self.stopping = True
        notes: dict[str, Any] = {}
        stored: asyncio.Future[None] | None = None
        try:
            if log_stop:
                notes["handoff"] = self.notes.handoff(reason, self.last_seq, utc_iso(),
                                                      armed or [])
                self.emit(SessionSummary(handoff=notes["handoff"]))
                _, stored = self.emit(SessionStopped(reason=reason))  # the last event
        finally:
            self._sealed = True
            try:
                await self.log.close()  # the two events written, synced and closed: one hop
            finally:
                self.bus.close("session_stopped")  # after: a stream that ends is stored
            await self._stop_meta_flush()
            await self._final_meta(mark_stopped, notes)
        if stored is not None:
            await stored  # a write error of the last events is raised now

    async def _final_meta(self, mark_stopped: bool, notes: dict[str, Any]) -> None:
        """``meta.json`` at close: stopped (or kept live for the next start), with the
        handoff notes of this stop."""
        if mark_stopped:
            async with self._meta_lock:
                now = utc_iso()
                await self._write_meta({"status": "stopped", "stopped_at": now,
                                        "last_active_at": now, **notes})
        elif self._meta_dirty or notes:  # kept live for the next start
            async with self._meta_lock:
                await self._write_meta(notes)

