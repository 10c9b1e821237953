"""SessionManager: the one owner of every live session (``Session``, re-exported here).

Create, resume (same id, seq continues), stop, and resume-on-start of the sessions that were
live when the server last stopped or crashed. A create that fails leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from hive_server.core.clock import Clock
from hive_server.core.descriptors import out_of_descriptors, remove_new_folder
from hive_server.core.signal import ChangeSignal
from hive_server.errors import NotFound
from hive_server.errors.sessions import (
    EmptyTitle,
    InvalidSessionId,
    NothingToResume,
    ResourceExhausted,
    SessionAlreadyLive,
    SessionLive,
    SessionLoading,
    SessionNotLive,
    ShuttingDown,
)
from hive_server.llm.base import LLMClient
from hive_server.models.queen import QueenProfile
from hive_server.models.session import (
    RESERVED_IDS,
    SessionMeta,
    is_safe_id,
    new_session_id,
)
from hive_server.services.budget.budgets import Budgets
from hive_server.services.catalog.agent_folder import AgentEntry
from hive_server.services.catalog.agents import AgentCatalog
from hive_server.services.catalog.queens import QueenRegistry
from hive_server.services.journal.journal import SessionJournal, utc_iso
from hive_server.services.runtime.colony import find_agent
from hive_server.services.runtime.open_turn import settle_restart
from hive_server.services.sessions.colonies import Colonies
from hive_server.services.sessions.ownership import Ownership
from hive_server.services.sessions.resume import BootResume
from hive_server.services.sessions.session import Session
from hive_server.services.sessions.shutdown import stop_all
from hive_server.services.sessions.start import NewSession, SessionOptions, SessionParts
from hive_server.services.sessions.store import Opened, SessionFiles, SessionStore
from hive_server.services.triggers.scheduler import TriggerScheduler
from hive_server.services.webhooks.inbox import WebhookInbox

if TYPE_CHECKING:  # redis-py is imported only with --redis
    from hive_server.core.redis_lease import LeaseToken
    from hive_server.core.redis_node import RedisNode

log = logging.getLogger(__name__)
NEW_FILES = ("events.jsonl", "meta.json", "triggers.json")  # what a new session's start writes
__all__ = ["NewSession", "Session", "SessionManager", "SessionOptions"]


class SessionManager(Ownership, Colonies):
    def __init__(self, options: SessionOptions, *, llm: LLMClient, queens: QueenRegistry,
                 catalog: AgentCatalog, clock: Clock, scheduler: TriggerScheduler,
                 inbox: WebhookInbox, budgets: Budgets, store: SessionStore | None = None,
                 node: RedisNode | None = None):
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
        self._dropping: set[asyncio.Task[None]] = set()  # lost leases, failed logs (Redis)
        self._closed = False
        self._parts = SessionParts(options, llm, clock, scheduler, inbox, budgets,
                                   self.changes.notify)
        self.node = node  # with --redis: leases (ownership), the takeover of lapsed ones
        if node is not None:
            node.on_lost = self._lease_lost
        self.boot = BootResume(folders=self.store.folders, live_opened=self.store.live_opened,
                               resume=self._resume_held, taken=self._owned,
                               concurrency=options.resume_concurrency)

    # -- lookup -----------------------------------------------------------------------------
    def live(self) -> list[Session]:
        return list(self._live.values())

    def running(self, agent_id: str) -> list[Session]:
        """The live sessions that have the agent ``agent_id`` loaded as their colony."""
        return [live for live in self._live.values()
                if live.colony is not None and live.colony.agent_id == agent_id]

    def live_one(self, session_id: str) -> Session | None:
        """The live session ``session_id``, or None (starting, elsewhere, cold or unknown)."""
        return self._live.get(session_id)

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

    def is_held(self, session_id: str) -> bool:
        """Live here, starting, or closing here (the takeover loop leaves it alone)."""
        return self._owned(session_id) or self.boot.holds(session_id) or (
            session_id in self._closing)

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
        await self._not_elsewhere(session_id)  # its meta is its owner's
        self._claim(session_id)
        try:
            return await self.store.update(session_id, changes)
        finally:
            self._loading.discard(session_id)

    # -- create / resume ----------------------------------------------------------------------
    async def create(self, new: NewSession) -> Session:
        """A new session made from ``new`` (an id whose folder is on disk resumes that one)."""
        session_id = new_session_id() if new.session_id is None else _valid_id(new.session_id)
        await self._settled(session_id)
        return await self._claimed(session_id, new)

    async def resume(self, session_id: str) -> Session:
        """The session ``session_id`` live again from disk, its seq continued (404 when it
        is not on disk)."""
        await self._settled(_valid_id(session_id))
        if not await self.store.has(session_id):
            raise NothingToResume(session_id)
        return await self._claimed(session_id, NewSession(session_id=session_id))

    async def _claimed(self, session_id: str, new: NewSession) -> Session:
        self._claim(session_id)
        try:
            return await self._open(session_id, new)
        finally:
            self._loading.discard(session_id)

    def _claim(self, session_id: str) -> None:
        if self._closed:
            raise ShuttingDown()
        if session_id in self._live:
            raise SessionAlreadyLive(session_id)
        if self.is_loading(session_id):
            raise SessionLoading(session_id)
        self._loading.add(session_id)

    async def _open(self, session_id: str, new: NewSession, *, on_disk: SessionMeta | None = None,
                    opened: Opened | None = None) -> Session:
        """Open ``session_id``: resumed when its folder is on disk (``on_disk``, ``opened``: its
        meta and files as the resume at start read them), else new; a new one that fails
        leaves nothing behind."""
        directory = self.store.path(session_id)
        resumed = on_disk is not None or await self.store.has(session_id)  # a stat
        meta, profile = await self._meta_for(session_id, new, resumed, on_disk)
        wants_agent = new.wants_agent and not resumed
        entry = find_agent(self.catalog, new.agent_id, new.agent_path) if wants_agent else None
        lease = await self._acquire(session_id)
        journal = SessionJournal(
            meta, directory, self.store.new_log(session_id, self.options.durability, lease),
            bus_queue_size=self.options.bus_queue_size, on_meta=self.store.index.put,
            write_meta=self.store.write_meta)
        self._watch_log(journal)
        try:
            live = await self._start(journal, profile, meta if resumed else None, entry, opened,
                                     lease)
        except BaseException as exc:
            await self._release(session_id)
            if not resumed:
                await asyncio.to_thread(remove_new_folder, directory, NEW_FILES, ("workspace",))
                self.store.index.remove(session_id)
            if out_of_descriptors(exc):
                raise ResourceExhausted() from exc
            raise
        self._live[session_id] = live
        self._serve_commands(live)
        self.changes.notify()
        await live.triggers.take_held()  # held while it armed, before the ingress could see it
        log.info("session %s %s at seq %d", session_id, "resumed" if resumed else "created",
                 journal.last_seq)
        if new.initial_prompt and not resumed:
            await live.queen.deliver(new.initial_prompt)
        return live

    async def _start(self, journal: SessionJournal, profile: QueenProfile,
                     on_disk: SessionMeta | None, entry: AgentEntry | None,
                     opened: Opened | None, lease: LeaseToken | None = None) -> Session:
        """Its files opened (``opened``: by the boot's resume), its parts built and started
        (``on_disk``: a resumed session's meta as read); on a failure, what started is
        stopped, meta kept as it was."""
        live: Session | None = None
        try:
            files = await self.store.open_files(journal.id, on_disk is not None, opened)
            info, history = await self.store.start_log(journal.log, files), files.history
            live = await self._parts.build(journal, profile, history, info, on_disk)
            live.lease = lease
            self.store.under_lease(live.triggers, lease)  # before its timers are armed
            await live.start(files.triggers)
            parked = (await settle_restart(journal, history.tracker, history.open_results,
                                           history.bad_lines) if on_disk else None)
            if entry is not None:
                await self._load(live, entry)
            elif on_disk is not None and on_disk.agent_id:
                await self._reload_on_resume(live, on_disk.agent_id)
            live.queen.start(history.pending, parked)  # after the colony: its tools count
            await live.budget.recheck()  # parked: a limit may have risen
            if on_disk is not None and not history.pending:  # its log closes at its first sync
                journal.log.quiet()
            return live
        except BaseException:
            if live is None:
                await journal.close("failed_to_start", mark_stopped=False, log_stop=False)
            else:
                await live.stop("failed_to_start", mark_stopped=False, log_stop=False)
            raise

    async def _meta_for(self, session_id: str, new: NewSession, resumed: bool,
                        on_disk: SessionMeta | None) -> tuple[SessionMeta, QueenProfile]:
        if resumed:
            meta = on_disk or await self.store.read_meta(session_id)
            try:
                return meta, self.queens.get(meta.queen_id)
            except NotFound:
                log.warning("session %s: queen %r is gone; using the default queen",
                            session_id, meta.queen_id)
                return meta, self.queens.default()
        profile = self.queens.get(new.queen_name) if new.queen_name else self.queens.default()
        now = utc_iso()
        meta = SessionMeta(
            session_id=session_id, created_at=now, updated_at=now, queen_id=profile.id,
            queen_name=profile.name,
            model=(new.model or self.options.model_override or profile.model
                   or self.options.default_model),
            phase=new.initial_phase or ("colony" if new.wants_agent else "independent"),
            message_count=0, title=_title(new.title),
        )
        return meta, profile

    # -- stop ---------------------------------------------------------------------------------
    async def stop(self, session_id: str, *, reason: str = "deleted") -> None:
        live = self.get(session_id)
        del self._live[session_id]
        self.changes.notify()
        await self._exclusive(session_id, self._stop_and_release(live, reason))

    async def _stop_and_release(self, live: Session, reason: str) -> None:
        try:
            await live.stop(reason, mark_stopped=True)
        finally:
            await self._release(live.journal.id)

    async def delete_history(self, session_id: str) -> None:
        self.store.path(session_id)
        await self._settled(session_id)
        if self.is_loading(session_id):
            raise SessionLoading(session_id)
        await self._not_elsewhere(session_id)  # its owner deletes it, never another node
        await self._exclusive(session_id, self._stop_and_delete(session_id))

    async def _stop_and_delete(self, session_id: str) -> None:
        live = self._live.pop(session_id, None)
        self.changes.notify()
        if live is not None:
            await self._stop_and_release(live, "deleted")
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
        """Stop every live session but keep it marked live, so the next start resumes it
        (``stop_all``: concurrently, bounded, those still stopping after ``timeout`` seconds
        cut short). Closes and deletes under way are awaited with them."""
        self._closed = True
        await self.boot.stop()  # a session cut short in its resume stays marked live
        lives, self._live = list(self._live.values()), {}
        self.changes.notify()
        await stop_all(lives, list(self._closing.values()), timeout)
        if self.node is not None:  # handed over now, not when the leases lapse
            await asyncio.gather(*(self._release(live.journal.id) for live in lives),
                                 return_exceptions=True)

    async def _resume_held(self, meta: SessionMeta, opened: Opened) -> bool:
        """Resume a session that was live at the last stop, from its meta and files as read
        (for ``BootResume``, which holds the id until this returns); False, logged, when it
        cannot be resumed."""
        session_id = meta.session_id
        self._loading.add(session_id)
        resumed = False
        try:
            await self._open(session_id, NewSession(session_id=session_id), on_disk=meta,
                             opened=opened)
            resumed = True
        except Exception:  # one session that cannot resume never stops the others
            log.exception("could not resume session %s", session_id)
        finally:
            self._loading.discard(session_id)
            if not resumed and isinstance(opened, SessionFiles):
                opened.close()  # failed or cut short before its log took the file (or a no-op)
        return resumed


def _valid_id(session_id: str) -> str:
    """A session id a caller names (an empty one is invalid, never "make one up")."""
    if not is_safe_id(session_id) or session_id in RESERVED_IDS:
        raise InvalidSessionId(session_id)
    return session_id


def _title(title: str | None) -> str | None:
    """A title given at create, stripped (400 ``empty_title`` when blank)."""
    if title is not None and not title.strip():
        raise EmptyTitle()
    return title.strip() if title is not None else None
