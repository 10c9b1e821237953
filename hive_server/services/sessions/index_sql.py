"""The SQL of the sessions index (blocking; ``SessionIndex`` runs it on its own thread).

``sessions``: one row per session with a readable meta — the meta as JSON plus the columns the
filters and the order use (epoch seconds; ``search`` is the casefolded title and first and last
user messages). ``skipped``: folders without a usable meta (corrupt ones with the copy kept
aside, or a create under way), so that the folders and the index agree. ``state``: whether the
index was closed cleanly. The activity index covers every filter column, so counting and
filtering never read the meta JSON of rows that do not match. ``PRAGMA user_version`` is the
schema; another one is rebuilt.
"""

from __future__ import annotations

import dataclasses
import os
import sqlite3
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from hive_server.models.session import CorruptSession, SessionMeta
from hive_server.models.session_query import Cursor, SessionFilter

SCHEMA_VERSION = 3
SCHEMA = """
CREATE TABLE sessions (
    session_id TEXT PRIMARY KEY, created_at REAL NOT NULL, active_at REAL NOT NULL,
    status TEXT NOT NULL, agent_id TEXT, queen_id TEXT NOT NULL, search TEXT NOT NULL,
    message_count INTEGER, meta TEXT NOT NULL, mtime_ns INTEGER NOT NULL);
CREATE INDEX sessions_by_activity ON sessions (active_at DESC, session_id DESC, status,
    agent_id, queen_id, created_at, search);
CREATE TABLE skipped (session_id TEXT PRIMARY KEY, kept_as TEXT, error TEXT);
CREATE TABLE state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
ORDER = " ORDER BY active_at DESC, session_id DESC"
COLUMNS = ("session_id, created_at, active_at, status, agent_id, queen_id, search, "
           "message_count, meta, mtime_ns")
INSERT = f"INSERT OR REPLACE INTO sessions ({COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)"


@dataclasses.dataclass(frozen=True, slots=True)
class SessionPage:
    metas: list[SessionMeta]
    total: int
    next_cursor: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class AgentUsage:
    session_count: int = 0
    run_count: int = 0  # inputs handed to the queens of its sessions (each one an execution)
    last_active: float | None = None


def epoch(iso: str | None) -> float | None:
    """Epoch seconds of an ISO 8601 time; None when absent or unreadable."""
    if not iso:
        return None
    try:
        return datetime.fromisoformat(iso).timestamp()
    except ValueError:
        return None


def active_epoch(meta: SessionMeta) -> float:
    return epoch(meta.active_iso) or epoch(meta.created_at) or 0.0


# -- connection ------------------------------------------------------------------------------
def connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    return db


def prepare(db: sqlite3.Connection) -> bool:
    """Create the schema when the file is new or of another version; True when it was."""
    if db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
        return False
    with db:
        db.execute("BEGIN")
        for table in ("sessions", "skipped", "state"):
            db.execute(f"DROP TABLE IF EXISTS {table}")
        for statement in SCHEMA.split(";"):
            if statement.strip():
                db.execute(statement)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    return True


def is_clean(db: sqlite3.Connection) -> bool:
    row = db.execute("SELECT value FROM state WHERE key = 'clean'").fetchone()
    return row is not None and row[0] == "1"


def set_clean(db: sqlite3.Connection, clean: bool) -> None:
    db.execute("INSERT OR REPLACE INTO state VALUES ('clean', ?)", ("1" if clean else "0",))


# -- writes ----------------------------------------------------------------------------------
def meta_mtime(root: Path, session_id: str) -> int:
    """The ``meta.json``'s mtime (ns), 0 when it is not there: a row whose file changed since
    (edited by hand while the server was stopped) is read again at the next open."""
    try:  # os.path, not pathlib: a rebuild calls this once per session
        return os.stat(os.path.join(root, session_id, "meta.json")).st_mtime_ns
    except OSError:
        return 0


def search_text(meta: SessionMeta) -> str:
    """What ``q`` looks in: the title, the first and the last user message, casefolded."""
    return "\n".join(text for text in (meta.title, meta.first_message, meta.last_message)
                     if text).casefold()


def _row(meta: SessionMeta, mtime_ns: int) -> tuple[object, ...]:
    return (meta.session_id, epoch(meta.created_at) or 0.0, active_epoch(meta), meta.status,
            meta.agent_id, meta.queen_id, search_text(meta), meta.message_count,
            meta.model_dump_json(), mtime_ns)


def remove_many(db: sqlite3.Connection, ids: Iterable[str]) -> None:
    with db:
        db.execute("BEGIN")
        for table in ("sessions", "skipped"):
            db.executemany(f"DELETE FROM {table} WHERE session_id = ?", [(i,) for i in ids])


def clear(db: sqlite3.Connection) -> None:
    with db:
        db.execute("BEGIN")
        db.execute("DELETE FROM sessions")
        db.execute("DELETE FROM skipped")


def add_loaded(db: sqlite3.Connection, root: Path,
               found: Iterable[tuple[str, SessionMeta | CorruptSession | None]]) -> None:
    """Rows for folders just read: a meta, a corrupt one (kept aside), or none yet."""
    rows, skipped = [], []
    for name, item in found:
        if isinstance(item, SessionMeta):
            rows.append(_row(item, meta_mtime(root, name)))
        elif item is not None:
            skipped.append((name, item.kept_as, item.error))
        else:
            skipped.append((name, None, None))
    with db:
        db.execute("BEGIN")
        db.executemany("DELETE FROM skipped WHERE session_id = ?", [(r[0],) for r in rows])
        db.executemany(INSERT, rows)
        db.executemany("DELETE FROM sessions WHERE session_id = ?", [(s[0],) for s in skipped])
        db.executemany("INSERT OR REPLACE INTO skipped VALUES (?, ?, ?)", skipped)


# -- reads -----------------------------------------------------------------------------------
def known_ids(db: sqlite3.Connection) -> set[str]:
    rows = db.execute("SELECT session_id FROM sessions UNION SELECT session_id FROM skipped")
    return {row[0] for row in rows}


def changed_ids(db: sqlite3.Connection, root: Path) -> set[str]:
    """The rows whose ``meta.json`` changed on disk since they were written."""
    rows = db.execute("SELECT session_id, mtime_ns FROM sessions")
    return {name for name, mtime in rows if meta_mtime(root, name) != mtime}


def where(condition: SessionFilter) -> tuple[str, list[object]]:
    """The WHERE clause (with a leading space, or empty) and its parameters."""
    clauses: list[str] = []
    params: list[object] = []
    if condition.status:
        clauses.append(f"status IN ({','.join('?' * len(condition.status))})")
        params.extend(sorted(condition.status))
    for column in ("agent_id", "queen_id"):
        if (value := getattr(condition, column)) is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    for name, column, op in (("created_after", "created_at", ">="),
                             ("created_before", "created_at", "<="),
                             ("active_after", "active_at", ">="),
                             ("active_before", "active_at", "<=")):
        if (bound := getattr(condition, name)) is not None:
            clauses.append(f"{column} {op} ?")
            params.append(bound)
    if condition.q:
        clauses.append("instr(search, ?) > 0")
        params.append(condition.q.casefold())
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def query(db: sqlite3.Connection,
          args: tuple[SessionFilter, int, str | None, int | None]) -> SessionPage:
    condition, limit, cursor, page = args
    clause, params = where(condition)
    total = db.execute(f"SELECT COUNT(*) FROM sessions{clause}", params).fetchone()[0]
    keyset, offset = clause, 0
    if cursor is not None:
        after = Cursor.decode(cursor)
        keyset += (" AND " if clause else " WHERE ") + (
            "(active_at < ? OR (active_at = ? AND session_id < ?))")
        params = [*params, after.active, after.active, after.session_id]
    elif page is not None:
        offset = (page - 1) * limit
    rows = db.execute(f"SELECT meta, active_at FROM sessions{keyset}{ORDER} LIMIT ? OFFSET ?",
                      [*params, limit + 1, offset]).fetchall()
    metas = [SessionMeta.model_validate_json(row[0]) for row in rows[:limit]]
    more = len(rows) > limit
    last = rows[limit - 1] if more else None
    return SessionPage(metas, total, Cursor(active=last[1], session_id=metas[-1].session_id)
                       .encode() if last is not None else None)


def matching(db: sqlite3.Connection, condition: SessionFilter) -> list[SessionMeta]:
    clause, params = where(condition)
    rows = db.execute(f"SELECT meta FROM sessions{clause}{ORDER}", params)
    return [SessionMeta.model_validate_json(row[0]) for row in rows]


def usage_by_agent(db: sqlite3.Connection, _: None = None) -> dict[str, AgentUsage]:
    rows = db.execute("SELECT agent_id, COUNT(*), SUM(COALESCE(message_count, 0)), "
                      "MAX(active_at) FROM sessions WHERE agent_id IS NOT NULL GROUP BY agent_id")
    return {agent: AgentUsage(count, runs, last) for agent, count, runs, last in rows}


def corrupt(db: sqlite3.Connection, _: None = None) -> list[CorruptSession]:
    rows = db.execute("SELECT session_id, kept_as, error FROM skipped "
                      "WHERE kept_as IS NOT NULL ORDER BY kept_as DESC")
    return [CorruptSession(session_id=name, kept_as=kept, error=error or "")
            for name, kept, error in rows]
