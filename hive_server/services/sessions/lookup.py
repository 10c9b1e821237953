"""Which state a session is in: loading, live, or cold (only on disk). The routes of one
session resolve it here, so a handler only serialises what it is handed: ``find_session``
for ``GET /api/sessions/{id}`` (202 while loading), ``live_or_cold`` for the routes that serve
a live or a cold session alike (409 ``session_loading`` while loading)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses

from hive_server.core.eventlog import last_seq_file
from hive_server.errors import NotFound
from hive_server.errors.sessions import SessionNotFound
from hive_server.models.session import SessionMeta
from hive_server.services.sessions.manager import Session, SessionManager


@dataclasses.dataclass(frozen=True, slots=True)
class ColdSession:
    """A session on disk that is not live: its meta.json and its log's last seq."""

    meta: SessionMeta
    last_seq: int


@dataclasses.dataclass(frozen=True, slots=True)
class LoadingSession:
    """A session being started, or waiting for its turn in the resume at start."""

    session_id: str


async def find_session(manager: SessionManager,
                       session_id: str) -> Session | ColdSession | LoadingSession:
    """The session ``session_id``: loading, live, or cold (400 ``invalid_session_id`` for an
    unsafe id, 404 ``session_not_found``, 400 ``session_corrupt`` for an unreadable meta)."""
    if manager.is_loading(session_id):
        return LoadingSession(session_id)
    with contextlib.suppress(NotFound):  # a live id is valid: only a cold one's is checked
        return manager.get(session_id)
    path = manager.store.path(session_id)
    meta = await manager.store.read_meta(session_id)
    return ColdSession(meta, await asyncio.to_thread(last_seq_file, path / "events.jsonl"))


async def live_or_cold(manager: SessionManager, session_id: str) -> Session | None:
    """The live session, or None when it is only on disk (``session_not_found`` when neither;
    409 ``session_loading`` while it starts)."""
    try:
        return manager.get(session_id)
    except NotFound:
        if not await asyncio.to_thread(manager.store.exists, session_id):
            raise SessionNotFound(session_id) from None
        return None
