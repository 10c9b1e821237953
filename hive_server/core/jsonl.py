"""Small durable JSON-lines files (the webhook dedup store and inbox, held trigger fires):
append one line with fsync, read every object line back (skipping a torn or junk line), take
and remove a file. Blocking: call them through ``asyncio.to_thread``."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import orjson

from hive_server.core.files import fsync_dir


def append_line(path: Path, line: bytes, max_bytes: int | None = None) -> bool:
    """Append one line and fsync. A torn tail from a crash is sealed with a newline first.

    Returns False (and writes nothing) when the file already holds ``max_bytes``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    created = not path.exists()
    with open(path, "a+b") as f:
        size = f.seek(0, os.SEEK_END)
        if max_bytes is not None and size >= max_bytes:
            return False
        if size:
            f.seek(size - 1)
            if f.read(1) != b"\n":
                f.write(b"\n")
        f.write(line)
        f.flush()
        os.fsync(f.fileno())
    if created:
        fsync_dir(path.parent)
    return True


def read_records(path: Path) -> tuple[list[dict], bool]:
    """Every JSON object line of ``path`` and whether anything (torn, junk) was skipped."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return [], False
    records, damaged = records_of(raw.splitlines())
    return records, damaged or (bool(raw) and not raw.endswith(b"\n"))


def records_of(lines: Iterable[bytes]) -> tuple[list[dict], bool]:
    """Every JSON object among ``lines`` (blank ones ignored) and whether any was skipped."""
    records, damaged = [], False
    for line in lines:
        if not line.strip():
            continue
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            damaged = True
            continue
        if isinstance(record, dict):
            records.append(record)
        else:
            damaged = True
    return records, damaged


def take_records(path: Path) -> list[dict]:
    records, _ = read_records(path)
    if path.exists():
        path.unlink()
        fsync_dir(path.parent)
    return records
