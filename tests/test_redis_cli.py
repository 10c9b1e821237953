"""``hive-server serve --redis URL`` (HIVE_REDIS_URL, config key ``redis``) at start. A Redis
that does not answer, or that cannot persist as ``--durability`` needs, stops the start with
one line and exit code 2; a good one is named, with the node's id, in server.json, the ready
line and ``/api/health``."""

from __future__ import annotations

import json

import aiohttp
import pytest
import redis

from hive_server.cli import main
from hive_server.settings import SettingsError, load_settings
from tests.redis_server import redis_test
from tests.server_process import ServerProcess
from tests.test_redis_backend import closed_port


def serve(tmp_path, *flags: str) -> int:
    return main(["serve", "--home", str(tmp_path / "home"), "--port", "0", *flags])


def test_the_url_comes_from_the_flag_the_environment_or_the_config(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text('redis = "redis://cfg:1/0"\n')
    flags = {"home": str(home)}
    assert load_settings(flags, environ={}).redis == "redis://cfg:1/0"
    env = {"HIVE_REDIS_URL": "redis://env:2/0"}
    assert load_settings(flags, environ=env).redis == "redis://env:2/0"
    assert load_settings({**flags, "redis": "unix:///r.sock"}, environ=env).redis == (
        "unix:///r.sock")
    assert load_settings({"home": str(tmp_path)}, environ={}).redis is None


def test_a_bad_url_is_an_invalid_setting_without_echoing_it(tmp_path, capsys):
    with pytest.raises(SettingsError, match="HIVE_REDIS_URL: redis = \\(not shown\\): expected"):
        load_settings({}, environ={"HIVE_REDIS_URL": "http://user:secret@h"})
    assert serve(tmp_path, "--redis", "redis://:secret@h:99999") == 2
    err = capsys.readouterr().err
    assert err.startswith("hive-server: invalid settings: --redis: redis = (not shown)")
    assert "secret" not in err


def test_a_redis_that_does_not_answer_stops_the_start(tmp_path, capsys):
    url = f"redis://:secret@127.0.0.1:{closed_port()}/0"
    assert serve(tmp_path, "--redis", url, "--durability", "none") == 2
    err = capsys.readouterr().err
    assert err.startswith("hive-server: cannot reach Redis at redis://:***@127.0.0.1:")
    assert err.count("\n") == 1 and "secret" not in err
    assert not (tmp_path / "home" / "server.json").exists()


@redis_test
def test_a_redis_that_cannot_honour_the_durability_stops_the_start(tmp_path, capsys, redis_url):
    with redis.Redis.from_url(redis_url) as client:
        client.config_set("appendfsync", "everysec")  # the fixture puts it back
    assert serve(tmp_path, "--redis", redis_url, "--durability", "fsync") == 2
    err = capsys.readouterr().err
    assert err.startswith("hive-server: --durability fsync needs Redis's append-only file "
                          "synced on every write, but Redis has appendonly yes, appendfsync "
                          "everysec; run `redis-cli CONFIG SET appendonly yes` and "
                          "`redis-cli CONFIG SET appendfsync always`")
    assert err.count("\n") == 1


@redis_test
async def test_a_server_with_a_good_redis_names_it_and_its_node(tmp_path, redis_url):
    server = await ServerProcess(tmp_path, "--redis", redis_url, "--durability", "fsync",
                                 "--node-id", "n1").start()
    try:
        info = json.loads((server.home / "server.json").read_text())
        assert (info["backend"], info["redis"], info["node_id"]) == ("redis", redis_url, "n1")
        assert server.ready_line.endswith(f"; redis {redis_url}, node n1)\n")
        async with aiohttp.ClientSession(headers=server.headers) as http:
            async with http.get(server.url + "api/health") as resp:
                health = await resp.json()
        assert (health["backend"], health["node_id"]) == ("redis", "n1")
    finally:
        await server.kill_quietly()

