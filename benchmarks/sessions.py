"""Many sessions on disk, our server as a process:

- boot to ``/api/health`` and to every session resumed with N live sessions, beside the
  same start on an empty home (benchmarks/boot.py's template, copies and timing);
- ``GET /api/sessions/history?limit=50`` over N stopped sessions (p50, after one warm-up);
- RSS per idle live session: (RSS with N resumed - RSS with none) / N;
- idle CPU with armed timers (a session with T interval triggers that do not come due),
  beside the raw aiohttp app idle for as long.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path

import aiohttp

from benchmarks import boot
from benchmarks.procs import AUTH, cpu_seconds, our_server, raw_server, rss_mib
from benchmarks.sizes import Sizes
from benchmarks.table import Row, at_most, over_raw_at_most


async def run(root: Path, sizes: Sizes, rows: list[Row]) -> None:
    """The boots last: the slowest, and a boot that never answers ends the part."""
    async with aiohttp.ClientSession(headers=AUTH) as http:
        live = await boot.make_template(root / "live", http)
        stopped = await stopped_template(root / "stopped", live, http)
        rows.append(await history_list(root, stopped, sizes))
        empty_rss, idle = await idle_server(root, sizes)
        rows.append(await rss_per_session(root, live, sizes, empty_rss))
        rows.append(idle)
        await boots(root, live, http, sizes, rows)


async def boots(root: Path, template: Path, http: aiohttp.ClientSession, sizes: Sizes,
                rows: list[Row]) -> None:
    empty = await boot.measure_boot(root, root / "boot-empty", http, 0)
    for n in sizes.boot_sessions:
        home = root / f"boot-{n}"
        boot.copy_sessions(template, home, n)
        result = await boot.measure_boot(root, home, http, n)
        big = n >= 10_000
        rows.append(Row(f"boot to health, {n} live sessions (vs empty home)",
                        result["health_s"], empty["health_s"], "s",
                        over_raw_at_most(1, "s") if big else None))
        rows.append(Row(f"boot to all resumed, {n} live sessions", result["all_resumed_s"],
                        None, "s", at_most(20, "s") if big else None))


async def stopped_template(root: Path, live: Path, http: aiohttp.ClientSession) -> Path:
    """A copy of ``live`` stopped through the API (not resumed at the next boot)."""
    home = root / "home"
    boot.copy_sessions(live, home, 1)
    [template] = (home / "sessions").iterdir()
    async with our_server(root, home) as server:
        await boot.wait_resumed(http, server.url, 1)  # until then it answers 409 session_loading
        async with http.delete(f"{server.url}/api/sessions/{template.name}") as resp:
            if resp.status >= 300:
                raise RuntimeError(f"stop: {resp.status} {await resp.text()}")
    return template


async def history_list(root: Path, template: Path, sizes: Sizes) -> Row:
    home = root / "history-home"
    boot.copy_sessions(template, home, sizes.history_sessions)
    async with our_server(root, home) as server, \
            aiohttp.ClientSession(server.url, headers=AUTH) as http:
        url = "/api/sessions/history?limit=50"
        async with http.get(url) as resp:  # warm-up: an index may be built here
            assert resp.status == 200, await resp.text()
        times = []
        for _ in range(sizes.history_repeats):
            started = time.perf_counter()
            async with http.get(url) as resp:
                await resp.read()
            times.append(time.perf_counter() - started)
    return Row(f"history list, {sizes.history_sessions} sessions, limit=50, p50",
               statistics.median(times) * 1000, None, "ms", at_most(20, "ms"))


async def rss_per_session(root: Path, template: Path, sizes: Sizes, empty: float) -> Row:
    sessions = sizes.rss_sessions
    home = root / "rss-home"
    boot.copy_sessions(template, home, sessions)
    async with our_server(root, home) as server, \
            aiohttp.ClientSession(headers=AUTH) as http:
        await boot.wait_resumed(http, server.url, sessions)
        await asyncio.sleep(sizes.settle_seconds)
        full = rss_mib(server.pid)
    return Row(f"RSS per idle live session ({sessions} sessions)",
               (full - empty) * 1024 / sessions, None, "KiB")


async def idle_server(root: Path, sizes: Sizes) -> tuple[float, Row]:
    """The RSS of a server with no session, then its idle CPU with armed timers (beside the
    raw app's)."""
    async with our_server(root, root / "idle-home") as server, \
            aiohttp.ClientSession(server.url, headers=AUTH) as http:
        await asyncio.sleep(sizes.settle_seconds)
        empty = rss_mib(server.pid)
        async with http.post("/api/sessions", json={"session_id": "timers"}) as resp:
            assert resp.status == 201, await resp.text()
        for first in range(0, sizes.timers, 20):
            await asyncio.gather(*(arm(http, i) for i in
                                   range(first, min(first + 20, sizes.timers))))
        ours = await idle_share(server.pid, sizes)
    async with raw_server() as raw:
        baseline = await idle_share(raw.pid, sizes)
    return empty, Row(f"idle CPU, {sizes.timers} armed timers", ours, baseline, "% core")


async def arm(http: aiohttp.ClientSession, i: int) -> None:
    spec = {"id": f"t{i}", "trigger_type": "timer", "task": "water the plants",
            "trigger_config": {"interval_minutes": 60 + i % 60}}
    async with http.post("/api/sessions/timers/triggers", json=spec) as resp:
        if resp.status != 201:
            raise RuntimeError(f"trigger: {resp.status} {await resp.text()}")


async def idle_share(pid: int, sizes: Sizes) -> float:
    """Percent of one core ``pid`` used over ``sizes.idle_seconds`` (after settling)."""
    await asyncio.sleep(sizes.settle_seconds)
    before, started = cpu_seconds(pid), time.monotonic()
    await asyncio.sleep(sizes.idle_seconds)
    return (cpu_seconds(pid) - before) / (time.monotonic() - started) * 100
