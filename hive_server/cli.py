"""``hive-server serve``: flags -> Settings -> run the app until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import orjson
from aiohttp import web
from pydantic import ValidationError

from hive_server import keys
from hive_server.app import create_app, create_webhook_app
from hive_server.settings import Settings, load_settings

log = logging.getLogger("hive_server")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hive-server", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the server")
    add = serve.add_argument
    add("--host", help="listen address (HIVE_HOST, default 127.0.0.1)")
    add("--port", type=int, help="port, 0 picks a free one (HIVE_PORT, default 8787)")
    add("--home", help="state directory (HIVE_HOME, default ~/.hive)")
    add("--agents-dir", help="agent folders (HIVE_AGENTS_DIR, default ./agents)")
    add("--queens-dir", help="queen profiles (HIVE_QUEENS_DIR, default ./queens)")
    add("--durability", choices=["fsync", "batch", "none"],
        help="event log durability (HIVE_DURABILITY, default batch)")
    add("--no-auth", action="store_true", default=None,
        help="no API token; loopback only (HIVE_NO_AUTH)")
    add("--log-level", choices=["debug", "info", "warning", "error"],
        help="log level (HIVE_LOG_LEVEL, default info)")
    add("--model", help="model id (HIVE_MODEL)")
    add("--webhook-host", help="serve /hooks/* on a separate listener (HIVE_WEBHOOK_HOST)")
    add("--webhook-port", type=int, help="port of that listener (HIVE_WEBHOOK_PORT)")
    add("--ui-dir", help="serve this built single-page app from / (HIVE_UI_DIR)")
    add("--allow-origin", action="append", dest="allowed_origins", metavar="ORIGIN",
        help="also accept this scheme://host[:port] for cookie requests and CORS; "
             "repeatable (HIVE_ALLOWED_ORIGINS, comma-separated)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    flags = {k: v for k, v in vars(args).items() if k != "command"}
    try:
        settings = load_settings(flags)
    except (ValidationError, ValueError) as exc:
        print(f"hive-server: invalid settings: {_one_line(exc)}", file=sys.stderr)
        return 2
    if settings.no_auth and not settings.is_loopback:
        print("hive-server: --no-auth is only allowed on a loopback --host", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    lock = _lock_home(settings.home)
    if lock is None:
        print(f"hive-server: HIVE_HOME {settings.home} is already in use by another "
              "hive-server (see its server.json)", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve(settings))
    finally:
        os.close(lock)
    return 0


def _one_line(exc: ValidationError | ValueError) -> str:
    if not isinstance(exc, ValidationError):
        return str(exc)
    return "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in exc.errors())


def _lock_home(home: Path) -> int | None:
    """Hold ``$HIVE_HOME/server.lock`` for this process (the OS drops it when we exit, even
    on kill -9); None when another server holds it: two would write the same session logs."""
    home.mkdir(parents=True, exist_ok=True, mode=0o700)  # conversations live here
    fd = os.open(home / "server.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


async def serve(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    app = create_app(settings)
    runner = web.AppRunner(app, shutdown_timeout=2.0, handle_signals=False)
    await runner.setup()
    hooks_runner: web.AppRunner | None = None
    runtime = settings.home / "server.json"
    try:
        site = web.TCPSite(runner, settings.host, settings.port)
        await site.start()
        port = runner.addresses[0][1]
        url = f"http://{_url_host(settings.host)}:{port}/"
        if settings.webhook_port is not None:
            hooks_runner = await _start_webhook_listener(app, settings)
        _write_runtime(runtime, url, port, settings.token)
        llm = app[keys.LLM]
        print(f"hive_server ready: {url}?token={settings.token} "
              f"(model provider: {llm.provider}, model: {llm.default_model})", flush=True)
        await stop.wait()
        log.info("shutting down")
    finally:
        if hooks_runner is not None:
            await hooks_runner.cleanup()
        await runner.cleanup()
        runtime.unlink(missing_ok=True)


async def _start_webhook_listener(app: web.Application, settings: Settings) -> web.AppRunner:
    runner = web.AppRunner(create_webhook_app(app), shutdown_timeout=2.0, handle_signals=False)
    await runner.setup()
    host = settings.webhook_host or settings.host
    await web.TCPSite(runner, host, settings.webhook_port).start()
    port = runner.addresses[0][1]
    print(f"hive_server webhooks: http://{_url_host(host)}:{port}/hooks/", flush=True)
    return runner


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _write_runtime(path: Path, url: str, port: int, token: str) -> None:
    """A fresh 0600 file: whatever a crash left there (a wider mode, a link) is replaced, so
    the token is never written into a readable file or through a link."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = orjson.dumps({"url": url, "port": port, "pid": os.getpid(), "token": token,
                            "started_at": time.time()}, option=orjson.OPT_INDENT_2)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(payload)
