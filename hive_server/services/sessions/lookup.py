"""Which state a session is in, as ``GET /api/sessions/{id}`` answers it: loading, live, or
cold (only on disk). One resolution, so a handler only serialises what it is handed."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses

from hive_server.core.eventlog import last_seq_file
from hive_server.errors import NotFound
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
