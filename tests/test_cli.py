"""The real server process: ready line, server.json, SIGTERM with open streams, kill -9."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import stat
import time

import aiohttp
import pytest

from hive_server.cli import build_parser, main
from hive_server.settings import SettingsError, load_settings
from tests import zygote
from tests.server_process import ServerProcess, server_env


@pytest.fixture
async def server(tmp_path):
    proc = ServerProcess(tmp_path)
    yield proc
    await proc.kill_quietly()


@pytest.mark.slow
async def test_serves_health_with_printed_token_and_cleans_up(server):
    await server.start()
    runtime = server.home / "server.json"
    info = json.loads(runtime.read_text())
    assert info["token"] == server.token and info["url"] == server.url
    assert info["pid"] == server.proc.pid
    assert info["webhook_url"] is None  # no second listener
    assert (info["backend"], info["redis"], info["node_id"]) == ("file", None, None)
    assert server.ready_line.endswith("(model provider: offline, model: offline-1)\n")
    assert stat.S_IMODE(runtime.stat().st_mode) == 0o600
    assert stat.S_IMODE(server.home.stat().st_mode) == 0o700  # a new home is private
    async with aiohttp.ClientSession() as http:
        async with http.get(server.url + "api/health", headers=server.headers) as resp:
            assert resp.status == 200
            assert (await resp.json())["provider"] == "offline"
        async with http.get(server.url + "api/health") as resp:
            assert resp.status == 401
    assert await server.stop(signal.SIGTERM) == 0
    assert not runtime.exists()


@pytest.mark.slow
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
        ends = await asyncio.gather(*(ended_cleanly(stream) for stream in streams))
    assert code == 0
    assert elapsed < 5.0, f"SIGTERM took {elapsed:.2f}s"
    # The server ends every stream itself; cut off by the 2 s shutdown timeout instead, a
    # chunked response stops without its last chunk (still under 5 s, so the time alone
    # would not tell).
    assert ends == [True] * len(streams)


async def ended_cleanly(stream: aiohttp.ClientResponse) -> bool:
    """Read what is left of a response; False if the connection was cut mid-response."""
    try:
        async with asyncio.timeout(10):
            await stream.content.read()
    except aiohttp.ClientPayloadError:
        return False
    finally:
        stream.close()
    return True


@pytest.mark.slow
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
    assert types[0] == "session_started"
    assert types[-3:] == ["session_started", "session_summary", "session_stopped"]


async def run_to_exit(*args: str, timeout: float = 30.0) -> tuple[int, bytes, bytes]:
    """Run ``python -m hive_server`` to its exit (killed if it outlives ``timeout``), forked
    from tests/zygote.py's preloaded interpreter (the README walk-through execs the entry)."""
    proc = await zygote.spawn(args, server_env(), stderr=asyncio.subprocess.PIPE)
    try:
        async with asyncio.timeout(timeout):
            out, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, out, err


@pytest.mark.slow
async def test_refuses_no_auth_on_public_host(tmp_path):
    code, out, err = await run_to_exit(
        "serve", "--host", "0.0.0.0", "--port", "0", "--no-auth",
        "--home", str(tmp_path / "home"), "--agents-dir", str(tmp_path / "agents"),
        "--queens-dir", str(tmp_path / "queens"))
    assert code == 2
    assert b"--no-auth" in err and b"ready" not in out
    assert not (tmp_path / "home" / "server.json").exists()


@pytest.mark.slow
async def test_second_server_on_the_same_home_is_refused(server, tmp_path):
    await server.start()
    async with aiohttp.ClientSession(headers=server.headers) as http:
        async with http.post(server.url + "api/sessions", json={"session_id": "s"}) as resp:
            assert resp.status == 201
    runtime = (server.home / "server.json").read_bytes()
    code, out, err = await run_to_exit(
        "serve", "--port", "0", "--home", str(server.home),
        "--agents-dir", str(tmp_path / "agents"), "--queens-dir", str(tmp_path / "queens"))
    assert code == 2
    assert b"ready" not in out and b"already in use" in err
    assert (server.home / "server.json").read_bytes() == runtime
    log = (server.home / "sessions" / "s" / "events.jsonl").read_text().splitlines()
    assert [json.loads(line)["type"] for line in log] == ["session_started"]
    async with aiohttp.ClientSession() as http:
        async with http.get(server.url + "api/health", headers=server.headers) as resp:
            assert resp.status == 200


@pytest.mark.slow
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


NO_FLAGS = {name: None for name in ("host", "port", "home", "agents_dir", "queens_dir",
                                    "durability", "no_auth", "log_level", "model",
                                    "webhook_host", "webhook_port", "ui_dir",
                                    "allowed_origins", "token_file",
                                    "shutdown_grace_seconds", "access_log",
                                    "slow_request_seconds", "stale_turn_seconds",
                                    "resume_concurrency", "session_budget_tokens",
                                    "session_budget_usd", "daily_budget_tokens",
                                    "daily_budget_usd", "watch_folders", "redis",
                                    "node_id", "lease_seconds")}


def test_settings_precedence_is_flag_env_config_default(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text(
        '[server]\nport = 1111\ndurability = "none"\nlog-level = "debug"\nmodel = "from-config"\n')
    env = {"HIVE_HOME": str(home), "HIVE_PORT": "2222", "HIVE_DURABILITY": "fsync"}
    settings = load_settings({**NO_FLAGS, "port": 3333}, env)
    assert settings.home == home
    assert settings.port == 3333  # flag > env > config
    assert settings.durability == "fsync"  # env > config
    assert (settings.log_level, settings.model) == ("debug", "from-config")  # config > default
    assert settings.host == "127.0.0.1" and settings.no_auth is False  # defaults
    assert load_settings({**NO_FLAGS, "home": str(tmp_path / "other")}, env).port == 2222


def test_every_serve_option_has_an_env_var(tmp_path):
    (tmp_path / "ui").mkdir()
    (tmp_path / "ui" / "index.html").write_text("<!doctype html>")
    env = {"HIVE_HOST": "::1", "HIVE_PORT": "0", "HIVE_HOME": str(tmp_path / "h"),
           "HIVE_AGENTS_DIR": str(tmp_path / "a"), "HIVE_QUEENS_DIR": str(tmp_path / "q"),
           "HIVE_DURABILITY": "none", "HIVE_NO_AUTH": "1", "HIVE_LOG_LEVEL": "error",
           "HIVE_UI_DIR": str(tmp_path / "ui"), "HIVE_SHUTDOWN_GRACE_SECONDS": "2.5",
           "HIVE_ALLOWED_ORIGINS": "http://localhost:5173, https://Hive.Example:443",
           "HIVE_ACCESS_LOG": "yes", "HIVE_SLOW_REQUEST_SECONDS": "0.25",
           "HIVE_RESUME_CONCURRENCY": "3", "HIVE_SESSION_BUDGET_TOKENS": "5000",
           "HIVE_DAILY_BUDGET_USD": "2.5", "HIVE_WATCH_FOLDERS": "false",
           "HIVE_REDIS_URL": "redis://127.0.0.1:6379/0", "HIVE_NODE_ID": "n1",
           "HIVE_LEASE_SECONDS": "4.5"}
    settings = load_settings(NO_FLAGS, env)
    assert settings.resume_concurrency == 3 and settings.watch_folders is False
    assert (settings.redis, settings.node_id, settings.lease_seconds) == (
        "redis://127.0.0.1:6379/0", "n1", 4.5)
    assert (settings.session_budget_tokens, settings.daily_budget_usd) == (5000, 2.5)
    assert (settings.access_log, settings.slow_request_seconds) == (True, 0.25)
    assert (settings.host, settings.port, settings.durability, settings.no_auth,
            settings.log_level) == ("::1", 0, "none", True, "error")
    assert settings.ui_dir == tmp_path / "ui"
    assert settings.shutdown_grace_seconds == 2.5
    assert settings.allowed_origins == ("http://localhost:5173", "https://hive.example")
    assert (settings.home, settings.agents_dir, settings.queens_dir) == (
        tmp_path / "h", tmp_path / "a", tmp_path / "q")
    options = set(vars(build_parser().parse_args(["serve"]))) - {"command"}
    assert options == set(NO_FLAGS)


def serve_flags(*argv: str) -> dict[str, object]:
    return {k: v for k, v in vars(build_parser().parse_args(["serve", *argv])).items()
            if k != "command"}


def test_folders_are_watched_unless_the_flag_the_env_or_the_config_says_not(tmp_path):
    home = tmp_path / "home"
    env = {"HIVE_HOME": str(home)}
    assert load_settings(serve_flags(), env).watch_folders is True
    assert load_settings(serve_flags("--no-watch-folders"), env).watch_folders is False
    assert load_settings(serve_flags(), env | {"HIVE_WATCH_FOLDERS": "0"}).watch_folders is False
    home.mkdir()
    (home / "config.toml").write_text("watch_folders = false\n")
    assert load_settings(serve_flags(), env).watch_folders is False
    assert load_settings(serve_flags(), env | {"HIVE_WATCH_FOLDERS": "Yes"}).watch_folders is True


@pytest.mark.parametrize(("config", "said"), [
    ("server = 5\n", "config.toml"),
    ("port = \n", "config.toml"),
    (b"port = '\xff'\n", "config.toml"),
    ("[server]\nport = 99999\n", "port"),
    (None, "config.toml"),  # a folder where the file should be
])
def test_a_bad_config_file_is_reported_not_a_traceback(tmp_path, capsys, monkeypatch, config,
                                                        said):
    for name in os.environ:  # a HIVE_PORT of the shell would win over the broken file
        if name.startswith(("HIVE_", "ANTHROPIC_")):
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    home.mkdir()
    if config is None:
        (home / "config.toml").mkdir()
    else:
        data = config if isinstance(config, bytes) else config.encode()
        (home / "config.toml").write_bytes(data)
    assert main(["serve", "--home", str(home)]) == 2
    err = capsys.readouterr().err
    assert "invalid settings" in err and said in err


def test_log_level_is_case_insensitive(tmp_path):
    env = {"HIVE_HOME": str(tmp_path / "home"), "HIVE_LOG_LEVEL": "DEBUG"}
    assert load_settings(NO_FLAGS, env).log_level == "debug"


def test_default_folders_are_absolute_and_config_cannot_move_home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text(f'home = "{tmp_path / "elsewhere"}"\nport = 4444\n')
    monkeypatch.chdir(tmp_path)
    settings = load_settings(NO_FLAGS, {"HIVE_HOME": str(home)})
    assert settings.home == home.resolve() and settings.port == 4444
    assert settings.agents_dir == (tmp_path / "agents").resolve()
    assert settings.queens_dir.is_absolute()


def test_shutdown_grace_comes_from_flag_env_or_config_and_must_be_positive(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text("shutdown-grace-seconds = 4\nidle_timeout_seconds = 7\n")
    env = {"HIVE_HOME": str(home)}
    assert load_settings(NO_FLAGS, env).shutdown_grace_seconds == 4
    assert load_settings(NO_FLAGS, env).idle_timeout_seconds == 7
    assert load_settings(NO_FLAGS, {**env, "HIVE_SHUTDOWN_GRACE_SECONDS": "3"}
                         ).shutdown_grace_seconds == 3
    flags = vars(build_parser().parse_args(["serve", "--shutdown-grace", "0.5"]))
    assert load_settings({**NO_FLAGS, **flags}, env).shutdown_grace_seconds == 0.5
    with pytest.raises(SettingsError) as error:
        load_settings({**NO_FLAGS, "shutdown_grace_seconds": 0.0}, env)
    assert str(error.value) == ("--shutdown-grace: shutdown_grace_seconds = 0.0: expected a "
                                "number above 0")


@pytest.mark.slow
async def test_a_port_in_use_is_one_line_that_suggests_port_0(tmp_path):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        code, out, err = await run_to_exit(
            "serve", "--port", str(port), "--home", str(tmp_path / "home"),
            "--agents-dir", str(tmp_path / "agents"), "--queens-dir", str(tmp_path / "queens"))
    finally:
        taken.close()
    lines = err.decode().strip().splitlines()
    assert code == 2 and b"ready" not in out
    assert len(lines) == 1, lines  # no traceback
    assert f"port {port} on 127.0.0.1 is already in use" in lines[0]
    assert "--port 0" in lines[0]
    assert not (tmp_path / "home" / "server.json").exists()
