"""Which state a session is in: loading, live, or cold (only on disk). The routes of one
session resolve it here, so a handler only serialises what it is handed: ``find_session``
for ``GET /api/sessions/{id}`` (202 while loading), ``live_or_cold`` for the routes that serve
a live or a cold session alike (409 ``session_loading`` while loading).

On the Redis backend (``--redis``) a session may also be live on another node, or live with
no owner for a moment (its owner died and a takeover is under way): ``find_session`` answers
it as a ``RemoteSession`` (its meta and log's last seq read from Redis, the owner's node id),
and ``live_or_cold`` as None, so the routes read it from Redis as they read a cold session.
"""

from __future__ import annotations

import contextlib
import dataclasses

from hive_server.errors import NotFound
from hive_server.errors.backend import SessionElsewhere
from hive_server.errors.sessions import SessionLoading, SessionNotFound, SessionNotLive
from hive_server.models.session import SessionMeta, is_safe_id
from hive_server.services.sessions.manager import Session, SessionManager


@dataclasses.dataclass(frozen=True, slots=True)
class ColdSession:
    """A session on disk that is not live: its meta.json and its log's last seq."""

    meta: SessionMeta
    last_seq: int


@dataclasses.dataclass(frozen=True, slots=True)
class RemoteSession:
    """A session live on another node (Redis backend): its meta and log's last seq as Redis
    holds them, and the owner's node id (None while a takeover is under way)."""

    meta: SessionMeta
    last_seq: int
    node_id: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class LoadingSession:
    """A session being started, or waiting for its turn in the resume at start."""

    session_id: str


NOT_HERE = (NotFound, SessionElsewhere)  # ``manager.get`` of a session this node does not run
Found = Session | ColdSession | RemoteSession | LoadingSession


async def find_session(manager: SessionManager, session_id: str) -> Found:
    """The session ``session_id``: loading, live (here or, on Redis, on another node), or
    cold (400 ``invalid_session_id`` for an unsafe id, 404 ``session_not_found``, 400
    ``session_corrupt`` for an unreadable meta)."""
    if manager.is_loading(session_id):
        return LoadingSession(session_id)
    live = manager.live_one(session_id)  # a live id is valid: only a cold one's is checked
    if live is not None:
        return live
    meta = await manager.store.read_meta(session_id)
    last_seq = await manager.store.last_seq(session_id)
    if live_elsewhere(manager, meta):
        return RemoteSession(meta, last_seq, await manager.owner_elsewhere(session_id))
    return ColdSession(meta, last_seq)


def live_elsewhere(manager: SessionManager, meta: SessionMeta) -> bool:
    """On Redis, a session this node does not run that the index shows as live: another node
    runs it, or will once its takeover is done. (With files, a meta that is not ``stopped``
    on a session that is not live is one a crash left: cold.)"""
    return manager.store.backend == "redis" and meta.status != "stopped"


async def live_or_cold(manager: SessionManager, session_id: str) -> Session | None:
    """The live session, or None when it is only on disk, or (Redis) live on another node
    (``session_not_found`` when neither; 409 ``session_loading`` while it starts)."""
    try:
        return manager.get(session_id)
    except NOT_HERE:
        if not await manager.store.has(session_id):
            raise SessionNotFound(session_id) from None
        return None


async def fed_session(manager: SessionManager, session_id: str) -> Session | None:
    """On Redis, a session whose events this node streams from Redis (``RedisFeed``): the
    ``Session`` when this node runs it (its queen's snapshot opens a stream with no cursor),
    None when the index shows it live and another node runs it, or none does yet (a takeover
    under way, here or elsewhere). 404 ``session_not_live`` when it is not live anywhere, 409
    ``session_loading`` while it is created or resumed here from stopped."""
    loading = False
    try:
        return manager.get(session_id)
    except SessionLoading:
        loading = True
    except NOT_HERE:
        pass
    if is_safe_id(session_id):
        with contextlib.suppress(NotFound):
            if live_elsewhere(manager, await manager.store.read_meta(session_id)):
                return None
    if loading:
        raise SessionLoading(session_id)
    raise SessionNotLive(session_id)


async def remote_sessions(manager: SessionManager) -> list[RemoteSession]:
    """On Redis, the sessions live on other nodes (or being taken over), as the index holds
    them; [] with files."""
    if manager.store.backend != "redis":
        return []
    local = {live.journal.id for live in manager.live()}
    found = []
    for session_id in sorted(await manager.store.live_ids() - local):
        with contextlib.suppress(NotFound):  # deleted meanwhile
            meta = await manager.store.read_meta(session_id)
            if live_elsewhere(manager, meta):
                found.append(RemoteSession(meta, await manager.store.last_seq(session_id),
                                           await manager.owner_elsewhere(session_id)))
    return found
