"""A session's workspace over HTTP (live or cold): list it, open one file to download.

The rules are the file tools' (``services/tools.confine``): a path is relative, has no
``..``, does not start with ``~``, and does not lead out of the workspace through a symlink.
A file is opened without following a final symlink and must be a regular file (a FIFO or a
device is never opened for reading). Blocking work runs in a thread.
"""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO

from hive_server.errors.backend import SessionElsewhere
from hive_server.errors.sessions import (
    FileUnreadable,
    InvalidPath,
    NotAFile,
    WorkspaceFileNotFound,
)
from hive_server.models.workspace import EntryKind, WorkspaceEntry, WorkspaceListing
from hive_server.services.sessions.lookup import live_or_cold
from hive_server.services.sessions.manager import SessionManager
from hive_server.services.tools.base import ToolError
from hive_server.services.tools.builtins import confine

MAX_ENTRIES = 10_000
CHUNK_BYTES = 64 * 1024


@dataclasses.dataclass(slots=True)
class WorkspaceFile:
    """An open workspace file; ``chunks`` reads ``size`` bytes at most, then closes it."""

    name: str
    size: int
    handle: BinaryIO

    async def chunks(self) -> AsyncIterator[bytes]:
        left = self.size
        try:
            while left > 0:
                chunk = await asyncio.to_thread(self.handle.read, min(CHUNK_BYTES, left))
                if not chunk:
                    return
                left -= len(chunk)
                yield chunk
        finally:
            self.handle.close()


async def workspace_dir(manager: SessionManager, session_id: str) -> Path:
    """The session's workspace folder (``session_not_found`` when the session is not on
    disk); it may not exist yet. A workspace is node-local: on Redis, a session another node
    runs answers 409 ``session_elsewhere`` naming that node."""
    if await live_or_cold(manager, session_id) is None and (
            owner := await manager.owner_elsewhere(session_id)) is not None:
        raise SessionElsewhere(session_id, owner)
    return manager.store.path(session_id) / "workspace"


async def list_workspace(manager: SessionManager, session_id: str) -> WorkspaceListing:
    root = await workspace_dir(manager, session_id)
    entries, truncated = await asyncio.to_thread(_list, root)
    return WorkspaceListing(session_id=session_id, entries=entries, truncated=truncated)


async def open_workspace_file(manager: SessionManager, session_id: str,
                              path: str) -> WorkspaceFile:
    """The file at ``path``: 400 ``invalid_path`` / ``not_a_file``, 404 ``file_not_found``."""
    root = await workspace_dir(manager, session_id)
    return await asyncio.to_thread(_open, root, path)


def _list(root: Path) -> tuple[list[WorkspaceEntry], bool]:
    if not root.is_dir() or root.is_symlink():
        return [], False
    entries: list[WorkspaceEntry] = []
    stack = [root]
    while stack:
        folder = stack.pop()
        for item in sorted(os.scandir(folder), key=lambda e: e.name, reverse=True):
            info = item.stat(follow_symlinks=False)
            kind = _kind(item)
            entries.append(WorkspaceEntry(
                path=Path(item.path).relative_to(root).as_posix(), type=kind,
                size=info.st_size if kind == "file" else None, modified_at=info.st_mtime))
            if len(entries) > MAX_ENTRIES:
                return sorted(entries[:MAX_ENTRIES], key=lambda e: e.path), True
            if kind == "dir":
                stack.append(Path(item.path))
    return sorted(entries, key=lambda e: e.path), False


def _kind(item: os.DirEntry[str]) -> EntryKind:
    if item.is_symlink():
        return "symlink"
    if item.is_dir():
        return "dir"
    return "file" if item.is_file() else "other"


def check_path(root: Path, path: str) -> Path:
    """``path`` inside the workspace ``root`` (resolved), or 400 ``invalid_path``."""
    if "\x00" in path:
        raise InvalidPath("a path must not contain NUL")
    try:
        return confine(root, path)
    except ToolError as exc:
        raise InvalidPath(str(exc)) from None


def _open(root: Path, path: str) -> WorkspaceFile:
    target = check_path(root, path)
    try:
        fd = os.open(target, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ENAMETOOLONG):
            raise WorkspaceFileNotFound(path) from None
        raise FileUnreadable(path, exc.strerror) from None  # ELOOP, EACCES
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise NotAFile(path)
    return WorkspaceFile(target.name, info.st_size, os.fdopen(fd, "rb"))
