"""Processes under test: our server (``python -m hive_server serve``) and the raw aiohttp app
(``python -m benchmarks.raw_app``), each on a free loopback port, plus the load client and
/proc readings (RSS, CPU time)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

TOKEN = "bench-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def scrubbed_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("HIVE_", "ANTHROPIC_"))}


class Proc:
    """A child serving HTTP on ``port``; ``start`` waits until ``probe`` answers 200."""

    def __init__(self, argv: list[str], port: int, probe: str, env: dict[str, str],
                 log: Path | None = None):
        self.argv, self.port, self.probe, self.env = argv, port, probe, env
        self.log = log  # the child's stderr (quoted when it exits before answering)
        self.url = f"http://127.0.0.1:{port}"
        self.proc: asyncio.subprocess.Process | None = None
        self.started_s = 0.0  # the last start's seconds from spawning to the probe's 200

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def start(self, timeout: float = 600.0) -> float:
        """Spawn and wait for the probe; the seconds it took."""
        started = time.monotonic()
        stderr = self._log_fd()
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv, stdout=asyncio.subprocess.DEVNULL, stderr=stderr, env=self.env)
        finally:
            if stderr != asyncio.subprocess.DEVNULL:
                os.close(stderr)
        async with aiohttp.ClientSession(headers=AUTH) as http, asyncio.timeout(timeout):
            while not await answers(http, self.url + self.probe):
                if self.proc.returncode is not None:
                    raise RuntimeError(f"{self.argv} exited with {self.proc.returncode}: "
                                       f"{self._stderr_tail()}")
                await asyncio.sleep(0.01)
        self.started_s = time.monotonic() - started
        return self.started_s

    def _log_fd(self) -> int:
        if self.log is None:
            return asyncio.subprocess.DEVNULL
        self.log.parent.mkdir(parents=True, exist_ok=True)
        return os.open(self.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def _stderr_tail(self) -> str:
        return self.log.read_text()[-2000:] if self.log and self.log.exists() else ""

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 60)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()

    async def __aenter__(self) -> Proc:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def answers(http: aiohttp.ClientSession, url: str) -> bool:
    try:
        async with http.get(url) as resp:
            return resp.status == 200
    except aiohttp.ClientError:
        return False


def our_server(root: Path, home: Path, *extra: str) -> Proc:
    port = free_port()
    argv = [sys.executable, "-m", "hive_server", "serve", "--port", str(port),
            "--home", str(home), "--agents-dir", str(root / "agents"),
            "--queens-dir", str(root / "queens"), "--log-level", "warning",
            "--durability", "batch", *extra]
    return Proc(argv, port, "/api/health", {**scrubbed_env(), "HIVE_TOKEN": TOKEN},
                log=root / f"server-{port}.log")


def raw_server() -> Proc:
    port = free_port()
    argv = [sys.executable, "-m", "benchmarks.raw_app", "--port", str(port)]
    return Proc(argv, port, "/hello", scrubbed_env())


async def load(port: int, path: str, *, seconds: float, method: str = "GET", body: str = "",
               conns: int = 16, depth: int = 4) -> dict[str, Any]:
    """Run ``benchmarks.load`` in its own process against ``port``; its JSON answer."""
    argv = [sys.executable, "-m", "benchmarks.load", "--port", str(port), "--path", path,
            "--method", method, "--body", body, "--header", f"Authorization: Bearer {TOKEN}",
            "--conns", str(conns), "--depth", str(depth), "--seconds", str(seconds)]
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE,
                                                env=scrubbed_env())
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"load client failed ({proc.returncode}) on {path}")
    return json.loads(out)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def cpu_seconds(pid: int) -> float:
    """CPU time of every thread of ``pid`` so far (schedstat: nanoseconds, not ticks)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except FileNotFoundError:  # a thread that just ended
            continue
    return total / 1e9
