"""The open SSE streams: one response class for all of them, and one registry that ends them.

``SseResponse`` writes a frame straight to the connection's writer and waits only when the
client's connection is backed up (the transport paused writing), for the send timeout at most.
A write that does not have to wait arms no timer: at 1,000 subscribers and 300 events/s a
timer per write was 300,000 timer handles a second in the event loop's heap.

``SseStreams`` (``app[SSE_STREAMS]``) holds what ends each stream (its ``Closable``): all are
closed at shutdown, and one poller task closes a stream once its client is gone (its
connection closed, or its keep-alive task ended on a failed ping). aiohttp offers no
per-request disconnect callback, and cancelling handlers on disconnect is all or nothing; one
poller checks every stream each ``DISCONNECT_POLL`` (it used to be one polling task, and one
timer, per stream). The poller runs only while streams are open, and stops at ``close()``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Protocol

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.http import StreamWriter
from aiohttp_sse import EventSourceResponse

from hive_server.core.tasks import cancel_and_wait

DISCONNECT_POLL = 0.2  # how often the poller checks that the streams' clients are connected


class Closable(Protocol):
    def close(self) -> None: ...


class SseResponse(EventSourceResponse):
    """An ``EventSourceResponse`` whose ``write`` waits for the client only when it must."""

    def __init__(self, *, send_timeout: float, ping_interval: float):
        super().__init__(send_timeout=send_timeout, ping_interval=ping_interval)
        self.send_timeout = send_timeout
        self._writer: StreamWriter | None = None

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        writer = await super().prepare(request)
        if isinstance(writer, StreamWriter):
            self._writer = writer
        return writer

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        """Hand ``data`` to the connection now; when that leaves its transport paused (the
        client reads slower than we write), wait until it drains, ``send_timeout`` at most
        (``TimeoutError``). A closed connection raises ``ConnectionResetError``."""
        writer = self._writer
        if writer is None:  # not prepared, or ended: the base class says why
            await super().write(data)
            return
        await writer.write(data, drain=False)  # no wait, no timer
        if writer.protocol.writing_paused:
            async with asyncio.timeout(self.send_timeout):
                await writer.drain()

    async def write_eof(self, data: bytes = b"") -> None:
        self._writer = None
        await super().write_eof(data)

    def connected(self, request: web.BaseRequest) -> bool:
        """Whether the client is still there: its connection open, its keep-alive running."""
        transport = request.transport
        return transport is not None and not transport.is_closing() and self.is_connected()


class SseStreams:
    """What ends each open SSE stream; iterate it for them (``len``: how many)."""

    def __init__(self, poll: float = DISCONNECT_POLL):
        self.poll = poll
        self._open: dict[Closable, tuple[web.BaseRequest, SseResponse] | None] = {}
        self._poller: asyncio.Task[None] | None = None
        self._closed = False

    def __len__(self) -> int:
        return len(self._open)

    def __iter__(self) -> Iterator[Closable]:
        return iter(list(self._open))

    def add(self, closer: Closable) -> None:
        """A stream opening: closed at shutdown from now on."""
        self._open[closer] = None

    def watch(self, closer: Closable, request: web.BaseRequest, response: SseResponse) -> None:
        """A stream that is sending: closed too once its client is gone."""
        if closer not in self._open:
            return
        self._open[closer] = (request, response)
        if self._poller is None and not self._closed:
            self._poller = asyncio.create_task(self._watch(), name="sse-disconnects")

    def discard(self, closer: Closable) -> None:
        self._open.pop(closer, None)

    async def close(self) -> None:
        """Stop the poller (the streams themselves are ended by their ``Closable``)."""
        self._closed = True
        poller, self._poller = self._poller, None
        await cancel_and_wait(poller)

    async def _watch(self) -> None:
        try:
            while self._open:
                await asyncio.sleep(self.poll)
                for closer, sending in list(self._open.items()):
                    if sending is not None and not sending[1].connected(sending[0]):
                        closer.close()
        finally:
            if self._poller is asyncio.current_task():
                self._poller = None
