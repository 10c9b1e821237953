"""README's "Five minutes with hive_server", run as written against live server processes.

The section's ```bash blocks are parsed from README.md. A block whose first line is
``# terminal 1`` starts the server: ``./scripts/serve`` runs as ``python -m hive_server serve``
(``scripts/setup`` has its own test in test_setup_script.py). ``# terminal 2`` blocks run one
after another in one bash process (``set -eo pipefail``), as typed into one terminal, in the
repository's folder with ``HIVE_HOME`` under tmp_path and ``HIVE_PORT=0``. Between blocks the
test polls the server until every queen and worker is idle, as a reader waits for the output.
"""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import signal
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.server_process import READY, server_env

pytestmark = pytest.mark.slow  # every test here starts a process

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## Five minutes with hive_server"
BLOCK = re.compile(r"^```bash\n(.*?)^```", re.MULTILINE | re.DOTALL)
SERVE = "./scripts/serve"
DATA = "data: {"


def walkthrough_blocks() -> list[tuple[str, str]]:
    """``(terminal, commands)`` for every shell block of the section, in order."""
    text = (ROOT / "README.md").read_text()
    start = text.index(SECTION)
    end = text.index("\n## ", start + len(SECTION))
    blocks = []
    for body in BLOCK.findall(text[start:end]):
        first, _, commands = body.partition("\n")
        assert first in ("# terminal 1", "# terminal 2"), f"unlabelled block: {body!r}"
        blocks.append((first.removeprefix("# "), commands))
    return blocks


class Server:
    """A terminal-1 block: the server it starts, with the URL and token of its ready line."""

    def __init__(self, proc: asyncio.subprocess.Process):
        self.proc = proc
        self.url = self.token = ""

    @classmethod
    async def start(cls, command: str, env: dict[str, str]) -> Server:
        assert command.startswith(SERVE), command
        python = f"{shlex.quote(sys.executable)} -m hive_server serve"
        proc = await asyncio.create_subprocess_exec(
            "bash", "-c", "exec " + command.replace(SERVE, python, 1), cwd=ROOT, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
        server = cls(proc)
        assert proc.stdout is not None
        async with asyncio.timeout(30):
            while not (match := READY.search(line := (await proc.stdout.readline()).decode())):
                if not line:
                    raise AssertionError("the server exited before its ready line")
        server.url, server.token = match.group(1), match.group(2) or ""
        return server

    async def exited(self) -> int:
        async with asyncio.timeout(30):
            return await self.proc.wait()

    def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()


class Shell:
    """One bash fed block by block; stdout is kept, a marker on stderr ends each block."""

    def __init__(self, proc: asyncio.subprocess.Process):
        self.proc = proc
        self.out = bytearray()
        self.blocks = 0
        self.reader = asyncio.create_task(self._collect())

    @classmethod
    async def start(cls, env: dict[str, str]) -> Shell:
        proc = await asyncio.create_subprocess_exec(
            "bash", "--noprofile", "--norc", cwd=ROOT, env=env, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        shell = cls(proc)
        await shell.send("set -eo pipefail\n")
        return shell

    async def _collect(self) -> None:
        assert self.proc.stdout is not None
        while chunk := await self.proc.stdout.read(65536):
            self.out.extend(chunk)

    async def send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text.encode())
        await self.proc.stdin.drain()

    async def run(self, commands: str) -> None:
        self.blocks += 1
        marker = f"__block_{self.blocks}_done__"
        await self.send(f"{commands}\necho {marker} >&2\n")
        assert self.proc.stderr is not None
        said = []
        async with asyncio.timeout(30):
            while (line := (await self.proc.stderr.readline()).decode()).strip() != marker:
                if not line:
                    raise AssertionError(f"the shell stopped in:\n{commands}\nstderr: {said}\n"
                                         f"stdout: {self.text[-3000:]}")
                said.append(line)
        assert not said, f"{commands}\nwrote to stderr: {said}"

    async def close(self) -> int:
        self.proc.stdin.close()
        async with asyncio.timeout(30):
            await self.reader
            return await self.proc.wait()

    @property
    def text(self) -> str:
        return self.out.decode()

    def frames(self) -> list[dict[str, Any]]:
        """Every SSE ``data:`` line the background streams printed. A stream writes a frame
        whenever it comes, so one may follow a longer answer's first part on its line (our
        compact JSON never holds ``data: {``)."""
        decoder = json.JSONDecoder()
        return [decoder.raw_decode(line, line.index(DATA) + len(DATA) - 1)[0]
                for line in self.text.splitlines() if DATA in line]


async def settle(server: Server, streams: int) -> None:
    """Wait (polling) until the server has ``streams`` event streams open (a background
    ``curl -sN`` connects when bash gets to it, maybe after the chat that follows it), every
    live session is idle with no worker and no queued input, and its log stood still between
    two polls."""
    last: object = None
    headers = {"Authorization": f"Bearer {server.token}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        async with asyncio.timeout(30):
            while True:
                state = await _idle_state(http, server.url)
                if await _open_streams(http, server.url) < streams:
                    state = None
                if state is not None and state == last:
                    return
                last = state
                await asyncio.sleep(0.05)


async def _idle_state(http: aiohttp.ClientSession, url: str) -> object:
    async with http.get(url + "api/sessions") as resp:
        ids = [s["session_id"] for s in (await resp.json())["sessions"]]
    seqs = []
    for sid in ids:
        async with http.get(f"{url}api/sessions/{sid}/snapshot") as resp:
            snap = await resp.json()
        if (snap["activity"] == "executing" or snap["queued_inputs"]
                or snap["active_worker_count"]):
            return None
        seqs.append((sid, snap["snapshot_seq"]))
    return seqs


async def _open_streams(http: aiohttp.ClientSession, url: str) -> int:
    async with http.get(url + "metrics") as resp:
        text = await resp.text()
    [value] = re.findall(r"^hive_sse_subscribers (\S+)$", text, re.MULTILINE)
    return int(float(value))


@pytest.fixture
def walk_env(tmp_path) -> dict[str, str]:
    return {**server_env(), "HIVE_HOME": str(tmp_path / "home"), "HIVE_PORT": "0",
            "HOME": str(tmp_path)}


async def test_the_five_minutes_section_runs_as_written(walk_env, tmp_path):
    blocks = walkthrough_blocks()
    assert [t for t, _ in blocks].count("terminal 1") == 2, "start, then restart"
    assert (ROOT / ".venv/bin/hive-server").exists(), "run ./scripts/setup first"
    servers: list[Server] = []
    shell = await Shell.start(walk_env)
    try:
        for terminal, commands in blocks:
            if terminal == "terminal 1":
                if servers:  # the README stopped it from terminal 2
                    assert await servers[-1].exited() == 0
                servers.append(await Server.start(commands.strip(), walk_env))
                streams = 0
                continue
            await shell.run(commands)
            streams += commands.count("curl -sN")
            if servers[-1].proc.returncode is None and "kill" not in commands:
                await settle(servers[-1], streams)
        servers[-1].proc.send_signal(signal.SIGINT)  # "Ctrl-C in terminal 1"
        assert await servers[-1].exited() == 0
        assert await shell.close() == 0
    finally:
        for server in servers:
            server.kill()
        if shell.proc.returncode is None:
            shell.proc.kill()
    check_what_the_reader_saw(shell, servers, tmp_path / "home")


def check_what_the_reader_saw(shell: Shell, servers: list[Server], home: Path) -> None:
    text, frames = shell.text, shell.frames()
    first, second = servers
    assert '"status":"ok"' in text  # compact JSON: every answer is serialised by its model
    assert f"{first.url}?token={first.token}" in text  # hive-server token
    assert (home / "token").read_text().strip() == second.token  # --token-file made it
    types = [f["type"] for f in frames]
    assert "session_snapshot" in types, f"no snapshot frame; the shell printed:\n{text[-4000:]}"
    at = types.index("session_snapshot")  # where the stream opened after the restart begins
    before, after = frames[:at], frames[at:]
    # ?after_seq=0: every event from the first, live ones following, no gap
    assert [f["seq"] for f in before] == list(range(1, len(before) + 1))
    for kind in ("session_started", "client_input_received", "client_output_delta",
                 "llm_turn_complete", "tool_call_completed", "worker_colony_loaded",
                 "trigger_fired", "worker_started", "worker_completed"):
        assert kind in types[:at], kind
    # no cursor: the snapshot, then the tail (the stop and the resume in it), then live
    tail = [f["seq"] for f in after[1:]]
    assert tail == list(range(tail[0], tail[0] + len(tail)))
    assert {"session_stopped", "session_started"} <= {f["type"] for f in after}
    replies = [json.dumps(f["data"]["message"]) for f in frames
               if f["type"] == "llm_turn_complete"]
    said = "\n".join(replies)
    assert 'You said: \\"Hello, queen\\"' in said
    assert "Tool get_time returned" in said and "Europe/Berlin" in text
    assert "Tool run_worker returned" in said and "digest-" in said
    assert 'You said: \\"Do you remember me?\\". Previous: \\"call:list_files {}\\"' in replies[-1]
    [session] = [p.name for p in (home / "sessions").iterdir()]
    assert list((home / "sessions" / session / "workspace").glob("digest-*.md"))
    # an answer's line may end in a stream's "id: <seq>" written before api's newline
    listed = [json.JSONDecoder().raw_decode(line)[0] for line in text.splitlines()
              if line.startswith('{"session_id"')]
    [trigger] = listed[-1]["triggers"]  # listed after the restart
    assert (trigger["trigger_id"], trigger["fire_count"]) == ("evening-digest", 1)
