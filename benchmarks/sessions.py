"""Many sessions on disk, our server as a process:

- boot to ``/api/health`` and to every session resumed with N live sessions, beside the
  start of a server on an empty home (benchmarks/boot.py's template, copies and timing);
- ``GET /api/sessions/history?limit=50`` over N stopped sessions (p50, after one warm-up);
- RSS per idle live session: (RSS of the boot with N, settled - RSS of the empty server) / N;
- idle CPU with armed timers (a session with T interval triggers that do not come due),
  beside the raw aiohttp app idle for as long.
"""

from __future__ import annotations

import asyncio
import dataclasses
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
        live, stopped = await boot.make_templates(root / "live", http)
        assert stopped is not None
        rows.append(await history_list(root, stopped, sizes))
        empty, idle = await idle_server(root, sizes)
        rows.append(idle)
        await boots(root, live, http, sizes, rows, empty)


async def boots(root: Path, template: Path, http: aiohttp.ClientSession, sizes: Sizes,
                rows: list[Row], empty: Empty) -> None:
    """Per N: boot to health (beside the empty home's), to every session resumed, and the
    RSS each idle live session adds (the server's, settled, less the empty server's, / N)."""
    for n in sizes.boot_sessions:
        home = root / f"boot-{n}"
        boot.copy_sessions(template, home, n)
        result = await boot.measure_boot(root, home, http, n, rss_after=sizes.settle_seconds)
        big = n >= 10_000
        rows.append(Row(f"boot to health, {n} live sessions (vs empty home)",
                        result["health_s"], empty.health_s, "s",
                        over_raw_at_most(1, "s") if big else None))
        rows.append(Row(f"boot to all resumed, {n} live sessions", result["all_resumed_s"],
                        None, "s", at_most(20, "s") if big else None))
        rows.append(Row(f"RSS per idle live session ({n} sessions)",
                        (result["rss_mib"] - empty.rss_mib) * 1024 / n, None, "KiB"))


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


@dataclasses.dataclass(frozen=True, slots=True)
class Empty:
    """A server on an empty home: its seconds to health and its settled RSS (MiB)."""

    health_s: float
    rss_mib: float


async def idle_server(root: Path, sizes: Sizes) -> tuple[Empty, Row]:
    """A server on an empty home: its boot to health and RSS (the boots' baselines), then its
    idle CPU with armed timers (beside the raw app's)."""
    async with our_server(root, root / "idle-home") as server, \
            aiohttp.ClientSession(server.url, headers=AUTH) as http:
        await asyncio.sleep(sizes.settle_seconds)
        empty = Empty(server.started_s, rss_mib(server.pid))
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
