"""The real server process: ready line, server.json, SIGTERM with open streams, kill -9."""

from __future__ import annotations

import asyncio
import json
import signal
import stat
import sys
import time

import aiohttp
import pytest

from tests.server_process import ServerProcess


@pytest.fixture
async def server(tmp_path):
    proc = ServerProcess(tmp_path)
    yield proc
    await proc.kill_quietly()


async def test_serves_health_with_printed_token_and_cleans_up(server):
    await server.start()
    runtime = server.home / "server.json"
    info = json.loads(runtime.read_text())
    assert info["token"] == server.token and info["url"] == server.url
    assert info["pid"] == server.proc.pid
    assert stat.S_IMODE(runtime.stat().st_mode) == 0o600
    async with aiohttp.ClientSession() as http:
        async with http.get(server.url + "api/health", headers=server.headers) as resp:
            assert resp.status == 200
            assert (await resp.json())["provider"] == "offline"
        async with http.get(server.url + "api/health") as resp:
            assert resp.status == 401
    assert await server.stop(signal.SIGTERM) == 0
    assert not runtime.exists()


async def test_sigterm_with_100_open_streams_exits_fast(server):
    await server.start()
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(headers=server.headers, connector=connector) as http:
        async with http.post(server.url + "api/sessions", json={"session_id": "s"}) as resp:
            assert resp.status == 201
        async with asyncio.timeout(60):
            streams = await asyncio.gather(
                *(http.get(server.url + "api/sessions/s/events") for _ in range(100)))
        assert all(s.status == 200 for s in streams)
        started = time.monotonic()
        code = await server.stop(signal.SIGTERM, timeout=10)
        elapsed = time.monotonic() - started
        for stream in streams:
            stream.close()
    assert code == 0
    assert elapsed < 5.0, f"SIGTERM took {elapsed:.2f}s"


async def test_kill_9_keeps_seq_contiguous_and_resumes(server, tmp_path):
    await server.start()
    async with aiohttp.ClientSession(headers=server.headers) as http:
        for sid in ("a", "b"):
            async with http.post(server.url + "api/sessions", json={"session_id": sid}) as r:
                assert r.status == 201
        async with http.delete(server.url + "api/sessions/b") as r:
            assert r.status == 200
    server.proc.kill()
    await server.proc.wait()
    again = ServerProcess(tmp_path)
    try:
        await again.start()
        async with aiohttp.ClientSession(headers=again.headers) as http:
            async with http.get(again.url + "api/sessions") as r:
                live = [s["session_id"] for s in (await r.json())["sessions"]]
        assert live == ["a"]
        assert await again.stop(signal.SIGTERM) == 0
    finally:
        await again.kill_quietly()
    for sid in ("a", "b"):
        lines = (server.home / "sessions" / sid / "events.jsonl").read_text().splitlines()
        seqs = [json.loads(line)["seq"] for line in lines]
        assert seqs == list(range(1, len(seqs) + 1))
    types = [json.loads(x)["type"] for x in
             (server.home / "sessions" / "a" / "events.jsonl").read_text().splitlines()]
    assert types[0] == "session_started" and types[-2:] == ["session_started", "session_stopped"]


async def test_refuses_no_auth_on_public_host(tmp_path):
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hive_server", "serve", "--host", "0.0.0.0", "--no-auth",
        "--home", str(tmp_path / "home"), stderr=asyncio.subprocess.PIPE,
    )
    _, err = await proc.communicate()
    assert proc.returncode == 2
    assert b"--no-auth" in err


async def test_second_server_on_the_same_home_is_refused(server, tmp_path):
    await server.start()
    async with aiohttp.ClientSession(headers=server.headers) as http:
        async with http.post(server.url + "api/sessions", json={"session_id": "s"}) as resp:
            assert resp.status == 201
    runtime = (server.home / "server.json").read_bytes()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hive_server", "serve", "--port", "0",
        "--home", str(server.home), "--agents-dir", str(tmp_path / "agents"),
        "--queens-dir", str(tmp_path / "queens"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(30):
            out, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 2
    assert b"ready" not in out and b"already in use" in err
    assert (server.home / "server.json").read_bytes() == runtime
    log = (server.home / "sessions" / "s" / "events.jsonl").read_text().splitlines()
    assert [json.loads(line)["type"] for line in log] == ["session_started"]
    async with aiohttp.ClientSession() as http:
        async with http.get(server.url + "api/health", headers=server.headers) as resp:
            assert resp.status == 200


async def test_stale_server_json_is_replaced_not_written_through(server, tmp_path):
    server.home.mkdir()
    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_text("not yours")
    (server.home / "server.json").symlink_to(elsewhere)
    await server.start()
    runtime = server.home / "server.json"
    assert not runtime.is_symlink()
    assert stat.S_IMODE(runtime.stat().st_mode) == 0o600
    assert json.loads(runtime.read_text())["token"] == server.token
    assert elsewhere.read_text() == "not yours"
