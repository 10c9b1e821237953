"""``hive-server check-log``: find the bad lines of an ``events.jsonl``, and repair it.

``scan`` reads the whole file once, forward, and takes the same decisions as every reader
(``eventlog_lines``): each line that is not a kept event is a problem (its offset, length and
kind), and so are a torn tail, seqs missing between kept events and duplicated seqs. The
decision itself is ``judge``, over (offset, bytes) lines from any backend (``export-session``
uses it too).
``repair`` never edits the log in place: it writes the kept lines, byte for byte, to a copy
beside it, fsyncs it, keeps the original as ``events.jsonl.corrupt-<UTC timestamp>`` (a hard
link) and renames the copy over ``events.jsonl`` (atomic), then fsyncs the folder.
Blocking: an offline tool, run while no server holds the home.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TextIO

from hive_server.core.eventlog_lines import Line, bad_kind, classify, to_line
from hive_server.core.eventlog_reader import LogReader, open_reader
from hive_server.core.files import aside_path, fsync_dir

LOG_NAME = "events.jsonl"


@dataclasses.dataclass(frozen=True, slots=True)
class Problem:
    """``kind``: blank, nul, invalid_utf8, invalid_json, not_an_event, duplicate_seq,
    seq_out_of_order, torn_tail (bytes after the last newline) or seq_gap (length 0, at the
    event after the gap)."""

    offset: int
    length: int
    kind: str
    detail: str = ""

    def describe(self) -> str:
        where = f"offset {self.offset}, {self.length} bytes: {self.kind}"
        return f"{where} ({self.detail})" if self.detail else where


@dataclasses.dataclass(frozen=True, slots=True)
class Report:
    path: Path
    kept: list[tuple[int, int]]  # (offset, length with the newline) of each kept line
    last_seq: int
    problems: list[Problem]

    @property
    def clean(self) -> bool:
        return not self.problems

    @property
    def fixable(self) -> bool:
        """Whether a clean copy would differ (a seq gap alone cannot be repaired)."""
        return any(problem.kind != "seq_gap" for problem in self.problems)


def _lines(pieces: Iterable[tuple[int, bytes]], kinds: dict[int, str]) -> Iterator[Line]:
    for start, raw in pieces:
        line = to_line(start, raw)
        if not line.seq:
            kinds[start] = bad_kind(raw)
        yield line


def judge(pieces: Iterable[tuple[int, bytes]]) -> Iterator[Line | Problem]:
    """Each complete line of a log, in order, decided as every reader decides it: a kept event
    line as its ``Line``, any other line as its ``Problem``, and a ``seq_gap`` problem just
    before the kept line that follows a gap. ``pieces``: (offset, the line's bytes without its
    newline), from any backend."""
    kinds: dict[int, str] = {}
    last = 0
    for line, ok in classify(_lines(pieces, kinds), []):
        if not line.seq:
            yield Problem(line.start, line.length, kinds.pop(line.start))
        elif not ok or line.seq <= last:
            kind = "duplicate_seq" if line.seq == last else "seq_out_of_order"
            yield Problem(line.start, line.length, kind, f"seq {line.seq} after seq {last}")
        else:
            if line.seq > last + 1:
                yield Problem(line.start, 0, "seq_gap", _missing(last + 1, line.seq - 1))
            yield line
            last = line.seq


def _missing(first: int, upto: int) -> str:
    return f"seq {first} missing" if first == upto else f"seqs {first}..{upto} missing"


@contextlib.contextmanager
def log_items(path: Path) -> Iterator[Iterator[Line | Problem]]:
    """``judge`` of the log at ``path`` (which must exist) up to its size when opened, then
    its torn tail (bytes after the last newline) as a problem."""
    with open_reader(path) as reader:
        if reader is None:
            raise FileNotFoundError(path)
        yield _items(reader)


def _items(reader: LogReader) -> Iterator[Line | Problem]:
    yield from judge(reader.lines_forward(0, reader.lines_end))
    if reader.lines_end < reader.size:
        yield Problem(reader.lines_end, reader.size - reader.lines_end, "torn_tail")


def scan(path: Path) -> Report:
    """Every problem of the log at ``path`` (which must exist), in file order."""
    kept: list[tuple[int, int]] = []
    problems: list[Problem] = []
    last = 0
    with log_items(path) as items:
        for item in items:
            if isinstance(item, Problem):
                problems.append(item)
            else:
                kept.append((item.start, item.length + 1))
                last = item.seq
    return Report(path, kept, last, problems)


def repair(report: Report, now: datetime) -> Path:
    """Swap in a copy of ``report.path`` holding only its kept lines; return the original's
    new name. The log is never without a complete ``events.jsonl``."""
    path = report.path
    tmp = path.with_name(f".{path.name}.fixing")
    try:
        with open(path, "rb") as src, open(tmp, "wb") as out:
            for offset, length in report.kept:
                src.seek(offset)
                out.write(src.read(length))
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, path.stat().st_mode & 0o777)
        backup = aside_path(path, now)
        os.link(path, backup)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    fsync_dir(path.parent)
    return backup


def resolve_target(target: str, home: Path) -> tuple[Path, Path]:
    """The log named by ``target`` (a session id under ``home``, or a path) and the home
    whose lock guards it."""
    if "/" in target or target.endswith(".jsonl") or target in (".", ".."):
        path = Path(target).expanduser()
        if path.is_dir():
            path = path / LOG_NAME
        session_dir = path.absolute().parent
        if session_dir.parent.name == "sessions":
            home = session_dir.parent.parent
        return path, home
    return home / "sessions" / target / LOG_NAME, home


def check_log(target: str, *, home: Path, fix: bool, lock_home: Callable[[Path], int | None],
              out: TextIO, err: TextIO, now: Callable[[], datetime]) -> int:
    """The command: 0 clean, 1 problems found (and fixed with ``fix``), 2 cannot check."""
    path, home = resolve_target(target, home)
    if not path.is_file():
        print(f"hive-server: no event log at {path}", file=err)
        return 2
    lock = lock_home(home) if fix else None
    if fix and lock is None:
        print(f"hive-server: a server is running on {home} (it holds server.lock); stop it "
              "before check-log --fix", file=err)
        return 2
    try:
        report = scan(path)
        for problem in report.problems:
            print(f"{path}: {problem.describe()}", file=out)
        print(f"{path}: {len(report.kept)} events, last seq {report.last_seq}, "
              f"{len(report.problems)} problem(s)", file=out)
        if fix and report.fixable:
            backup = repair(report, now())
            print(f"{path}: fixed; the original is kept as {backup.name}", file=out)
        elif fix and not report.clean:
            print(f"{path}: nothing to rewrite (the events of a seq gap are lost)", file=out)
    finally:
        if lock is not None:
            os.close(lock)
    return 0 if report.clean else 1
