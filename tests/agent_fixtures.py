"""Agent folders for the colony and worker tests, and the meeting point their tools.py share.

``write_agent`` writes a real folder; ``agents_tree`` a realistic agents dir with valid agents,
invalid folders and junk next to them. The ``tools.py`` sources below are loaded by the server
from disk like any agent's. ``MEETING_TOOLS`` reach the test through ``MEETING``: the test
installs a fresh ``Meeting`` (made in its own event loop) before it starts workers.
"""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from tests.queen_support import chat

MEET_TIMEOUT = 5.0

NOTES_TOOLS = '''\
from pathlib import Path


def append_note(text: str, workspace: Path) -> str:
    """Append one line to notes.txt in the session workspace."""
    with (workspace / "notes.txt").open("a", encoding="utf-8") as handle:
        handle.write(text + "\\n")
    return f"noted {text}"


def explode(reason: str) -> str:
    """Always fails."""
    raise ValueError(reason)


def _private_helper(x: int) -> int:
    return x


def unhinted(x):
    return x
'''

MEETING_TOOLS = '''\
from tests import agent_fixtures


async def meet(name: str) -> str:
    """Wait until the other worker is here too (an error after a while alone)."""
    return await agent_fixtures.MEETING.meet(name)


async def hold(name: str) -> str:
    """Wait until the test opens the gate."""
    return await agent_fixtures.MEETING.hold(name)
'''


def version_tools(version: str) -> str:
    return f'def version() -> str:\n    """The code version."""\n    return "{version}"\n'


class Meeting:
    """Where the tools of a running worker and the test meet.

    ``meet`` is a barrier of ``parties`` workers: it only returns when that many run at once
    (``RuntimeError`` after ``MEET_TIMEOUT`` alone). ``hold`` waits until ``gate`` is set and
    notes a cancellation in ``cancelled``.
    """

    def __init__(self, parties: int = 2) -> None:
        self.barrier = asyncio.Barrier(parties)
        self.gate = asyncio.Event()
        self.arrived: list[str] = []
        self.cancelled: list[str] = []

    async def meet(self, name: str) -> str:
        self.arrived.append(name)
        try:
            async with asyncio.timeout(MEET_TIMEOUT):
                await self.barrier.wait()
        except TimeoutError:
            raise RuntimeError(f"{name} waited alone: no other worker was running") from None
        return f"{name} met the others"

    async def hold(self, name: str) -> str:
        self.arrived.append(name)
        try:
            await self.gate.wait()
        except asyncio.CancelledError:
            self.cancelled.append(name)
            raise
        return f"{name} passed the gate"


MEETING = Meeting()
BLOCKING = threading.Event()  # the gate of a sync tool that blocks its thread


def write_agent(agents_dir: Path, agent_id: str, manifest: dict[str, Any] | str | None = None,
                *, tools: str | None = None, triggers: list[Any] | str | None = None,
                readme: str | None = None) -> Path:
    """The folder ``agents_dir/agent_id``: ``agent.json`` from ``manifest`` (a dict, or raw
    text), and each of ``tools.py``, ``triggers.json`` (a list, or raw text) and ``README.md``
    that is given. The one builder of agent folders in the tests."""
    folder = agents_dir / agent_id
    folder.mkdir(parents=True, exist_ok=True)
    if manifest is not None:
        text = manifest if isinstance(manifest, str) else json.dumps(manifest)
        (folder / "agent.json").write_text(text)
    if triggers is not None and not isinstance(triggers, str):
        triggers = json.dumps(triggers, indent=2)
    for name, content in (("tools.py", tools), ("triggers.json", triggers),
                          ("README.md", readme)):
        if content is not None:
            (folder / name).write_text(content)
    return folder


NOTES_MANIFEST: dict[str, Any] = {
    "name": "Notes", "description": "Keeps notes.", "goal": "Remember things.",
    "category": "productivity", "tags": ["notes"], "future_key": {"kept": True},
    "workers": {"scribe": {"description": "writes", "tools": ["append_note"]}},
}


def agents_tree(root: Path) -> Path:
    """Valid agents in three categories, every kind of invalid folder, and junk."""
    write_agent(root, "notes", NOTES_MANIFEST, tools=NOTES_TOOLS, readme="# Notes\n")
    write_agent(root, "clock", {"name": "Clock", "category": "ops", "tools": ["get_time"]})
    write_agent(root, "plain", {"name": "Plain"})
    write_agent(root, "bad_json", "{not json")
    write_agent(root, "bad_schema", {"name": "", "max_parallel_workers": 99})
    write_agent(root, "Bad Name", {"name": "Spaces"})
    write_agent(root, "broken_tools", {"name": "Broken"}, tools="def oops(:\n")
    write_agent(root, "no_manifest", readme="only a readme")
    write_agent(root, "unknown_tool", {"name": "Unknown",
                                     "workers": {"w": {"tools": ["does_not_exist"]}}})
    write_agent(root, ".hidden", {"name": "Hidden"})
    write_agent(root, "__pycache__")
    (root / "notes.txt").write_text("a plain file, not an agent")
    return root


VALID = ["clock", "notes", "plain"]
INVALID = ["Bad Name", "bad_json", "bad_schema", "broken_tools", "no_manifest", "unknown_tool"]


def call_line(tool: str, **args: Any) -> str:
    """A line that makes the offline model call ``tool`` with ``args``."""
    return f"call:{tool} {json.dumps(args)}"


def worker_line(task: str, **args: Any) -> str:
    """A line that makes the offline queen hand ``task`` to a worker."""
    return call_line("run_worker", task=task, **args)


async def run_workers(client: TestClient, session_id: str, *tasks: str) -> dict[str, Any]:
    """Chat one ``run_worker`` line per task (several: parallel workers)."""
    return await chat(client, session_id, "\n".join(worker_line(task) for task in tasks))


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())
