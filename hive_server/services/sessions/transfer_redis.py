"""``export-session --redis URL`` and ``import-session --redis URL``: a session moves between a
file home and Redis as a plain ``events.jsonl`` (issue 14; the server does not read sessions
from Redis yet).

Export reads the session's stream ``hive:{<sid>}:log`` up to its last entry when the export
starts (XRANGE in chunks of ``CHUNK``), each entry's ``e`` field being the event's line bytes,
judged as a file's lines are (``logcheck.judge``; an event whose seq is not its entry's id is
left out too), and writes the kept ones through ``export_lines``. A stream has no torn line,
so a live session may be exported: the file holds its events up to that point.

Import checks the lines as a file import does (``import_lines``) into ``RedisSink``: the
events are staged in a stream of the session's hash tag (``hive:{<sid>}:import-<random>``,
expiring after ``STAGE_TTL_MS`` unless committed, so a killed import leaves nothing for good),
and the commit is one script that renames it to the session's stream and writes the rebuilt
meta and the index row, or refuses an id that exists (``RedisSessionIndex.commit_import``):
a half import is never visible, and a refused one deletes its staging stream.

The commands are blocking, like the file ones: the lines are read and written on a worker
thread, which runs each Redis call on the event loop (``LoopCalls``) and waits for it.
Redis is asked for nothing about persistence here (``Durability.NONE``): the import is as
durable as Redis's settings, which a server started with ``--redis`` checks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any, BinaryIO, TextIO, TypeVar

import redis.asyncio
from redis.exceptions import RedisError

from hive_server.core.eventlog import Durability
from hive_server.core.eventlog_lines import Line
from hive_server.core.eventlog_redis import FIELD, session_key
from hive_server.core.logcheck import Problem, judge
from hive_server.core.redis_conn import connect
from hive_server.core.redis_url import shown
from hive_server.errors import HiveError
from hive_server.errors.sessions import InvalidSessionId
from hive_server.errors.transfer import NoSessionStream, SessionExists
from hive_server.models.session import SessionMeta, is_safe_id
from hive_server.services.sessions.index_redis import RedisSessionIndex
from hive_server.services.sessions.transfer import (
    error_text,
    export_done,
    import_lines,
    lines_of,
    opened,
    say,
    write_export,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
CHUNK = 1000  # entries per XRANGE; lines per staging pipeline
STAGE_TTL_MS = 3_600_000  # an import's staging stream, renewed at each chunk
FAILED = (HiveError, OSError, RedisError)


class LoopCalls:
    """Run a coroutine on ``loop`` from a worker thread and wait for its result."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self._loop = loop

    def __call__(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()


Call = Callable[[Coroutine[Any, Any, Any]], Any]


@contextlib.asynccontextmanager
async def _connected(url: str) -> AsyncIterator[redis.asyncio.Redis]:
    client = await connect(url, Durability.NONE)
    try:
        yield client
    finally:
        await client.aclose()


# -- export ---------------------------------------------------------------------------------------
def _entry_seq(entry_id: bytes) -> int:
    return int(entry_id.partition(b"-")[0])


def _entries(call: Call, client: redis.asyncio.Redis, key: str,
             last_id: bytes) -> Iterator[tuple[int, bytes]]:
    """(the entry id's seq, its ``e`` bytes) of every entry up to ``last_id``."""
    low = "-"
    while True:
        entries = call(client.xrange(key, low, last_id, count=CHUNK))
        for entry_id, fields in entries:
            yield _entry_seq(entry_id), fields.get(FIELD, b"")
        if not entries or entries[-1][0] == last_id:
            return
        low = b"(" + entries[-1][0]


def stream_items(call: Call, client: redis.asyncio.Redis, key: str,
                 last_id: bytes) -> Iterator[Line | Problem]:
    """``judge`` of the stream's entries up to ``last_id`` (a line's ``start``: its entry's
    seq); an event whose seq is not its entry's is a problem, as the Redis log skips it."""
    for item in judge(_entries(call, client, key, last_id)):
        if isinstance(item, Line) and item.seq != item.start:
            yield Problem(item.start, item.length, "seq_not_entry_id",
                          f"seq {item.seq} in entry {item.start}-0")
        else:
            yield item


def _reporter(err: TextIO, key: str) -> Callable[[Problem], None]:
    def skipped(problem: Problem) -> None:
        where = f"export-session: {key} entry {problem.offset}-0"
        if problem.kind == "seq_gap":
            say(err, f"{where}: {problem.detail} (import-session refuses a file with a gap)")
        else:
            detail = f" ({problem.detail})" if problem.detail else ""
            say(err, f"{where}: left out {problem.length} bytes: {problem.kind}{detail}")
    return skipped


def export_session_redis(session_id: str, *, url: str, output: str, stdout: BinaryIO,
                         err: TextIO) -> int:
    """``hive-server export-session --redis URL``: exit codes as ``export_session``."""
    return asyncio.run(_export(session_id, url, output, stdout, err))


async def _export(session_id: str, url: str, output: str, stdout: BinaryIO,
                  err: TextIO) -> int:
    key = session_key(session_id, "log")
    try:
        if not is_safe_id(session_id):
            raise InvalidSessionId(session_id)
        async with _connected(url) as client:
            top = await client.xrevrange(key, "+", "-", count=1)
            if not top:
                raise NoSessionStream(session_id, shown(url))
            items = stream_items(LoopCalls(asyncio.get_running_loop()), client, key, top[0][0])
            result = await asyncio.to_thread(write_export, items, output, stdout,
                                             _reporter(err, key))
    except FAILED as exc:
        say(err, f"export-session: {error_text(exc)}")
        return 2
    return export_done(session_id, output, result, err)


# -- import ---------------------------------------------------------------------------------------
class RedisSink:
    """``ImportSink`` into Redis (see the module docstring); its methods run on the worker
    thread and ``call`` each Redis request on the loop."""

    def __init__(self, client: redis.asyncio.Redis, call: Call, where: str):
        self._client = client
        self._index = RedisSessionIndex(client)
        self._call = call
        self._where = where  # the Redis, for messages
        self.staged: str | None = None
        self._pending: list[bytes] = []
        self._seq = 0

    def begin(self, session_id: str) -> None:
        if self._call(self._index.exists(session_id)):
            raise SessionExists(session_id, self._where)
        self.staged = session_key(session_id, f"import-{secrets.token_hex(8)}")

    def write(self, line: bytes) -> None:
        self._pending.append(line)
        if len(self._pending) >= CHUNK:
            self._call(self._stage())

    def commit(self, meta: SessionMeta) -> None:
        assert self.staged is not None
        self._call(self._stage())
        self._call(self._index.commit_import(self.staged, meta, self._where))
        self.staged = None

    def discard(self) -> None:
        staged, self.staged = self.staged, None
        if staged is None:
            return
        try:
            self._call(self._client.delete(staged))
        except (RedisError, OSError):  # Redis went away: the staging stream expires by itself
            log.warning("import-session: could not delete %s; it expires within %d s", staged,
                        STAGE_TTL_MS // 1000)

    async def _stage(self) -> None:
        """The pending lines added to the staging stream (ids ``<seq>-0``), its ttl renewed."""
        assert self.staged is not None
        lines, self._pending = self._pending, []
        async with self._client.pipeline(transaction=False) as pipe:
            for line in lines:
                self._seq += 1
                pipe.xadd(self.staged, {FIELD: line}, id=f"{self._seq}-0")
            pipe.pexpire(self.staged, STAGE_TTL_MS)
            await pipe.execute()


def import_session_redis(source: str, *, url: str, as_id: str | None, stdin: BinaryIO,
                         out: TextIO, err: TextIO, now: Callable[[], str]) -> int:
    """``hive-server import-session --redis URL``: 0 imported, 2 refused or failed (nothing
    imported)."""
    return asyncio.run(_import(source, url, as_id, stdin, out, err, now()))


async def _import(source: str, url: str, as_id: str | None, stdin: BinaryIO, out: TextIO,
                  err: TextIO, now: str) -> int:
    try:
        async with _connected(url) as client:
            sink = RedisSink(client, LoopCalls(asyncio.get_running_loop()), shown(url))
            meta = await asyncio.to_thread(_import_from, source, stdin, sink, as_id, now)
    except FAILED as exc:
        say(err, f"import-session: {error_text(exc)}")
        return 2
    print(f"imported session {meta.session_id}: {meta.last_seq} events, into Redis at "
          f"{shown(url)} (hive:{{{meta.session_id}}}:log, its meta and index row; stopped)",
          file=out)
    return 0


def _import_from(source: str, stdin: BinaryIO, sink: RedisSink, as_id: str | None,
                 now: str) -> SessionMeta:
    with opened(source, stdin) as stream:
        return import_lines(lines_of(stream), sink, as_id=as_id, now=now)
