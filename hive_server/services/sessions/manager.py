"""SessionManager: the one owner of every live session (``Session``, re-exported here).

Create, resume (same id, seq continues), stop, and resume-on-start of the sessions that were
live when the server last stopped or crashed. A create that fails leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any

from hive_server.core.clock import Clock
from hive_server.core.descriptors import out_of_descriptors, remove_new_folder
from hive_server.core.eventlog import EventLog
from hive_server.core.signal import ChangeSignal
from hive_server.errors import InvalidInput, NotFound
from hive_server.errors.sessions import (
    ColonyAlreadyLoaded,
    EmptyTitle,
    InvalidSessionId,
    NoColonyLoaded,
    NothingToResume,
    ResourceExhausted,
    SessionAlreadyLive,
    SessionIdMismatch,
    SessionLive,
    SessionLoading,
    SessionNotLive,
    ShuttingDown,
)
from hive_server.llm.base import LLMClient
from hive_server.models.api import CreateSessionBody
from hive_server.models.event_data import WorkerColonyLoaded, WorkerColonyUnloaded
from hive_server.models.queen import QueenProfile
from hive_server.models.session import RESERVED_IDS, SessionMeta, is_safe_id, new_session_id
from hive_server.models.triggers import parse_triggers_file
from hive_server.services.budget.budgets import Budgets
from hive_server.services.catalog.agent_folder import AgentEntry
from hive_server.services.catalog.agents import AgentCatalog
from hive_server.services.catalog.queens import QueenRegistry
from hive_server.services.journal.journal import SessionJournal, utc_iso
from hive_server.services.runtime.colony import Colony, find_agent
from hive_server.services.runtime.open_turn import settle_restart
from hive_server.services.sessions.resume import BootResume
from hive_server.services.sessions.session import Session
from hive_server.services.sessions.start import SessionOptions, SessionParts
from hive_server.services.sessions.store import SessionStore
from hive_server.services.triggers.scheduler import TriggerScheduler
from hive_server.services.webhooks.inbox import WebhookInbox

log = logging.getLogger(__name__)
NEW_FILES = ("events.jsonl", "meta.json", "triggers.json")  # what a new session's start writes
LATE_CANCEL_SECONDS = 0.5  # at shutdown, how long a cancelled late session close is awaited
STOP_CONCURRENCY = 64  # at shutdown, sessions closed at once (each close is a few thread hops)
__all__ = ["Session", "SessionManager", "SessionOptions"]


class SessionManager:
    def __init__(self, options: SessionOptions, *, llm: LLMClient, queens: QueenRegistry,
                 catalog: AgentCatalog, clock: Clock, scheduler: TriggerScheduler,
                 inbox: WebhookInbox, budgets: Budgets, store: SessionStore | None = None):
        self.options = options
        self.budgets = budgets  # spend limits: every session's model calls pass its gate
        self.scheduler = scheduler
        self.inbox = inbox
        self.llm = llm
        self.queens = queens
        self.catalog = catalog
        self.clock = clock
        self.store = store or SessionStore(options.home)
        self.changes = ChangeSignal()  # live sessions or their queens' state changed
        self._live: dict[str, Session] = {}
        self._loading: set[str] = set()
        self._closing: dict[str, asyncio.Task[None]] = {}
        self._closed = False
        self._parts = SessionParts(options, llm, clock, scheduler, inbox, budgets,
                                   self.changes.notify)
        self.boot = BootResume(folders=self.store.folders, live_among=self.store.live_among,
                               resume=self._resume_held, taken=self._owned,
                               concurrency=options.resume_concurrency)

    # -- lookup -----------------------------------------------------------------------------
    def live(self) -> list[Session]:
        return list(self._live.values())

    def running(self, agent_id: str) -> list[Session]:
        """The live sessions that have the agent ``agent_id`` loaded as their colony."""
        return [live for live in self._live.values()
                if live.colony is not None and live.colony.agent_id == agent_id]

    def get(self, session_id: str) -> Session:
        """The live session, or NotFound (Conflict with loading=True while it is starting)."""
        if session_id in self._live:
            return self._live[session_id]
        if self.is_loading(session_id):
            raise SessionLoading(session_id)
        raise SessionNotLive(session_id)

    def is_loading(self, session_id: str) -> bool:
        """Starting, or waiting for its turn in the resume at start (``BootResume``)."""
        return session_id in self._loading or self.boot.holds(session_id)

    def _owned(self, session_id: str) -> bool:
        return session_id in self._live or session_id in self._loading

    async def rename(self, session_id: str, title: str) -> Session | SessionMeta:
        """Title a live session (its meta save) or a cold one (see ``edit_cold``)."""
        self.store.path(session_id)
        if not title.strip():
            raise EmptyTitle()
        await self._settled(session_id)
        if (live := self._live.get(session_id)) is not None:
            await live.journal.save_meta(title=title.strip())
            return live
        return await self.edit_cold(session_id, {"title": title.strip()})

    async def edit_cold(self, session_id: str, changes: dict[str, object]) -> SessionMeta:
        """Rewrite a session's ``meta.json`` with ``changes`` while it is not live, the id
        held as loading meanwhile: a create of it answers 409, a close under way ends first
        (409 ``session_live`` when it went live meanwhile: its meta is its own then)."""
        await self._settled(session_id)
        if session_id in self._live:
            raise SessionLive(session_id)
        self._claim(session_id)
        try:
            return await self.store.update(session_id, changes)
        finally:
            self._loading.discard(session_id)

    # -- create / resume ----------------------------------------------------------------------
    async def create(self, body: CreateSessionBody) -> Session:
        session_id = self._choose_id(body)
        await self._settled(session_id)
        if body.queen_resume_from and not self.store.exists(session_id):
            raise NothingToResume(session_id)
        self._claim(session_id)
        try:
            return await self._open(session_id, body)
        finally:
            self._loading.discard(session_id)

    def _choose_id(self, body: CreateSessionBody) -> str:
        """The id a create names (an empty one is invalid, never "make one up")."""
        resume_from, given = body.queen_resume_from, body.session_id
        if resume_from is not None and given is not None and resume_from != given:
            raise SessionIdMismatch()
        session_id = resume_from if resume_from is not None else given
        if session_id is None:
            return new_session_id()
        if not is_safe_id(session_id) or session_id in RESERVED_IDS:
            raise InvalidSessionId(session_id)
        return session_id

    def _claim(self, session_id: str) -> None:
        if self._closed:
            raise ShuttingDown()
        if session_id in self._live:
            raise SessionAlreadyLive(session_id)
        if self.is_loading(session_id):
            raise SessionLoading(session_id)
        self._loading.add(session_id)

    async def _open(self, session_id: str, body: CreateSessionBody, *,
                    on_disk: SessionMeta | None = None) -> Session:
        """``on_disk``: the meta of a session resumed at start, as the boot scan read it."""
        directory = self.store.path(session_id)
        resumed = on_disk is not None or self.store.exists(session_id)  # a stat
        meta, profile = await self._meta_for(session_id, body, resumed, on_disk)
        wants_agent = not resumed and (body.agent_id is not None or body.agent_path is not None)
        entry = find_agent(self.catalog, body.agent_id, body.agent_path) if wants_agent else None
        event_log = EventLog(directory / "events.jsonl", self.options.durability)
        session = SessionJournal(meta, directory, event_log,
                                 bus_queue_size=self.options.bus_queue_size,
                                 on_meta=self.store.index.put)
        try:
            files = await self.store.open_files(session_id, resumed)
            info, history = event_log.start(files.log), files.history
            live = await self._parts.start(session, profile, files, info,
                                           meta if resumed else None)
            parked = (await settle_restart(session, history.tracker, history.open_results,
                                           history.bad_lines) if resumed else None)
            if entry is not None:
                await self._load(live, entry)
            elif resumed and meta.agent_id:
                await self._reload_on_resume(live, meta.agent_id)
            # after the colony: its tools are in the first turn
            live.queen.start(history.pending, parked)
            await self.budgets.get(session_id).recheck()  # parked: a limit may have risen
            if resumed and not history.pending:  # its log closes at its first sync
                event_log.quiet()
        except BaseException as exc:
            await session.close("failed_to_start", mark_stopped=False, log_stop=False)
            if not resumed:
                await asyncio.to_thread(remove_new_folder, directory, NEW_FILES, ("workspace",))
                self.store.index.remove(session_id)
            if out_of_descriptors(exc):
                raise ResourceExhausted() from exc
            raise
        self._live[session_id] = live
        self.changes.notify()
        await live.triggers.take_held()  # held while it armed, before the ingress could see it
        log.info("session %s %s at seq %d", session_id, "resumed" if resumed else "created",
                 session.last_seq)
        if body.initial_prompt and not resumed:
            await live.queen.deliver(body.initial_prompt)
        return live

    async def _meta_for(self, session_id: str, body: CreateSessionBody, resumed: bool,
                        on_disk: SessionMeta | None) -> tuple[SessionMeta, QueenProfile]:
        if resumed:
            meta = on_disk or await self.store.read_meta(session_id)
            try:
                return meta, self.queens.get(meta.queen_id)
            except NotFound:
                log.warning("session %s: queen %r is gone; using the default queen",
                            session_id, meta.queen_id)
                return meta, self.queens.default()
        profile = self.queens.get(body.queen_name) if body.queen_name else self.queens.default()
        now = utc_iso()
        meta = SessionMeta(
            session_id=session_id, created_at=now, updated_at=now, queen_id=profile.id,
            queen_name=profile.name,
            model=(body.model or self.options.model_override or profile.model
                   or self.options.default_model),
            phase=body.initial_phase or ("colony" if body.agent_id or body.agent_path
                                         else "independent"),
            message_count=0, title=_title(body.title),
        )
        return meta, profile

    # -- colonies -----------------------------------------------------------------------------
    async def load_colony(self, session_id: str, agent_id: str | None,
                          agent_path: str | None) -> Colony:
        live = self.get(session_id)
        async with live.colony_lock:
            if live.colony is not None:
                raise ColonyAlreadyLoaded(live.colony.agent_id)
            return await self._load(live, find_agent(self.catalog, agent_id, agent_path))

    async def _load(self, live: Session, entry: AgentEntry) -> Colony:
        colony = Colony(live.journal, entry, self.llm, self.clock, ids=live.worker_ids,
                        model_override=self.options.model_override)
        live.colony = colony
        await live.journal.save_meta(agent_id=entry.agent_id, agent_path=str(entry.path))
        await live.journal.emit_durable(WorkerColonyLoaded(
            agent_id=entry.agent_id, agent_path=str(entry.path), name=colony.manifest.name,
            version=entry.version, tools=sorted(colony.available),
            workers=sorted(colony.workers)))
        if entry.triggers_raw is not None:
            await live.triggers.attach_folder(*parse_triggers_file(entry.triggers_raw))
        return colony

    async def _reload_on_resume(self, live: Session, agent_id: str) -> None:
        """Load the colony a resumed session had; if the agent is gone, say so and go on."""
        try:
            await self._load(live, self.catalog.get_valid(agent_id))
        except (NotFound, InvalidInput) as exc:
            log.warning("session %s: colony %s not reloaded: %s", live.journal.id, agent_id, exc)
            await live.journal.save_meta(agent_id=None, agent_path=None)
            await live.journal.emit_durable(WorkerColonyUnloaded(
                agent_id=agent_id, reason="agent_unavailable", error=str(exc)))

    async def unload_colony(self, session_id: str, reason: str = "request") -> str:
        live = self.get(session_id)
        async with live.colony_lock:  # after a load in progress, never in the middle of it
            colony = live.colony
            if colony is None:
                raise NoColonyLoaded()
            if colony.stats.running:
                await live.queen.cancel()
            await live.triggers.detach_folder()
            live.colony = None
            await live.journal.save_meta(agent_id=None, agent_path=None)
            await live.journal.emit_durable(WorkerColonyUnloaded(agent_id=colony.agent_id,
                                                                 reason=reason))
            return colony.agent_id

    async def stop_agent_sessions(self, agent_id: str) -> list[str]:
        """Stop every live session that has ``agent_id`` loaded (before deleting the agent)."""
        ids = [live.journal.id for live in self.running(agent_id)]
        for session_id in ids:
            with contextlib.suppress(NotFound):  # stopped by someone else meanwhile
                await self.stop(session_id, reason="agent_deleted")
        return ids

    # -- stop ---------------------------------------------------------------------------------
    async def stop(self, session_id: str, *, reason: str = "deleted") -> None:
        live = self.get(session_id)
        del self._live[session_id]
        self.changes.notify()
        await self._exclusive(session_id, live.journal.close(reason, mark_stopped=True))

    async def delete_history(self, session_id: str) -> None:
        self.store.path(session_id)
        await self._settled(session_id)
        if self.is_loading(session_id):
            raise SessionLoading(session_id)
        await self._exclusive(session_id, self._stop_and_delete(session_id))

    async def _stop_and_delete(self, session_id: str) -> None:
        live = self._live.pop(session_id, None)
        self.changes.notify()
        if live is not None:
            await live.journal.close("deleted", mark_stopped=True)
        await self.store.delete(session_id)

    async def _exclusive(self, session_id: str, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` (closing or deleting ``session_id``) as a task this manager owns.

        Until it is done, a create or delete of the same id waits for it (so two owners never
        share a folder); a cancelled caller does not cut it short; ``shutdown`` awaits it.
        """
        async def run() -> None:
            try:
                await work
            finally:
                del self._closing[session_id]

        task = asyncio.create_task(run(), name=f"session-close:{session_id}")
        self._closing[session_id] = task
        await asyncio.shield(task)

    async def _settled(self, session_id: str) -> None:
        """Wait until no close or delete of ``session_id`` is under way."""
        while (task := self._closing.get(session_id)) is not None:
            await asyncio.wait([task])

    async def shutdown(self, timeout: float | None = None) -> None:
        """Stop every live session but keep it marked live, so the next start resumes it.

        Sessions stop concurrently, at most ``STOP_CONCURRENCY`` at once (so they finish one
        after another, not all near the end). One still stopping, or still waiting for its
        turn, after ``timeout`` seconds (a tool that ignores cancellation, or too many
        sessions for the grace) is cut short: its close is cancelled and its log closed as it
        is, so every event emitted so far is stored; the next start resumes it as after a
        crash (its open turn is closed as interrupted)."""
        self._closed = True
        await self.boot.stop()  # a session cut short in its resume stays marked live
        lives, self._live = list(self._live.values()), {}
        self.changes.notify()
        slots = asyncio.Semaphore(STOP_CONCURRENCY)
        stops = {asyncio.create_task(self._stop_for_shutdown(live, slots),
                                     name=f"shutdown:{live.journal.id}"): live for live in lives}
        tasks = [*self._closing.values(), *stops]
        if not tasks:
            return
        _, late = await asyncio.wait(tasks, timeout=timeout)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late, timeout=LATE_CANCEL_SECONDS)  # owned, but not waited on
        await _cut_short([stops[task].journal for task in late & stops.keys()], timeout)

    async def _stop_for_shutdown(self, live: Session, slots: asyncio.Semaphore) -> None:
        try:
            async with slots:
                await live.journal.close("shutdown", mark_stopped=False)
        except Exception:  # one session's failure never stops the others' shutdown
            log.exception("session %s: shutdown failed", live.journal.id)

    async def _resume_held(self, meta: SessionMeta) -> bool:
        """Resume a session that was live at the last stop, from its meta as read (for
        ``BootResume``, which holds the id until this returns); False, logged, when it cannot
        be resumed."""
        session_id = meta.session_id
        self._loading.add(session_id)
        try:
            await self._open(session_id, CreateSessionBody(queen_resume_from=session_id),
                             on_disk=meta)
            return True
        except Exception:  # one session that cannot resume never stops the others
            log.exception("could not resume session %s", session_id)
            return False
        finally:
            self._loading.discard(session_id)


async def _cut_short(sessions: list[SessionJournal], timeout: float | None) -> None:
    """Close the logs of the sessions that did not stop within the shutdown's ``timeout``
    (waited for ``LATE_CANCEL_SECONDS`` at most: thousands of them are cut short at once when
    there are more live sessions than the grace can stop)."""
    if not sessions:
        return
    named = ", ".join(session.id for session in sessions[:5])
    log.warning("%d session(s) did not stop within %g s (%s%s); their logs are closed as "
                "they are", len(sessions), timeout, named, ", ..." if len(sessions) > 5 else "")
    closes = [asyncio.create_task(session.log.close(), name=f"log-close:{session.id}")
              for session in sessions]
    done, left = await asyncio.wait(closes, timeout=LATE_CANCEL_SECONDS)
    for task in done:  # cancelled: its writer was cancelled with the close cut short
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("closing a session's log at shutdown failed", exc_info=exc)
    if left:  # the process ends within its grace; these finish or go with the event loop
        log.warning("%d session log(s) still closing after %g s", len(left),
                    LATE_CANCEL_SECONDS)


def _title(title: str | None) -> str | None:
    """A title given at create, stripped (400 ``empty_title`` when blank)."""
    if title is not None and not title.strip():
        raise EmptyTitle()
    return title.strip() if title is not None else None
