"""Boot with N live sessions: time to ``/api/health`` and to every session resumed.

    .venv/bin/python -m benchmarks.boot --sessions 1000 [--rounds 3]

One real session is made through a real server (a chat turn with the offline model, then
SIGTERM: it stays marked live), and its folder is copied N-1 times under new ids (the id in
``meta.json`` and in every event is rewritten). Then a server is started on that home: the
time from spawning the process to the first 200 from ``/api/health`` and to ``resuming: 0``
with ``sessions: N`` is measured, beside the same start on an empty home (the interpreter
and import cost, the same for any N). Prints one JSON object (medians of the rounds).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.procs import AUTH, our_server, rss_mib
from hive_server.models.session import new_session_id

POLL = 0.1  # seconds between health polls while sessions resume (each is O(live sessions))
TIMEOUT = 600.0


async def health(http: aiohttp.ClientSession, url: str) -> dict[str, Any] | None:
    try:
        async with http.get(url + "/api/health") as resp:
            return await resp.json() if resp.status == 200 else None
    except aiohttp.ClientError:
        return None


async def wait_resumed(http: aiohttp.ClientSession, url: str, sessions: int) -> None:
    """Until health says nothing is left to resume and ``sessions`` are live."""
    async with asyncio.timeout(TIMEOUT):
        while True:
            body = await health(http, url)
            if body is not None and body.get("resuming", 0) == 0 and body["sessions"] >= sessions:
                return
            await asyncio.sleep(POLL)


async def make_template(root: Path, http: aiohttp.ClientSession) -> Path:
    """One live session with a finished chat turn, left live by a SIGTERM; its folder."""
    live, _ = await make_templates(root, http, stopped=False)
    return live


async def make_templates(root: Path, http: aiohttp.ClientSession,
                         stopped: bool = True) -> tuple[Path, Path | None]:
    """A live session with a finished chat turn (left live by the server's SIGTERM) and, with
    ``stopped``, a second one stopped through the API after its turn: their folders."""
    home = root / "template"
    server = our_server(root, home)
    await server.start()
    live = await one_turn_session(server.url, http)
    other = await one_turn_session(server.url, http) if stopped else None
    if other is not None:
        async with http.delete(f"{server.url}/api/sessions/{other}") as resp:
            if resp.status >= 300:
                raise RuntimeError(f"stop: {resp.status} {await resp.text()}")
    await server.stop()
    return home / "sessions" / live, None if other is None else home / "sessions" / other


async def one_turn_session(url: str, http: aiohttp.ClientSession) -> str:
    """A session made with an initial prompt, once its turn is complete: its id."""
    async with http.post(url + "/api/sessions", json={"initial_prompt": "hello bees"}) as resp:
        assert resp.status == 201, await resp.text()
        session_id = (await resp.json())["session_id"]
    history = f"{url}/api/sessions/{session_id}/events/history"
    async with asyncio.timeout(60):
        while True:
            async with http.get(history) as resp:
                types = [event["type"] for event in (await resp.json())["events"]]
            if "llm_turn_complete" in types:
                return session_id
            await asyncio.sleep(0.05)


def copy_sessions(template: Path, home: Path, count: int) -> None:
    """``count`` sessions in ``home``: the template and copies of it under new ids."""
    old = template.name.encode()
    files = {path.relative_to(template): path.read_bytes()
             for path in template.rglob("*") if path.is_file()}
    sessions = home / "sessions"
    for _ in range(count):
        new_id = new_session_id()
        folder = sessions / new_id
        (folder / "workspace").mkdir(parents=True)
        for relative, data in files.items():
            (folder / relative).parent.mkdir(parents=True, exist_ok=True)
            (folder / relative).write_bytes(data.replace(old, new_id.encode()))
    # Written out before a server boots on them, as a restarted server finds its files: the
    # fsyncs of the boot would otherwise wait on the write-back of these (30,000 for 10,000)
    os.sync()


async def measure_boot(root: Path, home: Path, http: aiohttp.ClientSession,
                       sessions: int, rss_after: float | None = None) -> dict[str, float]:
    """Seconds from spawning a server on ``home`` to health, to ``sessions`` resumed, and
    from SIGTERM to its exit; with ``rss_after``, its RSS (MiB) that many seconds after the
    last session resumed."""
    server = our_server(root, home)
    started = time.monotonic()
    got: dict[str, float] = {}
    try:
        got["health_s"] = await server.start(timeout=TIMEOUT)
        await wait_resumed(http, server.url, sessions)
        got["all_resumed_s"] = time.monotonic() - started
        if rss_after is not None:
            await asyncio.sleep(rss_after)
            got["rss_mib"] = rss_mib(server.pid)
    finally:
        stopping = time.monotonic()
        await server.stop()
    return {**got, "stop_s": time.monotonic() - stopping}


async def run(sessions: int, rounds: int) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="hive-boot-"))
    try:
        async with aiohttp.ClientSession(headers=AUTH) as http:
            template = await make_template(root, http)
            home = root / "home"
            made = time.monotonic()
            copy_sessions(template, home, sessions)
            setup_s = time.monotonic() - made
            empty, full = [], []
            for _ in range(rounds):
                empty.append(await measure_boot(root, root / "empty", http, 0))
                full.append(await measure_boot(root, home, http, sessions))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    median = {key: statistics.median(r[key] for r in full) for key in full[0]}
    empty_health = statistics.median(r["health_s"] for r in empty)
    return {"measure": "boot", "sessions": sessions, "rounds": rounds, **median,
            "empty_health_s": empty_health,
            "health_over_empty_s": median["health_s"] - empty_health,
            "setup_s": setup_s}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=1000, help="live sessions on disk")
    parser.add_argument("--rounds", type=int, default=1, help="boots measured (median)")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args.sessions, args.rounds))
    print(json.dumps({key: round(value, 3) if isinstance(value, float) else value
                      for key, value in result.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
