"""Commands for a session run by another node (a chat, a trigger run) reach its owner through
Redis and are answered with the stored ``seq``, or the owner's error (issue 14 item 3).

Keys (all with the session's hash tag, so the owner's one MULTI touches one Cluster slot):

- ``hive:{<sid>}:cmd``: a Stream of commands; an entry's fields ``id`` (the request id) and
  ``c`` (the command, a JSON object). Capped near ``STREAM_MAXLEN`` entries; the owner deletes
  each one it has answered.
- ``hive:{<sid>}:req:<request id>``: the owner's record of a request, taken with
  ``SET NX GET`` before it applies it (``pending``), then the reply; kept ``IDEMPOTENCY_MS``.
- ``hive:{<sid>}:reply:<request id>``: a list the owner pushes the reply to (``{"seq": N}`` or
  ``{"error": {...}}``) and the sender pops with ``BLPOP``; expires after ``REPLY_TTL_MS``.

Sender (``Forwarder.forward``): XADD, then BLPOP (in slices of at most ``wait_slice``) until
the reply or the timeout: ``ForwardTimeout`` (503) carries the request id. A request that timed
out may still be applied (an owner late, or one that starts later reads it): sent again with
the same request id it is applied once, and answers the first application's seq.

Owner (``CommandLoop``, one task per owned session): reads the stream with the consumer group
``owner`` (consumer: its node id), created at ``0`` so commands sent while no node ran the
session are applied when one starts. At start it claims the entries other consumers took and
never acknowledged (an owner that died), and after a Redis failure it reads its own
unacknowledged ones again. Per command: ``SET req pending NX GET``. When it was absent the
command is applied (``handle(command) -> seq``; a ``HiveError`` is the reply, any other error is
logged and answers ``internal_error``); when it holds a reply, that reply is sent again (a
duplicate is never applied twice); when it is still ``pending`` an earlier owner stopped while
applying it: the owner's ``recover`` looks for it in the log (a chat carries its request id),
answering its seq when it is there and applying it when it is not; without ``recover`` (or a
command it cannot look for) the answer is ``ForwardInDoubt``. Then one MULTI records
the reply, pushes it, acknowledges and deletes the entry. A reply this loop computed but could
not record (Redis failed) is kept in memory and recorded when the entry is read again. The
commands of one read are served concurrently (so their appends share the log's group commit:
one at a time, a session took about 100 forwarded chats a second), each request id once at a
time: a copy read with it waits for the first to be answered. Commands read together come
from senders that did not wait for each other, so the order of their events is theirs.

The sender rebuilds the owner's error as the generic class it derives from (``NotFound``,
``Conflict``, ...) with the owner's code, message and extra: the API answers the same status
and body as the owner would.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
import redis.asyncio
from redis.exceptions import ResponseError

from hive_server import errors
from hive_server.core.eventlog_redis import session_key
from hive_server.core.redis_backoff import RETRIED, Backoff, honour_cancel
from hive_server.core.stats import FORWARD_SECONDS
from hive_server.errors import HiveError
from hive_server.errors.backend import (
    BadForwardedCommand,
    ForwardInDoubt,
    ForwardTimeout,
    ForwardUnavailable,
)

logger = logging.getLogger(__name__)
GROUP = "owner"
STREAM_MAXLEN = 10_000  # commands waiting for an owner, about
IDEMPOTENCY_MS = 3_600_000  # a retry within an hour learns the first application's seq
REPLY_TTL_MS = 60_000  # a reply nobody popped (its sender gave up)
PENDING = b"pending"
INTERNAL_REPLY = orjson.dumps({"error": {  # a bug of the owner's: what a local one answers
    "kind": "HiveError", "code": "internal_error", "message": "internal server error",
    "extra": {}}})
GENERIC = {cls.__name__: cls for cls in vars(errors).values()
           if isinstance(cls, type) and issubclass(cls, HiveError)}


@dataclass(frozen=True, slots=True)
class Command:
    """A forwarded command, as its owner's ``handle`` gets it."""

    request_id: str
    body: dict[str, object]


Handle = Callable[[Command], Awaitable[int | dict[str, Any]]]  # the seq, or a reply with "seq"
Recover = Callable[[Command], Awaitable[int | dict[str, Any] | None]]  # None: not stored


def request_key(session_id: str, request_id: str) -> str:
    return session_key(session_id, f"req:{request_id}")


def reply_key(session_id: str, request_id: str) -> str:
    return session_key(session_id, f"reply:{request_id}")


def error_reply(exc: HiveError) -> bytes:
    """``exc`` as a reply: its code, message and extra, and the generic class it derives
    from (what decides the HTTP status)."""
    kind = next(cls.__name__ for cls in type(exc).__mro__ if GENERIC.get(cls.__name__) is cls)
    return orjson.dumps({"error": {"kind": kind, "code": exc.code, "message": exc.message,
                                   "extra": exc.extra}})


def reply_outcome(raw: bytes) -> int:
    """The seq of a reply, or its error raised (see the module docstring)."""
    return int(reply_answer(raw)["seq"])


def reply_answer(raw: bytes) -> dict[str, Any]:
    """A reply as the owner's ``handle`` answered it (``{"seq": N, ...}``), or its error
    raised."""
    reply = orjson.loads(raw)
    if "seq" in reply:
        return reply
    error = reply["error"]
    exc = GENERIC.get(error["kind"], HiveError)(error["message"], extra=error["extra"])
    exc.code = error["code"]
    raise exc


class Forwarder:
    """A node's sending side: ``forward`` a command to the session's owner."""

    def __init__(self, client: redis.asyncio.Redis, *, wait_slice: float = 1.0,
                 maxlen: int = STREAM_MAXLEN):
        self._client = client
        self._wait_slice = wait_slice  # one BLPOP's wait: below the client's socket timeout
        self._maxlen = maxlen

    async def forward(self, session_id: str, body: dict[str, object], timeout: float,
                      request_id: str | None = None) -> int:
        """Send ``body`` to the session's owner; its stored seq, or its error raised.
        ``ForwardTimeout`` after ``timeout`` seconds (send the same ``request_id`` again:
        applied once); ``ForwardUnavailable`` when Redis fails."""
        return int((await self.ask(session_id, body, timeout, request_id))["seq"])

    async def ask(self, session_id: str, body: dict[str, object], timeout: float,
                  request_id: str | None = None) -> dict[str, Any]:
        """``forward``, answering the owner's whole reply (``{"seq": N, ...}``)."""
        if timeout <= 0:
            raise ValueError(f"a forward's timeout is positive, not {timeout!r}")
        request_id = request_id or uuid.uuid4().hex
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            await self._client.xadd(session_key(session_id, "cmd"),
                                    {b"id": request_id, b"c": orjson.dumps(body)},
                                    maxlen=self._maxlen, approximate=True)
            raw = await self._reply(reply_key(session_id, request_id), started + timeout)
        except RETRIED as exc:
            raise ForwardUnavailable(session_id, request_id, exc) from exc
        if raw is None:
            raise ForwardTimeout(session_id, request_id, timeout)
        FORWARD_SECONDS.observe(loop.time() - started)  # answered round trips only
        return reply_answer(raw)

    async def _reply(self, key: str, deadline: float) -> bytes | None:
        """BLPOP ``key`` until ``deadline`` (loop time); None when nothing came."""
        loop = asyncio.get_running_loop()
        while (left := deadline - loop.time()) > 0:
            # at least 10 ms: a BLPOP timeout that rounds to 0 ms would wait for ever
            popped = await self._client.blpop([key], timeout=max(0.01, min(left,
                                                                          self._wait_slice)))
            honour_cancel()
            if popped is not None:
                return popped[1]
        return None


class CommandLoop:
    """The owner's side for one session: its task applies the session's forwarded commands
    once each (``handle``) and replies. See the module docstring. ``start``, then ``stop``."""

    def __init__(self, client: redis.asyncio.Redis, session_id: str, node_id: str,
                 handle: Handle, *, block_ms: int = 1000, batch: int = 100,
                 backoff: tuple[float, float] = (0.05, 2.0), recover: Recover | None = None):
        self._client = client
        self._session_id = session_id
        self._node_id = node_id
        self._handle = handle
        self._recover = recover  # an earlier owner's pending command: stored or not?
        self._block_ms = block_ms  # one XREADGROUP's wait: below the client's socket timeout
        self._batch = batch
        self._key = session_key(session_id, "cmd")
        self._cursor = "0"  # "0": this consumer's unacknowledged entries first, then ">"
        self._grouped = False
        self._unrecorded: dict[str, bytes] = {}  # replies computed, not yet stored
        self.backoff = Backoff(f"commands {self._key}", logger, first=backoff[0],
                               cap=backoff[1])
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is not None:
            raise RuntimeError(f"the command loop of {self._key} was already started")
        self._task = asyncio.create_task(self._run(), name=f"redis-commands:{self._key}")

    async def stop(self) -> None:
        """Cancel the task and await it. A command being applied stays ``pending`` (in
        doubt for a retry). Idempotent."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        try:
            while True:
                try:
                    await self._round()
                except RETRIED as exc:
                    honour_cancel()
                    self._cursor = "0"  # what was read and not answered is read again
                    await self.backoff.failed(exc)
                    continue
                honour_cancel()
                self.backoff.succeeded()
        except Exception:  # the task's boundary: a bug ends the loop, logged
            logger.exception("command loop of %s failed", self._key)

    async def _round(self) -> None:
        if not self._grouped:
            await self._join()
        block = self._block_ms if self._cursor == ">" else None  # its own: no wait
        reply = await self._client.xreadgroup(GROUP, self._node_id, {self._key: self._cursor},
                                              count=self._batch, block=block)
        entries = reply[0][1] if reply else []
        if self._cursor == "0" and not entries:
            self._cursor = ">"
        firsts, again, seen = [], [], set()
        for entry in entries:  # a request id twice in one read: the copy after the first
            request_id = (entry[1] or {}).get(b"id", b"")
            (again if request_id in seen else firsts).append(entry)
            seen.add(request_id)
        outcomes = await asyncio.gather(*(self._serve(*entry) for entry in firsts),
                                        return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):  # every one has ended: none is left behind
                raise outcome
        for entry_id, fields in again:
            await self._serve(entry_id, fields)

    async def _join(self) -> None:
        """Create the group (at 0: commands sent before any owner count) and take over the
        entries other consumers read and never acknowledged."""
        try:
            await self._client.xgroup_create(self._key, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        start = "0-0"
        while True:
            start, *_ = await self._client.xautoclaim(  # (justid would drop the cursor)
                self._key, GROUP, self._node_id, 0, start_id=start, count=self._batch)
            if start in (b"0-0", "0-0"):
                break
        self._grouped = True

    async def _serve(self, entry_id: bytes, fields: dict[bytes, bytes] | None) -> None:
        """Answer one entry (see the module docstring); an entry with no request id (deleted
        meanwhile, or not ours) is only acknowledged."""
        request_id = (fields or {}).get(b"id", b"").decode(errors="replace")
        if not request_id:
            await self._client.xack(self._key, GROUP, entry_id)
            return
        reply = self._unrecorded.get(request_id)
        if reply is None:
            held = await self._client.set(request_key(self._session_id, request_id), PENDING,
                                          nx=True, get=True, px=IDEMPOTENCY_MS)
            reply = await self._decide(request_id, fields or {}, held)
        self._unrecorded[request_id] = reply
        await self._record(entry_id, request_id, reply)
        del self._unrecorded[request_id]

    async def _decide(self, request_id: str, fields: dict[bytes, bytes],
                      held: bytes | None) -> bytes:
        if held is None:  # first seen: apply it
            return await self._apply(request_id, fields.get(b"c", b""))
        if held == PENDING:
            return await self._in_doubt(request_id, fields.get(b"c", b""))
        return held  # a duplicate: the first application's reply

    async def _in_doubt(self, request_id: str, raw: bytes) -> bytes:
        """A command an earlier owner took and never answered. ``recover`` (the owner's, run
        under a newer lease: the earlier owner can append nothing more) finds whether it is
        stored: its reply then, else it is applied now. Without ``recover``, or when it
        cannot tell (it raises), the answer is that error: ``ForwardInDoubt``."""
        if self._recover is None:
            return error_reply(ForwardInDoubt(self._session_id, request_id))
        try:
            answer = await self._recover(Command(request_id, _command(raw)))
        except HiveError as exc:
            return error_reply(exc)
        if answer is None:
            return await self._apply(request_id, raw)
        return orjson.dumps({"seq": answer} if isinstance(answer, int) else answer)

    async def _apply(self, request_id: str, raw: bytes) -> bytes:
        try:
            answer = await self._handle(Command(request_id, _command(raw)))
        except HiveError as exc:
            return error_reply(exc)
        except Exception:  # the owner's boundary for one command: a bug answers 500, logged
            logger.exception("%s: request %s failed", self._key, request_id)
            return INTERNAL_REPLY
        return orjson.dumps({"seq": answer} if isinstance(answer, int) else answer)

    async def _record(self, entry_id: bytes, request_id: str, reply: bytes) -> None:
        """One MULTI: the reply recorded and pushed, the entry acknowledged and deleted."""
        key = reply_key(self._session_id, request_id)
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.set(request_key(self._session_id, request_id), reply, xx=True,
                     px=IDEMPOTENCY_MS)
            pipe.rpush(key, reply)
            pipe.pexpire(key, REPLY_TTL_MS)
            pipe.xack(self._key, GROUP, entry_id)
            pipe.xdel(self._key, entry_id)
            await pipe.execute()


def _command(raw: bytes) -> dict[str, Any]:
    """A command's body: a JSON object (``BadForwardedCommand`` otherwise)."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadForwardedCommand(raw) from None
    if not isinstance(body, dict):
        raise BadForwardedCommand(raw)
    return body
