"""Durable file primitives (blocking: call them through ``asyncio.to_thread``)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path


def fsync_dir(directory: Path) -> None:
    """Make a create/rename/delete inside ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def aside_path(path: Path, now: datetime) -> Path:
    """A free ``<name>.corrupt-<UTC timestamp>[-n]`` beside ``path``."""
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    backup = path.with_name(f"{path.name}.corrupt-{stamp}")
    count = 1
    while backup.exists():
        count += 1
        backup = path.with_name(f"{path.name}.corrupt-{stamp}-{count}")
    return backup


def keep_aside(path: Path, now: datetime | None = None) -> Path:
    """Rename a corrupt or unreadable ``path`` to ``<name>.corrupt-<UTC timestamp>`` (durable),
    so nothing ever overwrites it; returns the new path."""
    backup = aside_path(path, now or datetime.now(UTC))
    os.rename(path, backup)
    fsync_dir(path.parent)
    return backup


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``: temp file in the same folder, fsync, rename, fsync folder.

    Readers see the old or the new content, never a mix; an existing file keeps its mode.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileNotFoundError):
            os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)
