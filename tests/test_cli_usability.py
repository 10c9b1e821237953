"""The CLI explains itself: help for users, --version, ``hive-server token``, --token-file,
config errors in one line naming file, key and expected type, unknown config keys warned."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import tomllib
from pathlib import Path

import aiohttp
import pytest

from hive_server import __version__
from hive_server.cli import build_parser, main
from hive_server.settings import ENV_NAMES, Settings, SettingsError, load_settings
from tests.server_process import ServerProcess
from tests.test_cli import NO_FLAGS

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def no_shell_settings(monkeypatch):
    """The shell's HIVE_* must not decide these tests."""
    for name in os.environ:
        if name.startswith(("HIVE_", "ANTHROPIC_")):
            monkeypatch.delenv(name)


def test_help_is_for_users_and_names_both_commands(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "``" not in out and "->" not in out  # not the module's developer docstring
    assert "serve" in out and "token" in out and "--version" in out
    assert "hive_server ready: http://127.0.0.1:8787/?token=" in out


def test_serve_help_gives_every_option_its_default_and_env_variable():
    serve = build_parser()._subparsers._group_actions[0].choices["serve"]
    text = serve.format_help()
    options = [a for a in serve._actions if a.dest != "help"]
    assert {a.dest for a in options} == set(NO_FLAGS)
    for action in options:
        assert action.help and "(default: " in action.help, action.dest
        assert f"env {ENV_NAMES[action.dest]})" in action.help, action.dest
        default = Settings.model_fields[action.dest].default
        if isinstance(default, int | str) and not isinstance(default, bool):
            assert f"default: {getattr(default, 'value', default)};" in action.help
    assert "config.toml" in text and "ANTHROPIC_API_KEY" in text


def test_version_matches_the_package_and_pyproject(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert capsys.readouterr().out.strip() == f"hive-server {project['version']}"
    assert __version__ == project["version"]


def write_runtime(home: Path, **info: object) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "server.json").write_text(json.dumps(info))


def test_token_prints_the_running_servers_url_with_its_token(tmp_path, capsys, monkeypatch):
    home = tmp_path / "home"
    write_runtime(home, url="http://127.0.0.1:4321/", port=4321, pid=os.getpid(), token="t0k")
    monkeypatch.setenv("HIVE_HOME", str(home))
    assert main(["token"]) == 0
    assert capsys.readouterr().out == "http://127.0.0.1:4321/?token=t0k\n"
    write_runtime(home, url="http://127.0.0.1:4321/", port=4321, pid=os.getpid(), token=None)
    assert main(["token", "--home", str(home)]) == 0  # --no-auth: the bare URL
    assert capsys.readouterr().out == "http://127.0.0.1:4321/\n"


@pytest.mark.slow
async def test_token_without_a_running_server_says_so_and_exits_1(tmp_path, capsys):
    home = tmp_path / "home"
    assert main(["token", "--home", str(home)]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and "no server is running" in captured.err and str(home) in \
        captured.err
    exited = await asyncio.create_subprocess_exec("true")
    await exited.wait()  # a pid that no longer runs (a server killed with -9)
    write_runtime(home, url="http://127.0.0.1:4321/", port=4321, pid=exited.pid, token="t")
    assert main(["token", "--home", str(home)]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and f"process {exited.pid}" in captured.err
    (home / "server.json").write_text("{not json")
    assert main(["token", "--home", str(home)]) == 1
    assert "cannot read" in capsys.readouterr().err


@pytest.mark.slow
async def test_no_auth_ready_line_has_no_token_and_server_json_records_the_webhooks(tmp_path):
    server = ServerProcess(tmp_path, "--no-auth", "--webhook-port", "0")
    try:
        await server.start()
        assert server.token == ""  # the ready line carries no ?token=
        info = json.loads((server.home / "server.json").read_text())
        assert info["token"] is None and info["url"] == server.url
        hooks = info["webhook_url"]
        assert hooks.startswith("http://127.0.0.1:") and hooks.endswith("/hooks/")
        assert hooks != server.url + "hooks/"  # its own listener
        async with aiohttp.ClientSession() as http:
            async with http.get(server.url + "api/health") as resp:
                assert resp.status == 200
            async with http.post(hooks + "nobody/nothing", json={}) as resp:
                assert (resp.status, (await resp.json())["code"]) == (404, "agent_not_found")
        assert await server.stop(signal.SIGTERM) == 0
    finally:
        await server.kill_quietly()


def home_with_config(tmp_path: Path, text: str) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text(text)
    return home


def test_a_config_type_error_names_file_key_and_expected_type_in_one_line(tmp_path, capsys):
    home = home_with_config(tmp_path, 'port = "abc"\n')
    assert main(["serve", "--home", str(home)]) == 2
    err = capsys.readouterr().err
    assert err == (f"hive-server: invalid settings: {home / 'config.toml'}: port = 'abc': "
                   "expected an integer from 0 to 65535\n")
    assert "pydantic" not in err and "http" not in err


@pytest.mark.parametrize(("source", "said"), [
    ({"config": "durability = 'fast'\n"}, "config.toml: durability = 'fast': expected one of "
                                          "fsync, batch, none"),
    ({"config": "no_auth = 'maybe'\n"}, "config.toml: no_auth = 'maybe': expected true or false"),
    ({"config": "[server]\nsse-keepalive-seconds = 'x'\n"},
     "config.toml: sse_keepalive_seconds = 'x': expected a number"),
    ({"config": "allowed_hosts = 'a.example'\n"},
     "config.toml: allowed_hosts = 'a.example': expected a list of strings"),
    ({"env": {"HIVE_WEBHOOK_PORT": "70000"}},
     "HIVE_WEBHOOK_PORT: webhook_port = '70000': expected an integer from 0 to 65535"),
    ({"flags": {"log_level": "loud"}},
     "--log-level: log_level = 'loud': expected one of debug, info, warning, error"),
    ({"flags": {"allowed_origins": ["ftp://x"]}}, "--allow-origin: allowed_origins = "),
])
def test_each_error_names_where_the_value_came_from(tmp_path, source, said):
    home = home_with_config(tmp_path, source.get("config", ""))
    env = {"HIVE_HOME": str(home), **source.get("env", {})}
    with pytest.raises(SettingsError) as error:
        load_settings({**NO_FLAGS, **source.get("flags", {})}, env)
    assert said in str(error.value) and "\n" not in str(error.value)


def test_unknown_config_keys_are_a_warning_that_names_them(tmp_path, capsys):
    home = home_with_config(tmp_path, 'prot = 9000\nhome = "/elsewhere"\nport = 4444\n'
                                      'colour = "blue"\n')
    warnings: list[str] = []
    settings = load_settings(NO_FLAGS, {"HIVE_HOME": str(home)}, warn=warnings.append)
    assert settings.port == 4444 and settings.home == home
    [line] = warnings
    assert line.startswith(f"{home / 'config.toml'}: unknown keys ignored: ")
    assert "prot (did you mean port?)" in line and "colour" in line and "home (" in line
    assert main(["serve", "--home", str(home), "--port", "-1"]) == 2  # warns, then the error
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("hive-server: warning: ") and "prot" in err[0]
    assert err[1].startswith("hive-server: invalid settings: --port: port = -1")


def test_keys_outside_the_server_table_are_unknown(tmp_path):
    home = home_with_config(tmp_path, 'port = 1\n[server]\nlog-levle = "debug"\nport = 2\n')
    warnings: list[str] = []
    settings = load_settings(NO_FLAGS, {"HIVE_HOME": str(home)}, warn=warnings.append)
    assert settings.port == 2 and settings.log_level == "info"
    [line] = warnings
    assert "log-levle (did you mean log_level?)" in line and "port (outside [server])" in line


def test_known_config_keys_do_not_warn(tmp_path):
    home = home_with_config(tmp_path, '[server]\nport = 1\nmax-body-bytes = 10\ntoken = "x"\n'
                                      'allowed_hosts = ["a.example"]\n')
    warnings: list[str] = []
    settings = load_settings(NO_FLAGS, {"HIVE_HOME": str(home)}, warn=warnings.append)
    assert warnings == [] and settings.max_body_bytes == 10 and settings.token == "x"


def test_token_file_is_created_once_then_read(tmp_path):
    path = tmp_path / "state" / "token"
    env = {"HIVE_HOME": str(tmp_path / "home")}
    first = load_settings({**NO_FLAGS, "token_file": str(path)}, env)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == first.token + "\n" and len(first.token) >= 32
    assert first.token_file == path
    again = load_settings(NO_FLAGS, {**env, "HIVE_TOKEN_FILE": str(path)})
    assert again.token == first.token
    path.write_text("  chosen-by-the-shell\n")
    assert load_settings({**NO_FLAGS, "token_file": str(path)}, env).token == \
        "chosen-by-the-shell"


@pytest.mark.parametrize(("content", "mode", "said"), [
    ("secret\n", 0o644, "chmod 600"),
    ("\n", 0o600, "must hold one token"),
    ("two words\n", 0o600, "must hold one token"),
])
def test_a_bad_token_file_is_refused(tmp_path, content, mode, said):
    path = tmp_path / "token"
    path.write_text(content)
    path.chmod(mode)
    with pytest.raises(SettingsError) as error:
        load_settings({**NO_FLAGS, "token_file": str(path)}, {"HIVE_HOME": str(tmp_path)})
    assert said in str(error.value) and "--token-file" in str(error.value)


def test_token_file_and_token_together_are_refused(tmp_path):
    env = {"HIVE_HOME": str(tmp_path), "HIVE_TOKEN": "abc"}
    with pytest.raises(SettingsError) as error:
        load_settings({**NO_FLAGS, "token_file": str(tmp_path / "t")}, env)
    assert "HIVE_TOKEN" in str(error.value) and "--token-file" in str(error.value)
    assert not (tmp_path / "t").exists()
