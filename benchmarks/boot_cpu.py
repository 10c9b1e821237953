"""Resume and shutdown of N live sessions in this process: wall time and CPU per session.

    .venv/bin/python -m benchmarks.boot_cpu --sessions 2000

The home is made as ``benchmarks.boot`` makes it (one real session, copied N-1 times). The
app is built and started here (``create_app`` + ``AppRunner.setup``, no listener), then
timed: until every session is resumed (``BootResume.wait``), and the manager's shutdown
with the server's timeout (grace 10 s minus 1). CPU is this process's (every thread) and the
event loop thread's alone: steadier than wall time on a busy machine. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from benchmarks.boot import copy_sessions, make_template
from benchmarks.procs import AUTH, TOKEN
from hive_server import keys
from hive_server.app import create_app
from hive_server.settings import Settings

SHUTDOWN_TIMEOUT = 9.0  # the server's: a 10 s grace minus the reserve kept for the listeners


class Stopwatch:
    def __init__(self) -> None:
        self.wall, self.cpu, self.loop = time.monotonic(), time.process_time(), time.thread_time()

    def per(self, count: int) -> dict[str, float]:
        """Wall seconds, and CPU ms per ``count`` (every thread, the loop thread alone)."""
        return {"s": time.monotonic() - self.wall,
                "cpu_ms": (time.process_time() - self.cpu) * 1000 / max(count, 1),
                "loop_cpu_ms": (time.thread_time() - self.loop) * 1000 / max(count, 1)}


async def measure(home: Path, sessions: int) -> dict[str, Any]:
    app = create_app(Settings(home=home, token=TOKEN, watch_folders=False))
    runner = web.AppRunner(app)
    watch = Stopwatch()
    await runner.setup()
    manager = app[keys.SESSIONS]
    await manager.boot.wait()
    resumed = {f"resume_{k}": v for k, v in watch.per(sessions).items()}
    live = len(manager.live())
    watch = Stopwatch()
    await manager.shutdown(timeout=SHUTDOWN_TIMEOUT)
    stopped = {f"shutdown_{k}": v for k, v in watch.per(live).items()}
    await runner.cleanup()
    # past the timeout, the sessions still stopping were cut short (logged as a warning)
    return {"live": live, **resumed, **stopped,
            "shutdown_within_timeout": stopped["shutdown_s"] < SHUTDOWN_TIMEOUT}


async def run(sessions: int) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="hive-boot-cpu-"))
    try:
        async with aiohttp.ClientSession(headers=AUTH) as http:
            template = await make_template(root, http)
        copy_sessions(template, root / "home", sessions)
        return {"measure": "boot_cpu", "sessions": sessions,
                **await measure(root / "home", sessions)}
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=2000, help="live sessions on disk")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args.sessions))
    print(json.dumps({key: round(value, 3) if isinstance(value, float) else value
                      for key, value in result.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
