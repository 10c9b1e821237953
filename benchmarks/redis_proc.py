"""A redis-server of the benchmark's own (Debian's package): on a free loopback port, its files
in a temp folder, persisting in an append-only file (``appendonly yes``, no RDB snapshots),
stopped when the block ends, also on a failure or Ctrl-C (and, should this process die
without cleaning up, by the kernel: the server gets SIGTERM when its parent exits)."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import shutil
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

from benchmarks.procs import free_port

INSTALL = ("redis-server is not installed: `sudo apt-get install redis-server` "
           "(./scripts/setup does it when run as root)")
START_ATTEMPTS = 5  # a port taken between picking it and the server binding it: try another
READY = "Ready to accept connections"
PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True)


def redis_binary() -> str | None:
    return shutil.which("redis-server")


def die_with_parent() -> None:
    """In the child before exec: SIGTERM when the benchmark's process ends, however it ends."""
    _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


async def _start(binary: str, directory: Path, appendfsync: str,
                 ) -> tuple[asyncio.subprocess.Process, int] | None:
    """One server, once its log says it accepts connections; None when the port was taken."""
    port = free_port()
    log = directory / f"redis-{port}.log"
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        process = await asyncio.create_subprocess_exec(
            binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "yes", "--appendfsync", appendfsync, "--dir", str(directory),
            "--daemonize", "no", "--logfile", "", stdin=asyncio.subprocess.DEVNULL,
            stdout=fd, stderr=fd, preexec_fn=die_with_parent)
    finally:
        os.close(fd)
    deadline = time.monotonic() + 30
    while READY not in (text := log.read_text()):
        if process.returncode is not None or time.monotonic() > deadline:
            await _stop(process)
            if "Address already in use" in text:
                return None
            raise RuntimeError(f"redis-server did not start ({process.returncode}): "
                               f"{text[-2000:]}")
        await asyncio.sleep(0.01)
    return process, port


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()


@contextlib.asynccontextmanager
async def redis_server(directory: Path, appendfsync: str = "everysec") -> AsyncIterator[str]:
    """The URL of a redis-server of its own for the block, its files in ``directory`` (which
    exists); see the module docstring."""
    binary = redis_binary()
    if binary is None:
        raise RuntimeError(INSTALL)
    for _ in range(START_ATTEMPTS):
        if started := await _start(binary, directory, appendfsync):
            break
    else:
        raise RuntimeError(f"redis-server found no free port in {START_ATTEMPTS} attempts")
    process, port = started
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        await _stop(process)
