"""tests/zygote.py, the preloaded interpreter most server processes of the suite fork from: a
forked child behaves as ``python -m hive_server`` would, and no child outlives its zygote."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys

import pytest

from tests import zygote
from tests.server_process import ServerProcess, server_env

pytestmark = pytest.mark.slow  # every test here starts a process


async def test_a_forked_cli_reads_its_environment_prints_and_exits_as_the_exec_one_does(
        tmp_path):
    argv = ("serve", "--home", str(tmp_path / "home"))
    env = {**server_env(), "HIVE_PORT": "not-a-port"}  # the child's environment, not ours
    forked = await zygote.spawn(argv, env, stderr=asyncio.subprocess.PIPE)
    execed = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hive_server", *argv, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    async with asyncio.timeout(30):
        got = await forked.communicate()
        expected = await execed.communicate()
    assert (forked.returncode, got) == (execed.returncode, expected)
    assert forked.returncode == 2 and b"HIVE_PORT" in got[1], got


async def test_a_killed_server_reports_the_signal_and_the_zygote_takes_its_children_along(
        tmp_path):
    server = await ServerProcess(tmp_path).start()
    assert server.proc is not None
    server.proc.kill()
    assert await server.proc.wait() == -signal.SIGKILL
    assert server.proc.returncode == -signal.SIGKILL

    own = zygote.Zygote("plain")  # not the worker's: this test closes it
    out = os.open(os.devnull, os.O_WRONLY)
    try:
        spawn = zygote.Spawn(("serve", "--port", "0", "--home", str(tmp_path / "own")),
                             server_env(), str(tmp_path), None)
        pid, exited = own.spawn(spawn, (0, out, out))
    finally:
        os.close(out)
    own.sock.shutdown(socket.SHUT_RDWR)  # the worker end gone: the zygote kills its child, exits
    assert await asyncio.to_thread(own.process.wait, 30) == 0
    with pytest.raises(RuntimeError, match="the zygote process exited"):
        await asyncio.wrap_future(exited)
    with pytest.raises(ProcessLookupError):  # killed and reaped
        os.kill(pid, 0)
