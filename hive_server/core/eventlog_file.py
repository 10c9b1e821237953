"""The event log's blocking file operations (run in a thread, or at once in ``batch`` and
``none`` mode): open or repair the file for appending, write all of a batch (and fsync it),
and the closing variants the writer uses."""

from __future__ import annotations

import os
from dataclasses import dataclass
from io import FileIO
from pathlib import Path

from hive_server.core.eventlog_reader import BLOCK_SIZE, LogReader
from hive_server.core.files import fsync_dir
from hive_server.core.stats import timed_fsync


@dataclass(frozen=True, slots=True)
class OpenInfo:
    last_seq: int
    truncated_bytes: int


def open_for_append(path: Path) -> tuple[FileIO, OpenInfo]:
    """Create (and sync the directory entry) or repair the log; return the append handle
    (blocking: ``EventLog.open`` runs it in a thread; ``EventLog.start`` takes its result).

    The handle is opened once, for appending and reading (``a+``: every write still goes to
    the end): the repair reads the tail through it, and a resume rebuilds the conversation
    from it (``rebuild_from_open``) without opening the file again."""
    try:
        file, created = FileIO(path, "a+", opener=_existing), False
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        file, created = FileIO(path, "a+"), True
    try:
        if created:
            fsync_dir(path.parent)
        reader = LogReader(file, BLOCK_SIZE, path)
        end, last = reader.good_end()
        if end < reader.size:
            file.truncate(end)
            os.fsync(file.fileno())
    except BaseException:
        file.close()
        raise
    return file, OpenInfo(last.seq if last is not None else 0, reader.size - end)


def _existing(path: str, flags: int) -> int:
    """Open without creating (a missing log raises ``FileNotFoundError``: it is created, and
    its directory entry synced, by ``open_for_append``)."""
    return os.open(path, flags & ~os.O_CREAT)


def write_all(file: FileIO, data: bytes, fsync: bool) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(file.fileno(), view) :]
    if fsync:
        timed_fsync(file.fileno())


def write_sync_close(file: FileIO, data: bytes, fsync: bool) -> None:
    try:
        write_all(file, data, fsync)
    finally:
        file.close()


def reopen_and_write(path: Path, data: bytes, fsync: bool, close: bool) -> FileIO | None:
    """Open the log again for appending and write ``data`` (one thread hop for both); with
    ``close``, then fsync and close it (None returned)."""
    file = FileIO(path, "a")
    if close:
        write_sync_close(file, data, fsync)
        return None
    try:
        write_all(file, data, fsync)
    except BaseException:
        file.close()
        raise
    return file


def sync_and_close(file: FileIO, unsynced: bool) -> None:
    try:
        if unsynced:
            os.fsync(file.fileno())
    finally:
        file.close()
