"""A node's ownership of its sessions on Redis (``--redis``, issue 14): the part of
``SessionManager`` that acquires and releases leases, answers where a session runs, takes over
a session whose owner's lease lapsed, drops a session whose lease was lost, and serves the
commands other nodes forward (``commands.py``). Every method is a no-op or answers "here"
without Redis (``node`` None)."""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from typing import TYPE_CHECKING, Any

from hive_server.core.stats import TAKEOVERS
from hive_server.errors import HiveError
from hive_server.errors.backend import LogFenced, SessionElsewhere
from hive_server.errors.sessions import SessionNotLive
from hive_server.models.session import SESSION_STATUSES, SessionMeta
from hive_server.models.session_query import SessionFilter
from hive_server.services.journal.journal import SessionJournal
from hive_server.services.sessions.commands import apply, recover
from hive_server.services.sessions.session import Session
from hive_server.services.sessions.start import NewSession

if TYPE_CHECKING:  # redis-py is imported only with --redis
    from hive_server.core.redis_forward import Command
    from hive_server.core.redis_lease import LeaseToken
    from hive_server.services.sessions.manager import SessionManager

log = logging.getLogger(__name__)


class Ownership:
    """Mixed into ``SessionManager`` (see the module docstring)."""

    async def _acquire(self: SessionManager, session_id: str) -> LeaseToken | None:
        """The session's lease for this node (None without Redis); ``SessionElsewhere`` when
        another node runs it."""
        if self.node is None:
            return None
        lease = await self.node.keeper.acquire(session_id)
        if lease is None:
            owner = await self.node.leases.owner(session_id)
            raise SessionElsewhere(session_id, owner.node_id if owner else "?")
        return lease

    async def _release(self: SessionManager, session_id: str) -> None:
        if self.node is not None:
            try:
                await self.node.keeper.release(session_id)
            except Exception:  # Redis failed: the lease lapses on its own
                log.warning("session %s: releasing its lease failed", session_id, exc_info=True)

    async def check_reachable(self: SessionManager, session_id: str) -> Session | None:
        """The session when this node runs it; None when another node does (or will: a
        takeover under way); ``SessionNotLive`` when no node runs it, ``SessionLoading``
        while it starts here."""
        try:
            return self.get(session_id)
        except SessionNotLive:
            if not await self.live_elsewhere(session_id):
                raise
        return None

    async def _not_elsewhere(self: SessionManager, session_id: str) -> None:
        """409 ``session_elsewhere`` when another node runs the session (or is taking it
        over): its meta and its log are that node's to change."""
        if await self.live_elsewhere(session_id):
            owner = await self.owner_elsewhere(session_id)
            raise SessionElsewhere(session_id, owner or "(a takeover is under way)")

    async def live_elsewhere(self: SessionManager, session_id: str) -> bool:
        """Another node runs the session, or will (it is live in the index and not here: a
        takeover under way); always False without Redis."""
        if self.node is None or session_id in self._live or not await self.store.has(session_id):
            return False
        return (await self.store.read_meta(session_id)).status != "stopped"

    async def running_elsewhere(self: SessionManager, agent_id: str) -> list[str]:
        """The sessions with ``agent_id`` loaded that are live in the index but not on this
        node (run by another node, or about to be: a takeover); [] without Redis."""
        if self.node is None:
            return []
        metas = await self.store.index.matching(SessionFilter(
            agent_id=agent_id, status=frozenset(s for s in SESSION_STATUSES if s != "stopped")))
        return [meta.session_id for meta in metas if meta.session_id not in self._live]

    async def owner_elsewhere(self: SessionManager, session_id: str) -> str | None:
        """The node that runs ``session_id`` when it is not this one (None: this node, no
        node, or no Redis)."""
        if self.node is None or session_id in self._live:
            return None
        owner = await self.node.leases.owner(session_id)
        return None if owner is None or owner.node_id == self.node.node_id else owner.node_id

    async def take_over(self: SessionManager, session_id: str) -> bool:
        """Resume a session whose owner's lease lapsed (the takeover loop, ``takeover.py``):
        True when this node won it; False when it is held here already or elsewhere."""
        if self._closed or self._owned(session_id) or session_id in self._closing:
            return False
        self._claim(session_id)
        try:
            await self._open(session_id, NewSession(session_id=session_id))
        except SessionElsewhere:
            return False
        finally:
            self._loading.discard(session_id)
        TAKEOVERS.add()
        log.warning("session %s taken over by node %s", session_id,
                    self.node.node_id if self.node else "?")
        return True

    def _serve_commands(self: SessionManager, live: Session) -> None:
        """With ``--redis``: the session's command loop (chats and trigger runs other nodes
        forward to it, ``commands.py``), stopped first by ``Session.stop``."""
        if self.node is None:
            return
        from hive_server.core.redis_forward import CommandLoop  # redis-py: lazy

        async def handle(command: Command) -> dict[str, Any]:
            return await apply(live, command.body, command.request_id)

        async def recovered(command: Command) -> dict[str, Any] | None:
            return await recover(live, command.body, command.request_id)

        live.commands = CommandLoop(self.node.client, live.journal.id, self.node.node_id, handle,
                                    recover=recovered)
        live.commands.start()

    def _lease_lost(self: SessionManager, session_id: str) -> None:
        """The lease keeper gave the session up: stop its work at once, writing nothing
        (another node may already run it; its appends would be refused anyway)."""
        self._drop(session_id, release=False)

    def _watch_log(self: SessionManager, journal: SessionJournal) -> None:
        """With ``--redis``: a session whose log fails (Redis refused or lost an append) is
        dropped and its lease handed back, so that it is resumed from its stream, here or on
        another node (``takeover.py``), instead of answering 503 until a restart."""
        if self.node is not None:
            journal.log.on_failed = partial(self._log_failed, journal)

    def _log_failed(self: SessionManager, journal: SessionJournal, exc: HiveError) -> None:
        live = self._live.get(journal.id)
        if live is None or live.journal is not journal:  # starting (its start fails) or gone
            return
        log.warning("session %s: its log failed (%s); dropped here, to be resumed from its "
                    "stream", journal.id, exc.message)
        self._drop(journal.id, release=not isinstance(exc, LogFenced))

    def _drop(self: SessionManager, session_id: str, *, release: bool) -> None:
        """Stop a session this node can no longer write at once, writing nothing
        (``release``: then hand its lease back)."""
        live = self._live.pop(session_id, None)
        if live is None:
            return
        live.triggers.halt()  # no timer fires from now on (its claims would be refused)
        self.changes.notify()
        self.store.index.remove(session_id)  # its queued meta is not ours to write
        live.journal.on_meta = None
        live.journal.write_meta = _write_nothing

        async def stop() -> None:
            await live.stop("lease_lost", mark_stopped=False, log_stop=False)
            if release:
                await self._release(session_id)

        task = asyncio.create_task(self._exclusive(session_id, stop()),
                                   name=f"drop:{session_id}")
        self._dropping.add(task)  # owned until done (the loop keeps only weak references)
        task.add_done_callback(self._dropping.discard)
        task.add_done_callback(_log_failure)


async def _write_nothing(meta: SessionMeta, directory: object) -> None:
    """The meta writer of a session whose lease is lost."""


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.error("stopping a session this node can no longer write failed", exc_info=exc)
