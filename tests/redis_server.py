"""A real ``redis-server`` (Debian's package) for the tests of the Redis backend.

``redis_server``: one server per pytest process (so one per xdist worker), on a free loopback
port (redis-server has no ``--port 0``: a free port is picked and the start retried when it
was taken meanwhile), persisting as the ``fsync`` durability needs (``appendonly yes``,
``appendfsync always``, no RDB snapshots), its files in a temporary folder; stopped at the end
of the session. ``redis_url``: that server emptied (FLUSHALL) and its persistence settings put
back for each test, so no test sees another's keys or config. ``redis_client``: an asyncio
client on it for the test's loop.

Without redis-server a test that asks for it is skipped with how to install it, except under
``CI=true``, where that is a failure. Registered from tests/conftest.py (``pytest_plugins``).
Tests that use it carry ``REDIS_MARKS``: ``redis``, and ``slow`` since the first one in a
process starts the server (conftest fails a test that starts a process unmarked).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    import redis.asyncio

REDIS_MARKS = (pytest.mark.redis, pytest.mark.slow)
INSTALL = ("redis-server is not installed: `sudo apt-get install redis-server` "
           "(./scripts/setup does it when run as root)")
START_ATTEMPTS = 5  # a port taken between picking it and the server binding it: try another
PERSISTENCE = ("appendonly", "yes", "appendfsync", "always")  # what ``fsync`` needs


def redis_test(test):
    """Mark a test ``REDIS_MARKS``."""
    for mark in REDIS_MARKS:
        test = mark(test)
    return test


@dataclass(frozen=True)
class RedisServer:
    port: int
    directory: Path
    process: subprocess.Popen[str]
    output: list[str]  # the server's log lines, for a failure's message

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _drain(process: subprocess.Popen[str], output: list[str]) -> None:
    """Keep reading the server's log once it is ready (a full pipe would stall it)."""
    assert process.stdout is not None
    output.extend(process.stdout)


def _start(binary: str, directory: Path, extra: tuple[str, ...]) -> RedisServer | None:
    """One redis-server on a free port, once it says it accepts connections (its own log
    line: no polling); None when the port was taken meanwhile."""
    port = _free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "yes", "--appendfsync", "always", "--dir", str(directory),
         "--daemonize", "no", "--logfile", "", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    output: list[str] = []
    for line in process.stdout:
        output.append(line)
        if "Ready to accept connections" in line:
            threading.Thread(target=_drain, args=(process, output), daemon=True).start()
            return RedisServer(port, directory, process, output)
    process.wait()
    if any("Address already in use" in line for line in output):
        return None
    raise RuntimeError(f"redis-server exited ({process.returncode}): {''.join(output)[-2000:]}")


def _stop(server: RedisServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@contextlib.contextmanager
def running_redis(directory: Path, *extra: str) -> Iterator[RedisServer]:
    """A redis-server of its own (``extra``: more of its options) for the block; skipped (a
    failure under CI=true) when redis-server is not installed."""
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{INSTALL}; under CI=true the Redis tests fail instead of skipping",
                        pytrace=False)
        pytest.skip(INSTALL)
    for _ in range(START_ATTEMPTS):
        server = _start(binary, directory, extra)
        if server is not None:
            break
    else:
        raise RuntimeError(f"redis-server found no free port in {START_ATTEMPTS} attempts")
    try:
        yield server
    finally:
        _stop(server)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with running_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    """The server, empty, persisting as ``fsync`` needs (a test may change that: put back)."""
    import redis  # here, not at the top: the xdist controller loads this plugin and runs no test
    with redis.Redis.from_url(redis_server.url) as client:
        client.config_set(*PERSISTENCE)
        client.flushall()
    yield redis_server.url
    with redis.Redis.from_url(redis_server.url) as client:
        client.config_set(*PERSISTENCE)


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    import redis.asyncio
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        await client.aclose()
