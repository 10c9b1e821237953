"""The event log's blocking file operations (run in a thread, or at once in ``batch`` and
``none`` mode): open or repair the file for appending, write all of a batch (and fsync it),
and the closing variants the writer uses."""

from __future__ import annotations

import os
from dataclasses import dataclass
from io import FileIO
from pathlib import Path

from hive_server.core.eventlog_reader import open_reader
from hive_server.core.files import fsync_dir
from hive_server.core.stats import timed_fsync


@dataclass(frozen=True, slots=True)
class OpenInfo:
    last_seq: int
    truncated_bytes: int


def open_for_append(path: Path) -> tuple[FileIO, OpenInfo]:
    """Create (and sync the directory entry) or repair the log; return the append handle
    (blocking: ``EventLog.open`` runs it in a thread; ``EventLog.start`` takes its result)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    created = not path.exists()
    file = FileIO(path, "a")
    try:
        if created:
            fsync_dir(path.parent)
        with open_reader(path) as reader:
            assert reader is not None
            end, last = reader.good_end()
            size = reader.size
        if end < size:
            file.truncate(end)
            os.fsync(file.fileno())
    except BaseException:
        file.close()
        raise
    return file, OpenInfo(last.seq if last is not None else 0, size - end)


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
