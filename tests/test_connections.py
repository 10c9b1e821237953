"""Connections are bounded: a closed SSE stream unsubscribes at once, a stalled SSE reader is
dropped and its socket closed, idle keep-alive and slow-header connections are closed.

The app runs on the server's own runner (``cli.make_runner``): aiohttp's test server cancels a
handler when its client goes away, the real one does not."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from hive_server import keys
from hive_server.app import create_app
from hive_server.cli import make_runner
from hive_server.llm.offline import OfflineClient
from hive_server.models.event_data import ClientOutputDelta
from tests.conftest import AUTH, make_settings
from tests.sse_reader import read_frame

BOUND = 3.0  # far below the 15 s keep-alive and the 30 s default send timeout
STREAM = ("GET /api/sessions/s/events?after_seq=0 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
          f"Authorization: {AUTH['Authorization']}\r\n\r\n")


async def until(check, timeout: float = BOUND) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


class Server:
    def __init__(self, runner: web.AppRunner):
        self.app = runner.app
        self.port = runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{self.port}/"

    def subscribers(self, session_id: str) -> int:
        return self.app[keys.SESSIONS].get(session_id).journal.bus.subscriber_count

    async def create_session(self) -> None:
        async with aiohttp.ClientSession(headers=AUTH) as http:
            async with http.post(self.url + "api/sessions", json={"session_id": "s"}) as resp:
                assert resp.status == 201

    async def connect(self, request: str) -> socket.socket:
        """A raw client with a small receive buffer that has sent ``request``."""
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        await loop.sock_connect(sock, ("127.0.0.1", self.port))
        await loop.sock_sendall(sock, request.encode())
        return sock


@pytest.fixture
async def serve(tmp_path) -> AsyncIterator:
    runners: list[web.AppRunner] = []

    async def start(**settings) -> Server:
        app = create_app(make_settings(tmp_path, **settings), llm=OfflineClient())
        runners.append(make_runner(app, app[keys.SETTINGS]))
        await runners[-1].setup()
        await web.TCPSite(runners[-1], "127.0.0.1", 0).start()
        return Server(runners[-1])

    yield start
    for runner in runners:
        await runner.cleanup()


async def read_to_end(sock: socket.socket, *, pause: float = 0.0) -> None:
    """Read ``sock`` (``pause`` between reads of 1 KiB: a slow reader) until the server
    closes it (EOF or reset), within ``BOUND``."""
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(BOUND):
        while True:
            try:
                if not await loop.sock_recv(sock, 1024):
                    return
            except ConnectionResetError:
                return
            await asyncio.sleep(pause)


async def test_a_closed_stream_unsubscribes_at_once_not_at_the_next_keepalive(serve):
    server = await serve()
    await server.create_session()
    async with aiohttp.ClientSession(headers=AUTH) as http:
        resp = await http.get(server.url + "api/sessions/s/events")
        assert await read_frame(resp) is not None
        assert server.subscribers("s") == 1
        resp.close()
        await until(lambda: server.subscribers("s") == 0)


async def test_a_stalled_reader_is_dropped_and_its_socket_closed(serve):
    server = await serve(sse_send_timeout_seconds=0.3)
    await server.create_session()
    sock = await server.connect(STREAM)
    try:
        await until(lambda: server.subscribers("s") == 1)
        session = server.app[keys.SESSIONS].get("s").journal
        text = "x" * 65536
        for _ in range(200):  # megabytes for a reader that takes a kilobyte at a time
            session.emit(ClientOutputDelta(content=text, snapshot=""))
        await until(lambda: server.subscribers("s") == 0)
        await read_to_end(sock, pause=0.01)  # its acks never let the kernel time it out
    finally:
        sock.close()


async def test_slow_headers_and_idle_keepalive_connections_are_closed(serve):
    server = await serve(idle_timeout_seconds=0.3)
    slow = await server.connect("GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: ")
    idle = await server.connect("GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                f"Authorization: {AUTH['Authorization']}\r\n\r\n")
    try:
        reply = await asyncio.get_running_loop().sock_recv(idle, 1 << 16)
        assert reply.startswith(b"HTTP/1.1 200")
        await asyncio.gather(read_to_end(slow), read_to_end(idle))
    finally:
        slow.close()
        idle.close()


async def test_every_stream_shares_one_disconnect_poller(serve):
    server = await serve()
    await server.create_session()
    async with aiohttp.ClientSession(headers=AUTH) as http:
        streams = [await http.get(server.url + "api/sessions/s/events") for _ in range(5)]
        for resp in streams:
            assert await read_frame(resp) is not None
        pollers = [t for t in asyncio.all_tasks() if t.get_name() == "sse-disconnects"]
        assert len(pollers) == 1 and server.subscribers("s") == 5
        for resp in streams[:3]:
            resp.close()
        await until(lambda: server.subscribers("s") == 2)
        for resp in streams[3:]:
            resp.close()
        await until(lambda: server.subscribers("s") == 0)
        await until(lambda: pollers[0].done())  # it stops with the last stream
