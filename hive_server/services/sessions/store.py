"""Sessions on disk: ``$HIVE_HOME/sessions/<id>/{meta.json, events.jsonl, workspace/}``.

Every path is built from a validated id (a single safe segment), so nothing outside the
sessions directory is ever read or removed. A ``meta.json`` that is corrupt or unreadable is
kept aside (``meta.json.corrupt-<UTC timestamp>``), logged, listed by ``scan`` and answered
``session_corrupt``; it is never replaced by a new session's meta.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import shutil
from collections.abc import Iterable
from io import FileIO
from pathlib import Path

from hive_server.core.eventlog import (
    Durability,
    EventLog,
    OpenInfo,
    last_seq_file,
    open_for_append,
)
from hive_server.core.files import keep_aside, write_atomic
from hive_server.errors.sessions import InvalidSessionId, SessionCorrupt, SessionNotFound
from hive_server.models.session import CorruptSession, SessionMeta, is_safe_id
from hive_server.services.journal.journal import utc_iso, write_meta_file
from hive_server.services.runtime.conversation import Rebuilt, rebuild_from_open
from hive_server.services.sessions.index import SessionIndex
from hive_server.services.sessions.log_reads import FileReads
from hive_server.services.triggers.session_triggers import TriggerFiles, read_trigger_files

log = logging.getLogger(__name__)
META = "meta.json"


@dataclasses.dataclass(frozen=True, slots=True)
class SessionFiles:
    """What a session's open reads or creates on disk (``SessionStore.open_files``)."""

    log: tuple[FileIO, OpenInfo] | None  # the log opened for appending (``EventLog.start``;
    # None: a backend whose log opens itself, ``store_redis.py``)
    history: Rebuilt  # the conversation as the log holds it (empty for a new session)
    triggers: TriggerFiles  # the triggers' saved state (for ``SessionTriggers.start``)

    def close(self) -> None:
        """Close the log when no session took it (a resume that did not happen)."""
        if self.log is not None:
            self.log[0].close()


Opened = SessionFiles | Exception  # a session's files, or why they could not be opened


class SessionStore:
    """The file backend (see the module docstring); ``store_redis.RedisSessionStore`` has the
    same surface."""

    backend = "file"

    def __init__(self, home: Path):
        self.root = home / "sessions"
        self.index = SessionIndex(home, self.root, self._load)  # follows every meta change
        self.reads = FileReads(self.root)  # history pages, exports, cold totals

    def path(self, session_id: str) -> Path:
        """The session's folder: always a child of the sessions folder (a safe id is one
        segment that starts with a letter or digit, so never ``.``, ``..`` nor a path)."""
        if not is_safe_id(session_id):
            raise InvalidSessionId(session_id)
        return self.root / session_id

    def exists(self, session_id: str) -> bool:
        """A session is on disk: its ``meta.json``, or one kept aside as corrupt (so a create
        of that id answers ``session_corrupt`` instead of starting over its log)."""
        folder = self.path(session_id)
        return (folder / META).is_file() or _kept_metas(folder) != []

    async def has(self, session_id: str) -> bool:
        """``exists`` in a thread."""
        self.path(session_id)
        return await asyncio.to_thread(self.exists, session_id)

    async def last_seq(self, session_id: str) -> int:
        return await asyncio.to_thread(last_seq_file, self.path(session_id) / "events.jsonl")

    write_meta = staticmethod(write_meta_file)  # a live session's (``SessionJournal``)

    def new_log(self, session_id: str, durability: Durability, lease: object) -> EventLog:
        """The session's log, not yet open (``lease``: the Redis backend's; unused here)."""
        return EventLog(self.path(session_id) / "events.jsonl", durability)

    def under_lease(self, triggers: object, lease: object) -> None:
        """Nothing: a file session has no lease (``store_redis.py``'s runs its triggers as the
        lease's holder)."""

    async def start_log(self, event_log: EventLog, files: SessionFiles) -> OpenInfo:
        assert files.log is not None
        return event_log.start(files.log)

    async def read_meta(self, session_id: str) -> SessionMeta:
        """The session's meta: 404 ``session_not_found``; 400 ``session_corrupt`` when its
        ``meta.json`` is corrupt or unreadable (kept aside, see ``_load``)."""
        found = await asyncio.to_thread(self._load, self.path(session_id))
        if found is None:
            raise SessionNotFound(session_id)
        if isinstance(found, CorruptSession):
            self.index.mark_corrupt(found)
            raise SessionCorrupt(session_id, found.kept_as, found.error)
        return found

    async def update(self, session_id: str, changes: dict[str, object]) -> SessionMeta:
        """Rewrite a session's ``meta.json`` atomically with ``changes`` (meta fields; errors
        as ``read_meta``). Only for a session that is not live: a live one owns its meta."""
        meta = await self.read_meta(session_id)
        meta = meta.model_copy(update={**changes, "updated_at": utc_iso()})
        await asyncio.to_thread(write_atomic, self.path(session_id) / META,
                                meta.model_dump_json(indent=2).encode())
        self.index.put(meta)
        return meta

    async def open_files(self, session_id: str, resumed: bool,
                         opened: Opened | None = None) -> SessionFiles:
        """In one thread hop: the workspace folder made, ``events.jsonl`` opened for
        appending (created, or a torn tail cut), for a resume the conversation rebuilt from
        it, and the triggers' saved state read. ``opened``: what the boot's resume read
        already (``live_opened``): returned as it is, or its error raised."""
        if isinstance(opened, Exception):
            raise opened
        if opened is not None:
            return opened
        return await asyncio.to_thread(_open_files, self.path(session_id), resumed)

    async def list_metas(self) -> list[tuple[SessionMeta, int]]:
        """Every session folder with a readable meta.json, with its last seq; newest first."""
        return (await self.scan())[0]

    async def scan(self) -> tuple[list[tuple[SessionMeta, int]], list[CorruptSession]]:
        """``list_metas`` and the sessions whose meta.json is corrupt (kept aside)."""
        return await asyncio.to_thread(self._scan)

    def _scan(self) -> tuple[list[tuple[SessionMeta, int]], list[CorruptSession]]:
        if not self.root.is_dir():
            return [], []
        found: list[tuple[SessionMeta, int]] = []
        corrupt: list[CorruptSession] = []
        for name in self.folders():
            child = self.root / name
            meta = self._load(child)
            if isinstance(meta, CorruptSession):
                corrupt.append(meta)
            elif meta is not None:
                found.append((meta, last_seq_file(child / "events.jsonl")))
        found.sort(key=lambda item: item[0].created_at, reverse=True)
        corrupt.sort(key=lambda item: item.kept_as, reverse=True)
        return found, corrupt

    def folders(self) -> list[str]:
        """The names of the session folders (blocking: call it in a thread)."""
        if not self.root.is_dir():
            return []
        with os.scandir(self.root) as entries:  # the type from the listing: no stat per folder
            return [entry.name for entry in entries
                    if entry.is_dir(follow_symlinks=False) and is_safe_id(entry.name)]

    def live_among(self, names: Iterable[str]) -> list[SessionMeta]:
        """The metas of those of the session folders ``names`` that were live at the last
        stop (their ``meta.json`` is not ``stopped``; blocking: call it in a thread)."""
        return [meta for name in names
                if isinstance(meta := self._load(self.root / name), SessionMeta)
                and meta.status != "stopped"]

    def live_opened(self, names: Iterable[str]) -> list[tuple[SessionMeta, Opened]]:
        """``live_among``, each live session with its files opened for its resume (the boot's
        resume opens a chunk of sessions in one thread hop; a session whose files could not
        be opened comes with the error, which fails its resume alone)."""
        opened: list[tuple[SessionMeta, Opened]] = []
        for meta in self.live_among(names):
            try:
                opened.append((meta, _open_files(self.root / meta.session_id, True)))
            except Exception as exc:  # handed to that session's resume, which fails with it
                opened.append((meta, exc))
        return opened

    def _load(self, folder: Path) -> SessionMeta | CorruptSession | None:
        """The folder's meta (blocking). A corrupt or unreadable ``meta.json`` is renamed to
        ``meta.json.corrupt-<UTC timestamp>`` and logged (once: the copy is what is found
        later); None when the folder has no meta at all (a create under way)."""
        path = folder / META
        try:
            return _own(SessionMeta.model_validate_json(path.read_bytes()), folder.name)
        except FileNotFoundError:
            return _corrupt(folder)
        except (ValueError, IsADirectoryError, PermissionError) as exc:
            try:
                kept = keep_aside(path)
            except FileNotFoundError:  # another reader kept it aside just now
                return _corrupt(folder)
            log.warning("session %s: meta.json is corrupt or unreadable (%s); kept as %s; the "
                        "session cannot be opened (delete it, or repair the file and rename it "
                        "back)", folder.name, _describe(exc), kept.name)
            return _corrupt(folder)

    async def delete(self, session_id: str) -> None:
        path = self.path(session_id)
        if not path.is_dir() or path.is_symlink():
            raise SessionNotFound(session_id)
        await asyncio.to_thread(shutil.rmtree, path)
        self.index.remove(session_id)


def _open_files(folder: Path, resumed: bool) -> SessionFiles:
    (folder / "workspace").mkdir(parents=True, exist_ok=True)
    opened = open_for_append(folder / "events.jsonl")  # a torn tail cut first
    try:
        history = rebuild_from_open(opened[0]) if resumed else Rebuilt([], [])
        triggers = read_trigger_files(folder)
    except BaseException:
        opened[0].close()
        raise
    return SessionFiles(opened, history, triggers)


def _own(meta: SessionMeta, session_id: str) -> SessionMeta:
    """The folder name is the id (a copied folder is a session of its own, never a second
    writer of the session it was copied from)."""
    if meta.session_id == session_id:
        return meta
    return meta.model_copy(update={"session_id": session_id})


def _kept_metas(folder: Path) -> list[Path]:
    return sorted(folder.glob(f"{META}.corrupt-*"))


def _corrupt(folder: Path) -> CorruptSession | None:
    """The session as its newest kept-aside meta.json shows it, or None when there is none."""
    kept = _kept_metas(folder)
    if not kept:
        return None
    try:
        SessionMeta.model_validate_json(kept[-1].read_bytes())
        error = "kept aside as corrupt"
    except (ValueError, OSError) as exc:
        error = _describe(exc)
    return CorruptSession(session_id=folder.name, kept_as=kept[-1].name, error=error)


def _describe(exc: Exception) -> str:
    if isinstance(exc, OSError):
        return f"unreadable: {exc.strerror}"
    return " ".join(str(exc).split())[:500]
