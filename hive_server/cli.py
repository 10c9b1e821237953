"""The ``hive-server`` command: ``serve`` runs the server until SIGTERM/SIGINT, ``token``
prints the running server's URL with its token. Flags -> ``load_settings`` -> ``create_app``."""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from hive_server import __version__, cli_tools, keys
from hive_server.app import create_app, create_webhook_app
from hive_server.core.redis_url import shown
from hive_server.redis_check import redis_problem
from hive_server.runtime import (
    HomeLock,
    exit_now_if_threads_remain,
    hard_exit_after,
    raise_fd_limit,
)
from hive_server.settings import (
    ENV_NAMES,
    Settings,
    SettingsError,
    load_settings,
    resolve_home,
)
from hive_server.web.access_log import runner_options

log = logging.getLogger("hive_server")
HARD_EXIT_MARGIN = 1.5  # after the grace period, seconds before the process is ended anyway
LOCK_WAIT_MARGIN = 5.0  # a server waits this much longer than its grace for a stopping one

DESCRIPTION = """\
hive_server: a local agent host for Hive's desktop UI. It runs sessions with a queen agent,
loads agent folders as colonies of workers, fires timer and webhook triggers, and streams
every event over Server-Sent Events (each session's events are also kept in its
events.jsonl, so sessions survive a restart)."""

MAIN_EPILOG = """\
Start a server with `hive-server serve`; it prints
  hive_server ready: http://127.0.0.1:8787/?token=<token> (model provider: ..., model: ...)
and writes $HIVE_HOME/server.json (url, port, pid, token). `hive-server serve --help` lists
every option with its default."""

SERVE_EPILOG = """\
Every option can also be set by its HIVE_* environment variable or in
$HIVE_HOME/config.toml (the same names with _ or -, optionally under [server]): a flag wins
over the environment, which wins over the file. config.toml also takes token,
allowed_hosts, max_body_bytes, max_message_chars, sse_queue_size, sse_keepalive_seconds,
sse_send_timeout_seconds (a stream whose reader takes no data for that long is closed; 30),
idle_timeout_seconds (an idle keep-alive connection, or one still sending its request
headers, is closed after that long; 60) and queen_inbox_size; unknown keys are reported and
ignored.

With ANTHROPIC_API_KEY set the queen and her workers run on Claude; without it they run on
the offline model (deterministic, no network).

When ready it prints one line, `hive_server ready: <url>?token=<token> (...)`, and writes
$HIVE_HOME/server.json (mode 0600: url, port, pid, token, webhook_url, started_at, backend
("file", or "redis" with --redis), redis (the URL, without its password, or null), node_id
(this node's id with --redis, else null)), removed on a clean exit.
`hive-server token` prints that URL again.

SIGTERM or SIGINT stops the server within --shutdown-grace seconds: sessions stop (their
events stored, kept live so the next start resumes them); a tool call still running then is
abandoned. A server started on the same HIVE_HOME while another one stops says it is waiting
for it and starts once it is gone. Exit codes: 0 after SIGTERM or SIGINT, 1 when the shutdown
outlived its grace period, 2 for invalid settings, a port in use, a HIVE_HOME a running
server holds, or a --redis that does not answer or cannot persist as --durability needs."""

# (flag, Settings field, argparse keywords, help); the default and the env variable follow.
SERVE_OPTIONS: list[tuple[str, str, dict[str, Any], str]] = [
    ("--host", "host", {"metavar": "ADDR"}, "address to listen on"),
    ("--port", "port", {"type": int}, "port to listen on; 0 picks a free one"),
    ("--home", "home", {"metavar": "DIR"},
     "state folder: sessions and their event logs, server.json, config.toml"),
    ("--agents-dir", "agents_dir", {"metavar": "DIR"}, "agent folders, loaded as colonies"),
    ("--queens-dir", "queens_dir", {"metavar": "DIR"}, "queen profiles (<id>.yaml)"),
    ("--durability", "durability", {"choices": ["fsync", "batch", "none"]},
     "when an event counts as stored: fsync (synced to disk), batch (written, synced "
     "within 10 ms), none (written, synced when the session closes)"),
    ("--redis", "redis", {"metavar": "URL"},
     "keep sessions in Redis at URL (redis://[user:password@]host[:port][/db], rediss://, "
     "unix://): their event logs, metas, the sessions index, leases and triggers, with the "
     "webhook inbox and the day's spend, so several nodes on one Redis serve and run them; "
     "each node keeps its own --home (config, workspaces). Refuse to start (exit code 2) "
     "when Redis does not answer or does not persist as --durability needs"),
    ("--node-id", "node_id", {"metavar": "ID"},
     "with --redis: this node's id in the cluster (letters, digits, . _ -)"),
    ("--lease-seconds", "lease_seconds", {"type": float, "metavar": "S"},
     "with --redis: how long a session's lease outlives its owner's last renewal before "
     "another node takes the session over"),
    ("--no-auth", "no_auth", {"action": "store_true", "default": None},
     "serve without the API token; only on a loopback --host"),
    ("--token-file", "token_file", {"metavar": "PATH"},
     "read the API token from PATH, or create PATH (mode 0600) with a new random token if it "
     "is missing, so every start uses the same token; not with HIVE_TOKEN"),
    ("--shutdown-grace", "shutdown_grace_seconds",
     {"type": float, "metavar": "SECONDS", "dest": "shutdown_grace_seconds"},
     "after SIGTERM or SIGINT, how long sessions get to stop before the process exits anyway "
     "(a tool call still running is abandoned)"),
    ("--stale-turn-seconds", "stale_turn_seconds", {"type": float, "metavar": "SECONDS"},
     "fail a queen turn that produces no event for this long (execution_failed, error_type "
     "stale; a turn waiting on ask_user never goes stale)"),
    ("--resume-concurrency", "resume_concurrency", {"type": int, "metavar": "N"},
     "at start, resume at most N of the sessions that were live at the last stop at once "
     "(the API answers meanwhile; /api/health says how many are left)"),
    ("--session-budget-tokens", "session_budget_tokens", {"type": int, "metavar": "N"},
     "each new session's spend limit in tokens (input plus output, the queen and her "
     "workers); PATCH /api/sessions/{id} changes one session's"),
    ("--session-budget-usd", "session_budget_usd", {"type": float, "metavar": "USD"},
     "each new session's spend limit in USD (from the price table; offline costs 0)"),
    ("--daily-budget-tokens", "daily_budget_tokens", {"type": int, "metavar": "N"},
     "server-wide limit: tokens of every session together per UTC day"),
    ("--daily-budget-usd", "daily_budget_usd", {"type": float, "metavar": "USD"},
     "server-wide limit: USD of every session together per UTC day"),
    ("--log-level", "log_level", {"choices": ["debug", "info", "warning", "error"]},
     "log level"),
    ("--access-log", "access_log", {"action": "store_true", "default": None},
     "log every request (aiohttp.access, INFO); off, only a slow request and a 5xx answer are "
     "logged (WARNING), and a 4xx at --log-level debug"),
    ("--slow-request-seconds", "slow_request_seconds", {"type": float, "metavar": "SECONDS"},
     "a request that takes this long is logged (WARNING)"),
    ("--model", "model", {"metavar": "ID"}, "model of the queen and her workers"),
    ("--webhook-host", "webhook_host", {"metavar": "ADDR"},
     "serve /hooks/* on a second listener at this address"),
    ("--webhook-port", "webhook_port", {"type": int, "metavar": "PORT"},
     "port of that second listener (0 picks a free one)"),
    ("--ui-dir", "ui_dir", {"metavar": "DIR"},
     "serve this built single-page app (a folder with index.html) from /"),
    ("--no-watch-folders", "watch_folders",
     {"action": "store_false", "default": None, "dest": "watch_folders"},
     "scan the agents and queens folders once at start instead of reloading them whenever "
     "they change (HIVE_WATCH_FOLDERS=false, or watch_folders = false in config.toml, does "
     "the same)"),
    ("--allow-origin", "allowed_origins",
     {"action": "append", "dest": "allowed_origins", "metavar": "ORIGIN"},
     "also accept cookie requests and CORS from this scheme://host[:port]; repeatable "
     "(comma-separated in the env variable)"),
]
DEFAULTS_SHOWN = {
    "home": "~/.hive", "agents_dir": "./agents", "queens_dir": "./queens",
    "no_auth": "off, a token is required", "access_log": "off",
    "token_file": "none, a new random token each start unless HIVE_TOKEN is set",
    "model": "claude-sonnet-5-5 with ANTHROPIC_API_KEY, else offline-1",
    "webhook_host": "the --host", "webhook_port": "none, /hooks/* is on the main port",
    "ui_dir": "none", "allowed_origins": "none", "session_budget_tokens": "no limit",
    "session_budget_usd": "no limit", "daily_budget_tokens": "no limit",
    "daily_budget_usd": "no limit",
    "watch_folders": "watched, both folders are reloaded while the server runs",
    "redis": "none", "node_id": "<host name>-<pid>",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hive-server", description=DESCRIPTION, epilog=MAIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"hive-server {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, title="commands",
                                metavar="{serve,token,check-log,export-session,import-session}")
    serve = sub.add_parser(
        "serve", help="run the server until SIGTERM or Ctrl-C", description=DESCRIPTION,
        epilog=SERVE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    for flag, field, kwargs, text in SERVE_OPTIONS:
        serve.add_argument(flag, **kwargs, help=f"{text} (default: {_default(field)}; "
                                                f"env {ENV_NAMES[field]})")
    token = sub.add_parser(
        "token", help="print the running server's URL with its token",
        description="Print the URL of the server running on HIVE_HOME with its token "
                    "(from $HIVE_HOME/server.json). Exit code 1 when no server runs there.")
    token.add_argument("--home", metavar="DIR",
                       help="state folder of that server (default: ~/.hive; env HIVE_HOME)")
    cli_tools.add_check_log(sub)
    cli_tools.add_transfer(sub)
    return parser


def _default(field: str) -> str:
    if field in DEFAULTS_SHOWN:
        return DEFAULTS_SHOWN[field]
    default = Settings.model_fields[field].default
    return str(getattr(default, "value", default))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "token":
        return print_token(args.home)
    if args.command in cli_tools.COMMANDS:
        return cli_tools.run(args, resolve_home(args.home), _lock_home)
    flags = {k: v for k, v in vars(args).items() if k != "command"}
    try:
        settings = load_settings(flags, warn=_warn)
    except SettingsError as exc:
        print(f"hive-server: invalid settings: {exc}", file=sys.stderr)
        return 2
    if (problem := _start_problem(settings)) is not None:
        _say(problem)
        return 2
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    lock = HomeLock.acquire(settings.home, wait=settings.shutdown_grace_seconds + LOCK_WAIT_MARGIN,
                            say=_say)
    if lock is None:
        return 2
    soft, _ = raise_fd_limit()
    log.debug("open-file limit: %d", soft)
    try:
        asyncio.run(serve(settings, lock))
    except PortInUse as exc:
        _say(str(exc))
        return 2
    finally:
        lock.release()
    exit_now_if_threads_remain(0)
    return 0


def _start_problem(settings: Settings) -> str | None:
    """Why the server cannot start with these settings (one line), or None."""
    if settings.no_auth and not settings.is_loopback:
        return "--no-auth is only allowed on a loopback --host"
    if settings.redis is not None:  # reachable, persisting as --durability needs
        return redis_problem(settings.redis, settings.durability)
    return None


class PortInUse(Exception):
    """A listener's port is taken (a one-line message for the user, no traceback)."""


def _say(line: str) -> None:
    print(f"hive-server: {line}", file=sys.stderr, flush=True)


def _warn(line: str) -> None:
    print(f"hive-server: warning: {line}", file=sys.stderr, flush=True)


def print_token(home_flag: str | None) -> int:
    """``hive-server token``: the URL of the server running on that home, with its token."""
    home = resolve_home(home_flag)
    runtime = home / "server.json"
    try:
        info = orjson.loads(runtime.read_bytes())
        url, token, pid = info["url"], info["token"], info["pid"]
    except FileNotFoundError:
        print(f"hive-server: no server is running on {home} (no server.json there; start one "
              "with `hive-server serve`)", file=sys.stderr)
        return 1
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError) as exc:
        print(f"hive-server: cannot read {runtime}: {exc!r}", file=sys.stderr)
        return 1
    if not _process_alive(pid):
        print(f"hive-server: no server is running on {home} ({runtime} is left over from "
              f"process {pid}, which has exited)", file=sys.stderr)
        return 1
    print(_link(url, token))
    return 0


def _process_alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def _link(url: str, token: str | None) -> str:
    """The URL to open: with ``?token=`` unless the server runs without auth."""
    return url if token is None else f"{url}?token={token}"


def _lock_home(home: Path) -> int | None:
    """Hold ``$HIVE_HOME/server.lock`` for this process (the OS drops it when we exit, even
    on kill -9); None when another server holds it: two would write the same session logs."""
    lock = HomeLock.try_acquire(home)
    return None if lock is None else lock.fd


def make_runner(app: web.Application, settings: Settings) -> web.AppRunner:
    """The app's runner: an idle keep-alive connection, or one whose request headers have not
    all arrived, is closed after ``idle_timeout_seconds`` (aiohttp's keep-alive timer also
    runs from the moment a connection opens until its first request is complete)."""
    return web.AppRunner(app, shutdown_timeout=2.0, handle_signals=False,
                         keepalive_timeout=settings.idle_timeout_seconds,
                         **runner_options(settings))


async def listen(runner: web.AppRunner, host: str, port: int, flag: str) -> None:
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        raise PortInUse(f"port {port} on {host} is already in use; choose another with "
                        f"{flag} PORT, or {flag} 0 for a free one") from None


async def serve(settings: Settings, lock: HomeLock | None = None) -> None:
    """Serve until SIGTERM/SIGINT, then stop within ``shutdown_grace_seconds``: the lock file
    says the server is stopping, server.json goes, the app is cleaned up (bounded); if even
    that outlives the grace period by ``HARD_EXIT_MARGIN``, a timer ends the process."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    app = create_app(settings)
    runner = make_runner(app, settings)
    await runner.setup()
    hooks_runner: web.AppRunner | None = None
    runtime = settings.home / "server.json"
    grace = settings.shutdown_grace_seconds
    try:
        await listen(runner, settings.host, settings.port, "--port")
        webhook_url = None
        if settings.webhook_port is not None:
            hooks_runner, webhook_url = await _start_webhook_listener(app, settings)
        _announce(app, settings, runner.addresses[0][1], webhook_url, runtime)
        await stop.wait()
        log.info("shutting down (grace %g s)", grace)
        if lock is not None:
            lock.mark_stopping()
        runtime.unlink(missing_ok=True)  # no longer serving
        hard_exit_after(grace + HARD_EXIT_MARGIN, lambda: runtime.unlink(missing_ok=True))
    finally:
        try:
            async with asyncio.timeout(grace):
                if hooks_runner is not None:
                    await hooks_runner.cleanup()
                await runner.cleanup()
        except TimeoutError:
            log.error("shutdown did not finish within %g s (--shutdown-grace); exiting "
                      "anyway", grace)
        runtime.unlink(missing_ok=True)


def _announce(app: web.Application, settings: Settings, port: int, webhook_url: str | None,
              runtime: Path) -> None:
    """Write ``server.json`` and print the ready line (the URL with its token)."""
    url = f"http://{_url_host(settings.host)}:{port}/"
    token = settings.token if settings.auth_required else None
    redis = None if settings.redis is None else shown(settings.redis)
    node = app.get(keys.REDIS_NODE)
    node_id = None if node is None else node.node_id
    _write_runtime(runtime, {"url": url, "port": port, "pid": os.getpid(), "token": token,
                             "webhook_url": webhook_url, "started_at": time.time(),
                             "backend": "file" if node is None else "redis", "redis": redis,
                             "node_id": node_id})
    llm = app[keys.LLM]
    auth = "" if token else "no auth; "
    cluster = "" if node is None else f"; redis {redis}, node {node_id}"
    print(f"hive_server ready: {_link(url, token)} ({auth}model provider: {llm.provider}, "
          f"model: {llm.default_model}{cluster})", flush=True)


async def _start_webhook_listener(app: web.Application,
                                  settings: Settings) -> tuple[web.AppRunner, str]:
    runner = make_runner(create_webhook_app(app), settings)
    await runner.setup()
    host = settings.webhook_host or settings.host
    assert settings.webhook_port is not None
    await listen(runner, host, settings.webhook_port, "--webhook-port")
    url = f"http://{_url_host(host)}:{runner.addresses[0][1]}/hooks/"
    print(f"hive_server webhooks: {url}", flush=True)
    return runner, url


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _write_runtime(path: Path, info: dict[str, Any]) -> None:
    """A fresh 0600 file: whatever a crash left there (a wider mode, a link) is replaced, so
    the token is never written into a readable file or through a link."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = orjson.dumps(info, option=orjson.OPT_INDENT_2)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(payload)
