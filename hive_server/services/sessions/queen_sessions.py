"""A queen's own sessions, as Hive's queen page asks for them: open, new, select.

- ``open``: her newest live session without a colony (``live``); else her newest session on
  disk without a colony, resumed (``resumed``); else a new one (``created``).
- ``new``: always a new session (``created``). Her other live sessions stay live.
- ``select``: one of her sessions by id: ``live`` when it is live, ``resumed`` when it was cold
  and is now live, ``colony`` (with ``colony_id``, and left as it is) when it has a colony,
  because Hive's UI opens such a session on its colony page.

"Newest" is the latest ``loaded_at`` among live sessions (the one last opened, as in Hive) and
the latest ``created_at`` on disk. One lock per queen keeps two concurrent opens from making
two sessions. A session of another queen is ``session_not_found`` (404), as in Hive.
"""

from __future__ import annotations

import asyncio
from typing import Literal

from hive_server.errors import Conflict, NotFound
from hive_server.errors.sessions import InvalidQueenId, NotQueenSession
from hive_server.models.api import QueenSessionBody
from hive_server.models.queen import QueenProfile, is_queen_id
from hive_server.models.responses import QueenSession
from hive_server.models.session import SessionMeta
from hive_server.models.session_query import SessionFilter
from hive_server.services.sessions.manager import NewSession, Session, SessionManager

Status = Literal["live", "resumed", "created", "colony"]


def _answer(session_id: str, queen_id: str, status: Status,
            colony_id: str | None = None) -> QueenSession:
    return QueenSession(session_id=session_id, queen_id=queen_id, status=status,
                        colony_id=colony_id)


class QueenSessions:
    def __init__(self, manager: SessionManager) -> None:
        self.manager = manager
        self._locks: dict[str, asyncio.Lock] = {}  # one per queen id (a bounded set)

    def profile(self, queen_id: str) -> QueenProfile:
        """The queen named by a URL's ``queen_id`` (400 when it is not an id, 404 unknown)."""
        if not is_queen_id(queen_id):
            raise InvalidQueenId(queen_id)
        return self.manager.queens.get(queen_id)

    def _lock(self, queen_id: str) -> asyncio.Lock:
        return self._locks.setdefault(queen_id, asyncio.Lock())

    async def open(self, queen_id: str, body: QueenSessionBody) -> QueenSession:
        """Get or create the queen's session; an ``initial_prompt`` is delivered to it."""
        queen = self.profile(queen_id).id
        async with self._lock(queen):
            live = self._newest_live(queen)
            status: Status = "live"
            if live is None and (cold := await self._newest_cold(queen)) is not None:
                live, status = await self._resume(cold.session_id), "resumed"
            if live is None:
                return await self._create(queen, body)
        if body.initial_prompt:
            await live.queen.deliver(body.initial_prompt)
        return _answer(live.journal.id, queen, status)

    async def new(self, queen_id: str, body: QueenSessionBody) -> QueenSession:
        queen = self.profile(queen_id).id
        async with self._lock(queen):
            return await self._create(queen, body)

    async def select(self, queen_id: str, session_id: str) -> QueenSession:
        queen = self.profile(queen_id).id
        self.manager.store.path(session_id)  # 400 for an id that is not a safe segment
        async with self._lock(queen):
            live = self._live(session_id)
            if live is not None:
                _check_owner(live.journal.meta, queen)
                if live.colony is not None:
                    return _answer(session_id, queen, "colony", live.colony.agent_id)
                return _answer(session_id, queen, "live")
            meta = await self.manager.store.read_meta(session_id)
            _check_owner(meta, queen)
            if meta.agent_id:
                return _answer(session_id, queen, "colony", meta.agent_id)
            await self._resume(session_id)
            return _answer(session_id, queen, "resumed")

    # -- helpers --------------------------------------------------------------------------------
    def _live(self, session_id: str) -> Session | None:
        try:
            return self.manager.get(session_id)
        except NotFound:
            return None

    def _newest_live(self, queen: str) -> Session | None:
        mine = [live for live in self.manager.live()
                if live.journal.meta.queen_id == queen and live.colony is None]
        return max(mine, key=lambda live: live.journal.loaded_at, default=None)

    async def _newest_cold(self, queen: str) -> SessionMeta | None:
        live_ids = {live.journal.id for live in self.manager.live()}
        metas = await self.manager.store.index.matching(SessionFilter(queen_id=queen))
        for meta in metas:  # newest activity first
            if meta.agent_id is not None or meta.session_id in live_ids:
                continue
            if self.manager.is_loading(meta.session_id):  # e.g. resuming at start: never a
                self.manager.get(meta.session_id)  # second session meanwhile; 409 loading
            return meta
        return None

    async def _resume(self, session_id: str) -> Session:
        try:
            return await self.manager.resume(session_id)
        except Conflict as exc:  # made live by someone else meanwhile
            if exc.code != "session_live":
                raise
            return self.manager.get(session_id)

    async def _create(self, queen: str, body: QueenSessionBody) -> QueenSession:
        live = await self.manager.create(NewSession(
            queen_name=queen, initial_prompt=body.initial_prompt,
            initial_phase=body.initial_phase))
        return _answer(live.journal.id, queen, "created")


def _check_owner(meta: SessionMeta, queen: str) -> None:
    if meta.queen_id != queen:
        raise NotQueenSession(meta.session_id, queen)
