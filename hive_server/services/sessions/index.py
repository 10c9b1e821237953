"""The sessions index: one SQLite row per session, so lists never read every ``meta.json``.

``$HIVE_HOME/sessions.sqlite3`` (WAL) holds each session's meta (as JSON) and the columns the
filters and the order need (``session_index_sql``). It is a cache of the ``meta.json`` files,
never the truth: it is rebuilt from them when it is missing, corrupt (kept aside as
``sessions.sqlite3.corrupt-<UTC timestamp>`` and logged), of another schema, or was not closed
cleanly (a crash may have lost the last changes); after a clean stop only the difference
between the session folders and the rows is read (a folder copied in or removed by hand).

Every use runs on one dedicated thread, in order: ``put``/``remove`` (called by whoever changes
a meta, in memory or on disk) are queued without waiting, and a query queued after them sees
them. The changes queued while the thread is busy are written together, in one transaction
(the last change of each session: a shutdown of 10,000 sessions is not 10,000 transactions).
``close`` (the app's cleanup) drains the queue and marks the index clean.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from hive_server.core.files import keep_aside
from hive_server.models.session import CorruptSession, SessionMeta, is_safe_id
from hive_server.models.session_query import SessionFilter
from hive_server.services.sessions import index_sql as sql
from hive_server.services.sessions.index_sql import AgentUsage, SessionPage

log = logging.getLogger(__name__)
INDEX_FILE = "sessions.sqlite3"
T = TypeVar("T")
R = TypeVar("R")
Loader = Callable[[Path], SessionMeta | CorruptSession | None]
Change = SessionMeta | CorruptSession | None  # a session's row, or None: removed


class SessionIndex:
    """The index of the sessions under ``root``; ``load`` reads one folder's meta."""

    def __init__(self, home: Path, root: Path, load: Loader):
        self.path = home / INDEX_FILE
        self.root = root
        self._load = load
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="session-index")
        self._db: sqlite3.Connection | None = None
        self._closed = False
        self._root_mtime = 0  # of the sessions folder when the rows last matched its folders
        self._changes: dict[str, Change] = {}  # queued, not yet written (``_change``)
        self._changes_lock = threading.Lock()  # the index thread takes them
        self._write_queued = False

    # -- writes (queued, never awaited) -------------------------------------------------------
    def put(self, meta: SessionMeta) -> None:
        """Queue the row of ``meta`` (a new or changed session)."""
        self._change(meta.session_id, meta)

    def remove(self, session_id: str) -> None:
        self._change(session_id, None)

    def mark_corrupt(self, found: CorruptSession) -> None:
        """A meta.json found corrupt (kept aside) while the server runs."""
        self._change(found.session_id, found)

    def _change(self, session_id: str, row: Change) -> None:
        """Queue a session's change (None: its removal); one write takes every change queued
        before it runs (the last one of each session)."""
        with self._changes_lock:
            self._changes[session_id] = row
            if self._write_queued:
                return
            self._write_queued = True
        self._queue(self._write_changes, None)

    def _write_changes(self, db: sqlite3.Connection, _: None) -> None:
        with self._changes_lock:
            changes, self._changes, self._write_queued = self._changes, {}, False
        if removed := [session_id for session_id, row in changes.items() if row is None]:
            sql.remove_many(db, removed)
        if rows := [item for item in changes.items() if item[1] is not None]:
            sql.add_loaded(db, self.root, rows)

    def _queue(self, work: Callable[[sqlite3.Connection, T], None], arg: T) -> None:
        if not self._closed:
            self._pool.submit(self._logged, work, arg)

    def _logged(self, work: Callable[[sqlite3.Connection, T], None], arg: T) -> None:
        """A queued write: nobody waits for it, so its failure is logged here (the index
        then misses a change until its next rebuild; the meta.json files stay the truth)."""
        try:
            self._guarded(work, arg)
        except Exception:  # the index thread's boundary: logged, the meta.json stays the truth
            log.exception("sessions index: a change could not be written")

    # -- reads --------------------------------------------------------------------------------
    async def query(self, where: SessionFilter, limit: int, cursor: str | None = None,
                    page: int | None = None) -> SessionPage:
        """One page of the sessions matching ``where``, newest activity first, with the
        total and the next cursor (None on the last page). ``cursor`` is a previous page's
        ``next_cursor`` (400 ``invalid_query`` otherwise); ``page`` (1-based) instead."""
        return await self._run(sql.query, (where, limit, cursor, page))

    async def matching(self, where: SessionFilter) -> list[SessionMeta]:
        """Every session matching ``where``, newest activity first."""
        return await self._run(sql.matching, where)

    async def usage_by_agent(self) -> dict[str, AgentUsage]:
        """Per agent id: its sessions, the inputs handed to them, the last activity."""
        return await self._run(sql.usage_by_agent, None)

    async def corrupt(self) -> list[CorruptSession]:
        """The sessions whose meta.json was found corrupt (kept aside)."""
        return await self._run(sql.corrupt, None)

    async def _run(self, work: Callable[[sqlite3.Connection, T], R], arg: T) -> R:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._read, work, arg)

    def _read(self, work: Callable[[sqlite3.Connection, T], R], arg: T) -> R:
        """A read, after catching up with folders added or removed (by hand, or by a copy)
        when the sessions folder changed since the last look: one ``stat`` per read."""
        mtime = _mtime(self.root)
        if mtime != self._root_mtime:
            self._guarded(lambda db, _: self._sync_folders(db), None)
            self._root_mtime = mtime
        return self._guarded(work, arg)

    # -- life ---------------------------------------------------------------------------------
    async def open(self) -> None:
        """Open (and rebuild or catch up) now, and wait for it."""
        await self._run(_nothing, None)

    def warm(self) -> None:
        """Queue the open (and rebuild or catch up) without waiting: the first query waits."""
        self._queue(_nothing, None)

    async def close(self) -> None:
        """Apply what is queued, mark the index clean and close it."""
        if self._closed:
            return
        self._closed = True
        await asyncio.get_running_loop().run_in_executor(self._pool, self._close_now)
        self._pool.shutdown(wait=False)

    def _close_now(self) -> None:
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                sql.set_clean(self._db, True)
            self._db.close()
            self._db = None

    # -- on the index thread ------------------------------------------------------------------
    def _guarded(self, work: Callable[[sqlite3.Connection, T], R], arg: T) -> R:
        """``work`` on the open index; a corrupt index is kept aside, rebuilt, and ``work``
        tried once more (other errors, a full disk say, are raised as they are)."""
        try:
            return work(self._connection(), arg)
        except sqlite3.DatabaseError as exc:
            if not _is_corrupt(exc):
                raise
            self._set_aside(exc)
            return work(self._connection(), arg)

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            try:
                self._db = self._open_now()
            except sqlite3.DatabaseError as exc:
                if not _is_corrupt(exc):
                    raise
                self._set_aside(exc)
                self._db = self._open_now()
        return self._db

    def _open_now(self) -> sqlite3.Connection:
        db = sql.connect(self.path)
        try:
            fresh = sql.prepare(db)
            if fresh or not sql.is_clean(db):
                self._rebuild(db, "new or not closed cleanly" if not fresh else "new")
            else:
                self._catch_up(db)
            sql.set_clean(db, False)
        except BaseException:
            db.close()
            raise
        return db

    def _set_aside(self, exc: sqlite3.DatabaseError) -> None:
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None
        kept = keep_aside(self.path) if self.path.exists() else None
        for extra in ("-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{self.path}{extra}")
        log.warning("the sessions index %s is corrupt (%s); kept as %s; rebuilding it from "
                    "the meta.json files", self.path, exc, kept.name if kept else "-")

    def _folders(self) -> set[str]:
        if not self.root.is_dir():
            return set()
        with os.scandir(self.root) as entries:
            return {entry.name for entry in entries
                    if entry.is_dir(follow_symlinks=False) and is_safe_id(entry.name)}

    def _rebuild(self, db: sqlite3.Connection, why: str) -> None:
        self._root_mtime = _mtime(self.root)  # before the scan: a folder added meanwhile shows
        folders = self._folders()
        if folders:  # a first start (no sessions yet) is not news
            log.info("sessions index: rebuilding from %d session folders (%s)", len(folders), why)
        sql.clear(db)
        self._add(db, folders)

    def _catch_up(self, db: sqlite3.Connection) -> None:
        """After a clean stop: rows for folders added by hand, none for folders removed,
        rows read again for the ``meta.json`` files changed since."""
        self._root_mtime = _mtime(self.root)
        folders, known = self._folders(), sql.known_ids(db)
        changed = sql.changed_ids(db, self.root) & folders
        if folders != known or changed:
            log.info("sessions index: %d folder(s) without a row, %d row(s) without a folder, "
                     "%d meta.json changed", len(folders - known), len(known - folders),
                     len(changed))
            sql.remove_many(db, known - folders)
            self._add(db, (folders - known) | changed)

    def _sync_folders(self, db: sqlite3.Connection) -> None:
        folders, known = self._folders(), sql.known_ids(db)
        sql.remove_many(db, known - folders)
        self._add(db, folders - known)

    def _add(self, db: sqlite3.Connection, names: set[str]) -> None:
        found = [(name, self._load(self.root / name)) for name in sorted(names)]
        sql.add_loaded(db, self.root, found)


def _nothing(db: sqlite3.Connection, arg: None) -> None:
    """A job that only makes the index thread open the index."""


def _is_corrupt(exc: sqlite3.DatabaseError) -> bool:
    """Not a database, or a damaged one (a locked or full one is not corrupt)."""
    return exc.sqlite_errorcode in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)


def _mtime(folder: Path) -> int:
    try:
        return os.stat(folder).st_mtime_ns
    except OSError:
        return 0
