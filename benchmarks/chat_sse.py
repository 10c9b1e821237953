"""Chat -> SSE latency over HTTP (``./scripts/bench --redis``): chats POSTed to one server at a
fixed rate while SSE clients of the same session read its stream, on that server or on
another node.

Each chat's send time (``time.monotonic()`` just before the POST) is kept under the seq its
202 answered (the ``client_input_received`` event it stored); each stream records the arrival
time of that seq's frame, which may come before the POST's answer. The latency is arrival
minus send, per stream. The streams read every frame of the session (the queen's turns too,
as a UI would) and parse only each frame's ``id`` and whether it is a
``client_input_received``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import aiohttp

from benchmarks import http as http_part
from benchmarks.http import CHAT
from benchmarks.procs import AUTH

INPUT = b'"type":"client_input_received"'
ARRIVAL_TIMEOUT = 60.0  # every stream has every chat's frame this long after the last POST


class Stream:
    """One SSE client of a session: the arrival time of each ``client_input_received``."""

    def __init__(self, http: aiohttp.ClientSession, url: str):
        self.http, self.url = http, url
        self.arrivals: dict[int, float] = {}
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def open(self) -> None:
        resp = await self.http.get(self.url, headers={"Accept": "text/event-stream"})
        if resp.status != 200:
            raise RuntimeError(f"{self.url}: {resp.status} {await resp.text()}")
        self._task = asyncio.create_task(self._read(resp))

    async def _read(self, resp: aiohttp.ClientResponse) -> None:
        try:
            while not resp.content.at_eof():
                frame = await resp.content.readuntil(b"\n\n")
                now = time.monotonic()
                if frame.startswith(b"id: ") and INPUT in frame:
                    self.arrivals[int(frame[4:frame.index(b"\n")])] = now
                    self._changed.set()
        finally:
            resp.release()

    async def has(self, seqs: set[int]) -> None:
        """Wait until a frame of every seq in ``seqs`` arrived."""
        while not seqs <= self.arrivals.keys():
            if self._task is not None and self._task.done():
                raise RuntimeError(f"{self.url}: the stream ended ({self._task.exception()})")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), 1.0)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


@contextlib.asynccontextmanager
async def streams(http: aiohttp.ClientSession, urls: list[str]) -> AsyncIterator[list[Stream]]:
    opened = [Stream(http, url) for url in urls]
    try:
        for stream in opened:
            await stream.open()
        yield opened
    finally:
        for stream in opened:
            await stream.close()


async def chat(http: aiohttp.ClientSession, url: str, sent: dict[int, float]) -> int:
    """POST one chat; its seq (the send time kept in ``sent``)."""
    started = time.monotonic()
    async with http.post(url, data=CHAT, headers={"Content-Type": "application/json"}) as resp:
        if resp.status != 202:
            raise RuntimeError(f"{url}: {resp.status} {await resp.text()}")
        seq = int((await resp.json())["seq"])
    sent[seq] = started
    return seq


async def chat_latencies(base: str, session: str, readers: list[str], rate: int,
                         seconds: float) -> list[list[float]]:
    """Chats to ``base`` at ``rate`` a second for ``seconds``; per reader (a server's base
    URL), the latency of every chat's frame on its stream (seconds). A first chat, not
    counted, checks that every stream is live before the paced ones."""
    sent: dict[int, float] = {}
    chat_url = f"{base}/api/sessions/{session}/chat"
    async with aiohttp.ClientSession(base, headers=AUTH) as owner:
        last = await http_part.last_seq(owner, session)
    async with aiohttp.ClientSession(headers=AUTH) as http:
        urls = [f"{reader}/api/sessions/{session}/events?after_seq={last}" for reader in readers]
        async with streams(http, urls) as opened:
            first = await chat(http, chat_url, {})
            await asyncio.wait_for(asyncio.gather(*(s.has({first}) for s in opened)),
                                   ARRIVAL_TIMEOUT)
            await paced_chats(http, chat_url, sent, rate, seconds)
            await asyncio.wait_for(asyncio.gather(*(s.has(set(sent)) for s in opened)),
                                   ARRIVAL_TIMEOUT)
            return [[stream.arrivals[seq] - at for seq, at in sent.items()]
                    for stream in opened]


async def paced_chats(http: aiohttp.ClientSession, url: str, sent: dict[int, float],
                      rate: int, seconds: float) -> None:
    """One POST every ``1 / rate`` seconds, each in its own task (a slow answer does not
    delay the next send); returns when every POST was answered."""
    interval, started = 1 / rate, time.monotonic()
    posts: list[asyncio.Task[int]] = []
    try:
        for i in range(max(1, int(rate * seconds))):
            delay = started + i * interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            posts.append(asyncio.create_task(chat(http, url, sent)))
        await asyncio.gather(*posts)
    finally:
        for post in posts:
            post.cancel()
        await asyncio.gather(*posts, return_exceptions=True)


def quantile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]
