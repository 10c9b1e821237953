"""Run ``python -m hive_server serve`` as a real process for end-to-end tests (a fork of the
worker's preloaded interpreter, tests/zygote.py)."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import IO

import aiohttp

from tests import zygote

RESUME_POLL = 0.02  # seconds between health polls while sessions resume
READY = re.compile(r"hive_server ready: (http://[^/\s]+/)(?:\?token=(\S+))?")


def server_env() -> dict[str, str]:
    """This process's environment without any HIVE_* or ANTHROPIC_* setting: a child server
    takes its home and folders from the flags a test gives it, and never reaches the real API."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "HIVE_"))}


class ServerProcess:
    def __init__(self, tmp_path: Path, *extra: str, env: dict[str, str] | None = None,
                 preexec: Callable[[], None] | None = None, stderr: IO[bytes] | None = None):
        self.tmp_path = tmp_path
        self.extra = extra
        self.env = env or {}  # added to the scrubbed environment (a fake API's URL and key)
        # run in the child before the server starts (setrlimit): a module-level function or a
        # partial of one, pickled to tests/zygote.py, whose fork the server is
        self.preexec = preexec
        self.stderr = stderr  # where the child's stderr (its log) goes; None: discarded
        self.proc: zygote.ForkedProcess | None = None
        self.url = ""
        self.token = ""
        self.ready_line = ""  # the line the server printed when ready, newline included

    @property
    def home(self) -> Path:
        return self.tmp_path / "home"

    async def start(self, timeout: float = 30.0) -> ServerProcess:
        argv = ("serve", "--port", "0", "--home", str(self.home),
                "--agents-dir", str(self.tmp_path / "agents"),
                "--queens-dir", str(self.tmp_path / "queens"), *self.extra)
        stderr = asyncio.subprocess.DEVNULL if self.stderr is None else self.stderr
        env = {**server_env(), **self.env}
        self.proc = await zygote.spawn(argv, env, stderr=stderr, preexec=self.preexec)
        assert self.proc.stdout is not None
        async with asyncio.timeout(timeout):
            while True:
                line = (await self.proc.stdout.readline()).decode()
                if not line:
                    raise AssertionError("server exited before printing its ready line")
                if match := READY.search(line):
                    self.url, self.token = match.group(1), match.group(2) or ""
                    self.ready_line = line
                    break
            await self._resumed()
        return self

    async def _resumed(self) -> None:
        """Until health says no session is left to resume (the listener opens first)."""
        async with aiohttp.ClientSession(headers=self.headers) as http:
            while True:
                async with http.get(self.url + "api/health") as resp:
                    if resp.status == 200 and (await resp.json())["resuming"] == 0:
                        return
                await asyncio.sleep(RESUME_POLL)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def stop(self, sig: int, timeout: float = 30.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        async with asyncio.timeout(timeout):
            return await self.proc.wait()

    async def kill_quietly(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
