"""File descriptors: the soft limit is raised at start, an idle session holds none, and when
they run out anyway a create answers 503 ``resource_exhausted`` and leaves no folder behind."""

from __future__ import annotations

import asyncio
import errno
import functools
import os
import resource
import sys
import time
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from hive_server.core.descriptors import remove_new_folder
from hive_server.core.eventlog import Durability, EventLog
from hive_server.models.events import Event
from hive_server.runtime import raise_fd_limit
from hive_server.web.errors import error_middleware
from tests.server_process import ServerProcess

LINUX = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
LIMIT = 48  # the whole server process: about 15 are taken before the first session


def descriptors_on(path: Path) -> int:
    """How many of this process's descriptors point at ``path``."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}") == str(path)
        except OSError:  # the listing's own descriptor, gone
            continue
    return count


async def until(check, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.005)


def event(seq: int) -> Event:
    return Event(seq=seq, type="client_output_delta", session_id="s", data={"n": seq})


@LINUX
@pytest.mark.parametrize("durability", list(Durability))
async def test_an_idle_log_holds_no_descriptor_and_reopens_for_the_next_append(
        tmp_path, durability):
    path = tmp_path / "events.jsonl"
    log = EventLog(path, durability, idle_close=0.01)
    await log.open()
    assert descriptors_on(path) == 1
    await log.append(event(1))
    await until(lambda: descriptors_on(path) == 0)
    await asyncio.gather(log.append(event(2)), log.append(event(3)))
    assert [e.seq for e in await log.read_after(0)] == [1, 2, 3]
    await until(lambda: descriptors_on(path) == 0)
    await log.close()
    assert path.read_bytes().count(b"\n") == 3


@LINUX
@pytest.mark.parametrize("durability", list(Durability))
async def test_a_quiet_log_closes_its_file_once_synced_not_after_the_idle_time(
        tmp_path, durability):
    """``quiet`` (a resumed session that is up): the file is closed at the log's next sync
    (``batch``) or at once, not ``idle_close`` later; the next append reopens it."""
    path = tmp_path / "events.jsonl"
    log = EventLog(path, durability, idle_close=3600)
    await log.open()
    await log.append(event(1))
    log.quiet()
    await until(lambda: descriptors_on(path) == 0)
    await log.append(event(2))
    assert [e.seq for e in await log.read_after(0)] == [1, 2]
    await log.close()
    assert path.read_bytes().count(b"\n") == 2


def test_the_soft_descriptor_limit_is_raised_to_the_hard_one():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    lowered = min(soft, 256)
    if lowered >= hard:
        pytest.skip("the hard limit leaves no room to raise")
    resource.setrlimit(resource.RLIMIT_NOFILE, (lowered, hard))
    try:
        assert raise_fd_limit() == (resource.getrlimit(resource.RLIMIT_NOFILE)[0], hard)
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] > lowered
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_half_made_folder_is_removed_by_name_when_rmtree_cannot_list_it(tmp_path):
    folder = tmp_path / "s"
    (folder / "workspace").mkdir(parents=True)
    (folder / "events.jsonl").write_bytes(b"")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    lowest_free = os.open(os.devnull, os.O_RDONLY)
    os.close(lowest_free)
    resource.setrlimit(resource.RLIMIT_NOFILE, (lowest_free, hard))  # no open can succeed
    try:
        with pytest.raises(OSError) as exc:  # the state the removal runs in
            os.open(folder, os.O_RDONLY)
        assert exc.value.errno == errno.EMFILE
        remove_new_folder(folder, ("events.jsonl", "meta.json"), ("workspace",))
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert not folder.exists()


async def test_out_of_descriptors_anywhere_is_503_not_500(aiohttp_client):
    async def handler(request):
        raise OSError(errno.EMFILE, "Too many open files")

    app = web.Application(middlewares=[error_middleware])
    app.router.add_get("/api/x", handler)
    client = await aiohttp_client(app)
    resp = await client.get("/api/x")
    assert resp.status == 503
    assert (await resp.json())["code"] == "resource_exhausted"


# the server's descriptor limit, set in the child before it starts (pickled to tests/zygote.py)
low_limit = functools.partial(resource.setrlimit, resource.RLIMIT_NOFILE, (LIMIT, LIMIT))


@pytest.mark.slow
@LINUX
async def test_running_out_of_descriptors_gives_503_never_500_nor_an_orphan_folder(tmp_path):
    server = ServerProcess(tmp_path, preexec=low_limit)
    await server.start()
    statuses: list[tuple[int, str]] = []
    try:
        connector = aiohttp.TCPConnector(limit=1)  # one connection, opened while fds remain
        async with aiohttp.ClientSession(headers=server.headers, connector=connector) as http:
            for _burst in range(3):  # a burst runs out; between bursts idle logs close
                for _ in range(40):
                    async with http.post(server.url + "api/sessions", json={}) as resp:
                        body = await resp.json()
                        statuses.append((resp.status, body.get("code", "")))
                await asyncio.sleep(1.5)  # the idle logs close (IDLE_CLOSE_SECONDS = 1)
    finally:
        await server.kill_quietly()
    assert {s for s in statuses if s[0] != 201} <= {(503, "resource_exhausted")}, statuses
    created = sum(1 for status, _ in statuses if status == 201)
    assert created > LIMIT  # more live sessions than the process has descriptors
    folders = list((server.home / "sessions").iterdir())
    assert len(folders) == created
    assert all((folder / "meta.json").is_file() for folder in folders)
