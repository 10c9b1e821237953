"""One session's event log in a Redis Stream: the Redis backend's ``LogStore`` (issue 14).

The stream is ``hive:{<session id>}:log`` (every key of a session shares the hash tag, so a
Redis Cluster keeps them in one slot and one script may touch them together). Entry id
``<seq>-0``, so ``Last-Event-ID: N`` resumes on any node from ``(N-0``; one field ``e``, the
exact bytes of the event's JSON line as ``events.jsonl`` would hold it (no newline), so reads
hand out the log's own bytes (``Line``) as the file log does.

``append`` is synchronous, so call order is seq order: it checks that the seq follows
``last_seq``, queues the line and wakes the writer task. The writer sends everything queued in
one call of ``APPEND_SCRIPT`` (EVALSHA): appends made while a call is in flight go together in
the next one (group commit). The script refuses a batch whose first seq does not follow the
stream's last entry (``LogSeqRejected``: another writer got there; nothing is stored, never a
gap) and, for a log given a ``lease``, a batch sent when the session's lease key no longer
holds it (``LogFenced``: another node took the session over). An append's future resolves when
Redis has replied: the script ran, and with ``appendfsync always`` its entries are fsynced in
Redis's append-only file. How durable that is depends on Redis's persistence, which
``redis_conn.connect`` checks against the durability mode once, at start.

A refused or failed call fails the log, as a write error fails ``EventLog``: its appends'
futures fail with the refusal (or ``LogUnavailable``), every later ``append`` raises
``RuntimeError``, and ``on_failed`` (the session manager's) is told. Nothing is retried: a
call whose reply was lost may have been applied.

Reads go to Redis (XRANGE / XREVRANGE) and see the events appended before the call (they wait
for those to be stored first). An entry that holds no event, or an event of another seq than
its id, is skipped, as every file reader skips a bad line. ``quiet`` does nothing: a Redis log
holds no descriptor of its own (the process's client is one connection pool), and ``close``
leaves that client to its owner.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence

import redis.asyncio
from redis.exceptions import RedisError, ResponseError

from hive_server.core.eventlog_file import OpenInfo
from hive_server.core.eventlog_lines import Line, to_line
from hive_server.core.log_waiters import Flushers, settle
from hive_server.core.stats import EVENTS_APPENDED
from hive_server.errors import HiveError
from hive_server.errors.backend import LogFenced, LogSeqRejected
from hive_server.errors.sessions import LogUnavailable
from hive_server.models.events import Event

logger = logging.getLogger(__name__)
FIELD = b"e"  # the entry's one field: the event's JSON line

# KEYS[1] the stream, KEYS[2] the session's lease; ARGV[1] the lease this log holds ('' when
# unfenced), ARGV[2] the first entry's seq, ARGV[3..] the entries' lines (seqs ARGV[2], +1, ...).
# Returns the last seq stored.
APPEND_SCRIPT = """
if ARGV[1] ~= '' and redis.call('GET', KEYS[2]) ~= ARGV[1] then
  return redis.error_reply('FENCED the lease is no longer ' .. ARGV[1])
end
local first = tonumber(ARGV[2])
local top = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local last = 0
if top[1] then last = tonumber(string.match(top[1][1], '^(%d+)-')) end
if first ~= last + 1 then
  return redis.error_reply('SEQ ' .. first .. ' does not follow the stored ' .. last)
end
for i = 3, #ARGV do
  redis.call('XADD', KEYS[1], (first + i - 3) .. '-0', 'e', ARGV[i])
end
return first + #ARGV - 3
"""


def session_key(session_id: str, part: str) -> str:
    """A key of the session: ``hive:{<session id>}:<part>`` (``log``, ``lease``, ...)."""
    return f"hive:{{{session_id}}}:{part}"


def seq_of(entry_id: bytes | str) -> int:
    """The seq of a stream entry id ``<seq>-0``."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(text.partition("-")[0])


def stream_lines(entries: Sequence[tuple[bytes, dict[bytes, bytes]]]) -> list[Line]:
    """The event lines of ``entries``: an entry without an event, or whose event's seq is not
    its id's, is skipped."""
    lines = []
    for entry_id, fields in entries:
        line = to_line(0, fields.get(FIELD, b""))  # a stream has no byte offsets
        if line.seq and line.seq == seq_of(entry_id):
            lines.append(line)
    return lines


class RedisEventLog:
    """One session's log in a Redis Stream, with its writer task. See the module docstring."""

    def __init__(self, client: redis.asyncio.Redis, session_id: str, *,
                 lease: str | None = None):
        self._client = client
        self._session_id = session_id
        self._key = session_key(session_id, "log")
        self._lease_key = session_key(session_id, "lease")
        self._lease = lease  # ``<node id>:<token>``: every append checks the lease still is
        self._script = client.register_script(APPEND_SCRIPT)
        self._writer: asyncio.Task[None] | None = None
        self._wakeup = asyncio.Event()
        self._closed = False
        self._error: HiveError | None = None
        self._last_seq = 0  # appended (queued or stored)
        self._stored_seq = 0  # acknowledged by Redis
        self._queue: list[tuple[bytes, asyncio.Future[None]]] = []
        self._inflight: list[asyncio.Future[None]] = []
        self._flushers = Flushers()
        self.on_failed: Callable[[HiveError], None] | None = None  # told once, when it fails

    @property
    def key(self) -> str:
        return self._key

    @property
    def last_seq(self) -> int:
        return self._last_seq

    async def open(self) -> OpenInfo:
        """Read the stream's last seq (0 when it has no entry) and start the writer."""
        if self._writer is not None or self._closed:
            raise RuntimeError(f"event log {self._key} was already opened")
        top = await self._client.xrevrange(self._key, "+", "-", count=1)
        self._last_seq = self._stored_seq = seq_of(top[0][0]) if top else 0
        self._writer = asyncio.create_task(self._run(), name=f"redis-log-writer:{self._key}")
        return OpenInfo(self._last_seq, 0)

    async def open_reader(self) -> OpenInfo:
        """Read the stream's last seq, with no writer: a read-only view (a cold session's, or
        one another node runs); its reads see the stream up to that seq."""
        if self._writer is not None or self._closed:
            raise RuntimeError(f"event log {self._key} was already opened")
        top = await self._client.xrevrange(self._key, "+", "-", count=1)
        self._last_seq = self._stored_seq = seq_of(top[0][0]) if top else 0
        return OpenInfo(self._last_seq, 0)

    def append(self, event: Event) -> asyncio.Future[None]:
        """Queue ``event`` (seq must be ``last_seq + 1``); the future resolves once Redis
        stored it, or fails with the refusal or failure of its call."""
        if self._error is not None:
            raise RuntimeError(f"event log {self._key} failed") from self._error
        if self._writer is None or self._closed:
            raise RuntimeError(f"event log {self._key} is not open")
        if event.seq != self._last_seq + 1:
            raise ValueError(f"event seq {event.seq} does not follow {self._last_seq}")
        self._last_seq = event.seq
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((event.to_json(), future))
        self._wakeup.set()
        return future

    def quiet(self) -> None:
        """Nothing to release (see the module docstring)."""

    async def flush(self) -> None:
        """Return once every event appended so far is stored in Redis."""
        await self._flushers.until(self._last_seq, self._stored_seq, self._error, self._key)

    async def close(self) -> None:
        """Send what is queued, stop the writer. Idempotent; the client stays open."""
        self._closed = True
        self._wakeup.set()
        if self._writer is not None:
            await asyncio.shield(self._writer)

    async def read_after(self, after_seq: int, limit: int | None = None) -> list[Event]:
        """Events appended before this call with seq > ``after_seq``, in order."""
        events: list[Event] = []
        async for lines in self.iter_lines_after(after_seq, limit or 1000):
            events += (line.to_event() for line in lines)
            if limit is not None and len(events) >= limit:
                return events[:limit]
        return events

    async def iter_after(self, after_seq: int, chunk: int = 1000) -> AsyncIterator[list[Event]]:
        """``read_after`` in chunks of at most ``chunk`` events."""
        async for lines in self.iter_lines_after(after_seq, chunk):
            yield [line.to_event() for line in lines]

    async def iter_lines_after(self, after_seq: int,
                               chunk: int = 1000) -> AsyncIterator[list[Line]]:
        """``iter_after``'s entries as the log's lines (``Line.sse_frame``: what SSE sends),
        one XRANGE of at most ``chunk`` entries each."""
        upto = self._last_seq
        await self.flush()
        while after_seq < upto:
            entries = await self._client.xrange(self._key, f"{after_seq + 1}-0", f"{upto}-0",
                                                count=chunk)
            if not entries:
                return
            after_seq = seq_of(entries[-1][0])
            if lines := stream_lines(entries):
                yield lines

    async def read_tail(self, limit: int, before_seq: int | None = None) -> list[Event]:
        """The last ``limit`` events with seq < ``before_seq`` (all if None), ascending."""
        upto = self._last_seq
        await self.flush()
        below = upto if before_seq is None else min(before_seq - 1, upto)
        lines: list[Line] = []
        while below >= 1 and len(lines) < limit:
            entries = await self._client.xrevrange(self._key, f"{below}-0", "-",
                                                   count=limit - len(lines))
            if not entries:
                break
            below = seq_of(entries[-1][0]) - 1
            lines += stream_lines(entries)
        return [line.to_event() for line in reversed(lines)]

    # -- the writer task ---------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            while self._queue or not self._closed:
                await self._wakeup.wait()
                self._wakeup.clear()
                if self._queue:
                    await self._send()
        except HiveError as exc:  # a refused or failed call: the log is failed
            self._failed(exc)
        finally:
            self._closed = True
            self._fail_pending(RuntimeError(f"event log {self._key} writer stopped"))

    async def _send(self) -> None:
        """Everything queued, in one script call (group commit); its futures resolved."""
        batch, self._queue = self._queue, []
        self._inflight = [future for _, future in batch]
        first = self._stored_seq + 1
        try:
            await self._script(keys=[self._key, self._lease_key],
                               args=[self._lease or "", first, *(line for line, _ in batch)])
        except ResponseError as exc:
            raise self._refusal(exc) from exc
        except (RedisError, OSError) as exc:  # connection lost, timeout: maybe applied
            raise LogUnavailable(self._session_id, exc) from exc
        self._stored_seq += len(batch)
        EVENTS_APPENDED.add(len(batch))
        futures, self._inflight = self._inflight, []
        self._flushers.release(self._stored_seq)
        settle(futures)

    def _refusal(self, exc: ResponseError) -> HiveError:
        message = str(exc)
        if message.startswith("FENCED"):
            return LogFenced(self._session_id, self._lease or "")
        if message.startswith("SEQ"):
            return LogSeqRejected(self._session_id, message.removeprefix("SEQ "))
        return LogUnavailable(self._session_id, exc)

    def _failed(self, exc: HiveError) -> None:
        level = logging.WARNING if isinstance(exc, LogFenced) else logging.ERROR  # expected
        logger.log(level, "event log %s: %s; failing pending appends", self._key, exc.message)
        self._error = exc
        self._fail_pending(exc)
        if self.on_failed is not None:
            self.on_failed(exc)

    def _fail_pending(self, exc: BaseException) -> None:
        pending = [future for _, future in self._queue] + self._inflight
        pending += self._flushers.take()
        self._queue, self._inflight = [], []
        settle(pending, exc)
