"""Moving a session between homes (and, with ``transfer_redis``, into and out of Redis):
``hive-server export-session`` and ``hive-server import-session``.

An export is a plain ``events.jsonl``: the log's own line bytes of every event a reader keeps,
in seq order. A line every reader skips (torn, corrupt, a stray duplicate) is left out and
reported with its offset, and so is a seq gap (which an import refuses). Nothing else is
exported: the import rebuilds ``meta.json`` from the events (``meta_rebuild``); the workspace
files and the triggers' saved state (``triggers.json``) stay behind.

An import checks every line before storing it (``ImportCheck``): an event envelope, seqs 1, 2,
3... without a gap, one session id (rewritten with ``--as``). The file backend writes into a
hidden folder under ``sessions/`` (``.import-*``, which no reader lists) and renames it to the
session's id at the end, so a refused import leaves nothing behind.

Backend-neutral: ``export_lines`` takes the judged lines of any log (``logcheck.judge``) and a
writer; ``import_lines`` takes the lines and an ``ImportSink``. The file backend is
``log_items`` on one side and ``FolderSink`` on the other; Redis has ``stream_items`` and
``RedisSink`` (``transfer_redis``).

Blocking, offline commands. An import refuses while a server runs on the home (it holds
``server.lock``). An export reads while one runs, but refuses a session that is live there (its
``meta.json`` is not ``stopped``); a cold one is read up to its end when the export starts.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, Protocol, TextIO

from pydantic import ValidationError

from hive_server.core.eventlog_lines import Line, bad_kind, to_line
from hive_server.core.files import fsync_dir, write_atomic
from hive_server.core.logcheck import LOG_NAME, Problem, log_items
from hive_server.errors import HiveError
from hive_server.errors.sessions import InvalidSessionId
from hive_server.errors.transfer import (
    BadImportLine,
    HomeInUse,
    IncompleteImport,
    NoSessionLog,
    SessionExists,
    SessionIsLive,
)
from hive_server.models.events import Event
from hive_server.models.session import RESERVED_IDS, SessionMeta, is_safe_id
from hive_server.services.sessions.meta_rebuild import MetaRebuild

LockHome = Callable[[Path], int | None]  # the home's server.lock held (its fd), None: a server runs
OPTIONAL_TEXT = (str, type(None))
FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "session_id": (str,), "stream_id": (str,), "node_id": (str,), "timestamp": (str,),
    "execution_id": OPTIONAL_TEXT, "correlation_id": OPTIONAL_TEXT, "colony_id": OPTIONAL_TEXT,
    "data": (dict,),
}


# -- export ---------------------------------------------------------------------------------------
@dataclasses.dataclass(slots=True)
class ExportResult:
    events: int = 0
    last_seq: int = 0
    problems: list[Problem] = dataclasses.field(default_factory=list)


def export_lines(items: Iterable[Line | Problem], write: Callable[[bytes], Any],
                 skipped: Callable[[Problem], None]) -> ExportResult:
    """Write each kept event line of ``items`` (its own bytes and a newline); tell ``skipped``
    of each problem as it comes."""
    result = ExportResult()
    for item in items:
        if isinstance(item, Problem):
            result.problems.append(item)
            skipped(item)
            continue
        write(item.raw + b"\n")
        result.events += 1
        result.last_seq = item.seq
    return result


# -- import ---------------------------------------------------------------------------------------
class ImportSink(Protocol):
    """Where an import goes. ``begin`` refuses an id that exists (``SessionExists``);
    ``discard`` leaves nothing of what was written (it may follow ``commit``'s failure)."""

    def begin(self, session_id: str) -> None: ...
    def write(self, line: bytes) -> None: ...
    def commit(self, meta: SessionMeta) -> None: ...
    def discard(self) -> None: ...


class ImportCheck:
    """The lines of one session's events, checked one by one (``line``)."""

    def __init__(self, as_id: str | None):
        if as_id is not None and not _usable_id(as_id):
            raise InvalidSessionId(as_id)
        self.as_id = as_id
        self.source_id: str | None = None  # the session id of line 1
        self.count = 0

    @property
    def session_id(self) -> str:
        """The imported session's id (known from line 1 on)."""
        return self.as_id or self.source_id or ""

    def line(self, number: int, raw: bytes) -> tuple[bytes, Event]:
        """The bytes to store for line ``number`` (``raw``, without its newline) and its event;
        ``BadImportLine`` when it is not the next event of the session."""
        line = to_line(0, raw)
        fields = line.fields
        if fields is None:
            raise BadImportLine(number, f"not an event ({bad_kind(raw)})")
        if (wrong := _wrong_field(fields)) is not None:
            raise BadImportLine(number, wrong)
        if line.seq != self.count + 1:
            raise BadImportLine(number, f"seq {line.seq} where seq {self.count + 1} was "
                                        "expected (seqs run 1, 2, 3... without a gap)")
        self._same_session(number, fields["session_id"])
        self.count += 1
        event = line.to_event()
        if self.as_id is None or self.as_id == event.session_id:
            return line.to_json(), event
        event = dataclasses.replace(event, session_id=self.as_id)
        return event.to_json(), event

    def _same_session(self, number: int, session_id: str) -> None:
        if self.source_id is None:
            if self.as_id is None and not _usable_id(session_id):
                raise BadImportLine(number, f"session_id {session_id!r} is not a valid "
                                            "session id (import it with --as ID)")
            self.source_id = session_id
        elif session_id != self.source_id:
            raise BadImportLine(number, f"session_id {session_id!r}, but line 1 has "
                                        f"{self.source_id!r} (a file holds one session)")


def _usable_id(session_id: str) -> bool:
    return is_safe_id(session_id) and session_id not in RESERVED_IDS


def _wrong_field(fields: dict[str, Any]) -> str | None:
    """What is wrong with an envelope's field types, or None."""
    for name, types in FIELD_TYPES.items():
        if name in fields and not isinstance(fields[name], types):
            return f"{name} is a {type(fields[name]).__name__}"
    if "timestamp" not in fields:
        return "no timestamp"
    try:
        aware = datetime.fromisoformat(fields["timestamp"]).tzinfo is not None
    except ValueError:
        aware = False
    return None if aware else "timestamp is not an ISO 8601 time with its zone"


def import_lines(lines: Iterable[bytes], sink: ImportSink, *, as_id: str | None,
                 now: str) -> SessionMeta:
    """Check and store every line (without its newline), then commit the session with the
    meta its events imply; on any error the sink discards what it wrote."""
    check, rebuild = ImportCheck(as_id), MetaRebuild()
    try:
        for number, raw in enumerate(lines, 1):
            stored, event = check.line(number, raw)
            try:
                rebuild.add(event)
            except ValidationError as exc:
                raise BadImportLine(number, f"{event.type} data: {_first_error(exc)}") from None
            if number == 1:
                sink.begin(check.session_id)
            sink.write(stored)
        meta = _rebuilt(rebuild, check, now)
        sink.commit(meta)
        return meta
    except BaseException:
        sink.discard()
        raise


def _rebuilt(rebuild: MetaRebuild, check: ImportCheck, now: str) -> SessionMeta:
    if check.count == 0:
        raise IncompleteImport("the file holds no event")
    meta = rebuild.meta(check.session_id, now)
    if meta is None:
        raise IncompleteImport("the file has no session_started event (the queen and the "
                               "model are unknown)")
    return meta


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    return f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"


class FolderSink:
    """An import into ``home/sessions``: a hidden folder, renamed to the id at the end."""

    def __init__(self, home: Path):
        self.home = home
        self.root = home / "sessions"
        self.session_id = ""
        self.tmp: Path | None = None
        self.out: BinaryIO | None = None

    def begin(self, session_id: str) -> None:
        if (self.root / session_id).exists():
            raise SessionExists(session_id, self.home)
        self.root.mkdir(parents=True, exist_ok=True)
        self.session_id = session_id
        self.tmp = Path(tempfile.mkdtemp(prefix=".import-", dir=self.root))
        self.out = open(self.tmp / LOG_NAME, "wb")  # noqa: SIM115 (closed by commit/discard)

    def write(self, line: bytes) -> None:
        assert self.out is not None
        self.out.write(line + b"\n")

    def commit(self, meta: SessionMeta) -> None:
        assert self.out is not None and self.tmp is not None
        self.out.flush()
        os.fsync(self.out.fileno())
        self.out.close()
        write_atomic(self.tmp / "meta.json", meta.model_dump_json(indent=2).encode())
        target = self.root / self.session_id
        if target.exists():  # no server runs, but a second import may have been quicker
            raise SessionExists(self.session_id, self.home)
        os.rename(self.tmp, target)
        self.tmp = None
        fsync_dir(self.root)

    def discard(self) -> None:
        if self.out is not None:
            self.out.close()
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None


def lines_of(stream: BinaryIO) -> Iterator[bytes]:
    """The lines of ``stream`` without their newline (lines end at ``\\n`` only)."""
    for raw in stream:
        yield raw[:-1] if raw.endswith(b"\n") else raw


# -- the commands (file backend) ------------------------------------------------------------------
def export_session(session_id: str, *, home: Path, output: str, lock_home: LockHome,
                   stdout: BinaryIO, err: TextIO) -> int:
    """``hive-server export-session``: 0 every event written, 1 written with lines left out
    (each reported on ``err``), 2 refused or failed (``output`` is then left as it was)."""
    skipped = _reporter(err)
    try:
        path = _log_path(home, session_id)
        with _held(home, lock_home) as held:
            if not held and _is_live(path.parent):
                raise SessionIsLive(session_id, home)
            with log_items(path) as items:
                result = write_export(items, output, stdout, skipped)
    except (HiveError, OSError) as exc:
        say(err, f"export-session: {error_text(exc)}")
        return 2
    return export_done(session_id, output, result, err)


def write_export(items: Iterable[Line | Problem], output: str, stdout: BinaryIO,
                 skipped: Callable[[Problem], None]) -> ExportResult:
    """``export_lines`` of ``items`` to ``output``: ``-`` for ``stdout``, else a file that
    replaces ``output`` once complete."""
    if output == "-":
        result = export_lines(items, stdout.write, skipped)
        stdout.flush()
        return result
    with _replacing(Path(output)) as out:
        return export_lines(items, out.write, skipped)


def export_done(session_id: str, output: str, result: ExportResult, err: TextIO) -> int:
    """Say what was written; the exit code (1 when lines were left out)."""
    where = "stdout" if output == "-" else output
    say(err, f"export-session: {result.events} events of {session_id} (last seq "
             f"{result.last_seq}) written to {where}, {len(result.problems)} line(s) left out")
    return 1 if result.problems else 0


def import_session(source: str, *, home: Path, as_id: str | None, lock_home: LockHome,
                   stdin: BinaryIO, out: TextIO, err: TextIO, now: Callable[[], str]) -> int:
    """``hive-server import-session``: 0 imported, 2 refused or failed (nothing imported)."""
    try:
        with _held(home, lock_home) as held:
            if not held:
                raise HomeInUse(home, "import-session")
            with opened(source, stdin) as stream:
                meta = import_lines(lines_of(stream), FolderSink(home), as_id=as_id,
                                    now=now())
    except (HiveError, OSError) as exc:
        say(err, f"import-session: {error_text(exc)}")
        return 2
    print(f"imported session {meta.session_id}: {meta.last_seq} events, into "
          f"{home / 'sessions' / meta.session_id} (cold; it resumes like any other)", file=out)
    return 0


def _log_path(home: Path, session_id: str) -> Path:
    if not is_safe_id(session_id):
        raise InvalidSessionId(session_id)
    path = home / "sessions" / session_id / LOG_NAME
    if not path.is_file():
        raise NoSessionLog(session_id, home)
    return path


def _is_live(folder: Path) -> bool:
    """Whether the server running on the home has (or will resume) the session: its
    ``meta.json`` is not ``stopped``, or missing (a create under way). A corrupt one: no
    server can open the session."""
    try:
        meta = SessionMeta.model_validate_json((folder / "meta.json").read_bytes())
    except FileNotFoundError:
        return True
    except (OSError, ValueError):
        return False
    return meta.status != "stopped"


@contextlib.contextmanager
def _held(home: Path, lock_home: LockHome) -> Iterator[bool]:
    """The home's lock held for the block (no server starts meanwhile); False when a server
    holds it."""
    fd = lock_home(home)
    try:
        yield fd is not None
    finally:
        if fd is not None:
            os.close(fd)


@contextlib.contextmanager
def opened(source: str, stdin: BinaryIO) -> Iterator[BinaryIO]:
    if source == "-":
        yield stdin
        return
    with open(source, "rb") as stream:
        yield stream


@contextlib.contextmanager
def _replacing(path: Path) -> Iterator[BinaryIO]:
    """A new file that replaces ``path`` (synced, renamed) when the block succeeds; on an
    error ``path`` is left as it was."""
    if not path.parent.is_dir():
        raise FileNotFoundError(errno.ENOENT, "no such folder", str(path.parent))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _reporter(err: TextIO) -> Callable[[Problem], None]:
    def skipped(problem: Problem) -> None:
        if problem.kind == "seq_gap":  # the lost events of a line that was not an event
            say(err, f"export-session: {LOG_NAME} offset {problem.offset}: {problem.detail} "
                     "(import-session refuses a file with a gap)")
        else:
            say(err, f"export-session: {LOG_NAME}: left out {problem.describe()}")
    return skipped


def error_text(exc: BaseException) -> str:
    if isinstance(exc, HiveError):
        return exc.message
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror}"
    return str(exc)


def say(err: TextIO, line: str) -> None:
    print(f"hive-server: {line}", file=err, flush=True)
