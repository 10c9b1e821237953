"""The HTTP path: our server and the raw aiohttp app as processes, loaded by a third one.

- idle RSS with no sessions, ours and raw;
- ``GET /api/health`` and ``GET /api/sessions/{id}`` against raw ``GET /hello``, and
  ``POST /api/sessions/{id}/chat`` (the offline model) against raw ``POST /echo``;
- ``events/history`` at the tail of a log against a raw seek + parse + dump of the same
  lines answered by the raw app (``GET /tail``), both fetched over HTTP by the same client.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import statistics
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from benchmarks.procs import AUTH, Proc, cpu_seconds, load, our_server, raw_server, rss_mib
from benchmarks.raw_app import tail_body
from benchmarks.sizes import Sizes
from benchmarks.table import Row, at_most, ratio_at_least, ratio_at_most

CHAT = '{"message": "hello bees"}'


async def run(root: Path, sizes: Sizes, rows: list[Row]) -> None:
    home = root / "http-home"
    home.mkdir(parents=True)
    # chats queue without 429 (the measure is the request path, not the inbox bound)
    (home / "config.toml").write_text("queen_inbox_size = 10000000\n")
    async with our_server(root, home, "--shutdown-grace", "2") as ours, \
            raw_server() as raw:
        await asyncio.sleep(sizes.settle_seconds)  # imports done, GC settled
        rows.append(Row("idle RSS, no sessions", rss_mib(ours.pid), rss_mib(raw.pid), "MiB",
                        at_most(70, "MiB")))
        async with aiohttp.ClientSession(ours.url, headers=AUTH) as http:
            await make_session(http, "bench")
            await requests(ours, raw, sizes, rows)
            rows += await tail(http, (ours, raw), home, sizes)  # before the chats' backlog
            rows.append(await chats(ours, raw, sizes))


async def requests(ours: Proc, raw: Proc, sizes: Sizes, rows: list[Row]) -> None:
    """Each pair alternates ``http_rounds`` times; the best rate of each side counts (a busy
    neighbour slows one round, never speeds one up). Beside each, the least server CPU per
    answer of each side (/proc: what a busy machine stretches is the wall clock, far less
    the CPU each side spends on a request)."""
    for measure, path in (("GET /api/health", "/api/health"),
                          ("GET /api/sessions/{id}", "/api/sessions/bench")):
        got, hello = await best_pair(sizes, (ours, path, {}), (raw, "/hello", {}))
        rows.append(Row(f"{measure} (vs hello)", got.rate, hello.rate, "req/s",
                        ratio_at_least(0.6)))
        rows.append(Row(f"{measure} server CPU per answer (vs hello)", got.cpu_us,
                        hello.cpu_us, "µs"))


async def chats(ours: Proc, raw: Proc, sizes: Sizes) -> Row:
    """Chats are queued for the offline queen, whose turns then run beside the load: the
    last measure of this server."""
    post = {"method": "POST", "body": CHAT, "conns": 4, "depth": 1}
    chat, echo = await best_pair(sizes, (ours, "/api/sessions/bench/chat", post),
                                 (raw, "/echo", post))
    return Row("POST /api/sessions/{id}/chat (vs echo)", chat.rate, echo.rate, "req/s")


Target = tuple[Proc, str, dict[str, Any]]  # server, path, load() keywords


@dataclasses.dataclass(frozen=True, slots=True)
class Best:
    """Of a side's rounds: the best answers per second, the least server CPU per answer."""

    rate: float = 0.0
    cpu_us: float = math.inf

    def __or__(self, other: Best) -> Best:
        return Best(max(self.rate, other.rate), min(self.cpu_us, other.cpu_us))


async def best_pair(sizes: Sizes, ours: Target, raw: Target) -> tuple[Best, Best]:
    """The best of ``ours`` and of ``raw`` over the rounds (raw runs first in each round)."""
    best_ours = best_raw = Best()
    for _ in range(sizes.http_rounds):
        best_raw |= await rate(sizes, raw)
        best_ours |= await rate(sizes, ours)
    return best_ours, best_raw


async def rate(sizes: Sizes, target: Target) -> Best:
    """One load run: answers per second and the server's CPU microseconds per answer."""
    server, path, kwargs = target
    before = cpu_seconds(server.pid)
    got = await load(server.port, path, seconds=sizes.http_seconds, **kwargs)
    cpu = cpu_seconds(server.pid) - before
    return Best(got["ok_per_s"], cpu * 1e6 / got["ok"] if got["ok"] else math.inf)


async def make_session(http: aiohttp.ClientSession, session_id: str) -> None:
    async with http.post("/api/sessions", json={"session_id": session_id}) as resp:
        if resp.status != 201:
            raise RuntimeError(f"create session: {resp.status} {await resp.text()}")


async def last_seq(http: aiohttp.ClientSession, session_id: str) -> int:
    async with http.get(f"/api/sessions/{session_id}/events/history?limit=1") as resp:
        events = (await resp.json())["events"]
        return events[-1]["seq"] if events else 0


async def fill(http: aiohttp.ClientSession, session_id: str, events: int) -> None:
    """Chat (offline model) until the session's log holds ``events`` events and its queen
    is done (the last seq holds still for 0.3 s)."""
    seq = await last_seq(http, session_id)
    while seq < events:
        for _ in range(5):
            async with http.post(f"/api/sessions/{session_id}/chat",
                                 data=CHAT, headers={"Content-Type": "application/json"}):
                pass
        before = -1
        while seq != before:
            before = seq
            await asyncio.sleep(0.3)
            seq = await last_seq(http, session_id)


async def tail(http: aiohttp.ClientSession, servers: tuple[Proc, Proc], home: Path,
               sizes: Sizes) -> list[Row]:
    """``events/history?limit=N`` against the raw app's ``/tail`` of the same log (its last N
    lines: seek from the end, parse each line, dump the list), both over HTTP from this
    process, alternating (medians); and each server's CPU per answer (/proc: a busy machine
    stretches the wall clock, not the CPU each side spends)."""
    limit = sizes.tail_events
    await make_session(http, "tail")
    await fill(http, "tail", limit + 50)
    path = home / "sessions" / "tail" / "events.jsonl"
    urls = (f"{servers[0].url}/api/sessions/tail/events/history?limit={limit}",
            f"{servers[1].url}/tail?limit={limit}&path={path}")
    seconds: tuple[list[float], list[float]] = ([], [])
    cpu = [0.0, 0.0]
    for _ in range(sizes.tail_repeats):
        for side in (0, 1):
            before, started = cpu_seconds(servers[side].pid), time.perf_counter()
            async with http.get(urls[side]) as resp:
                body = await resp.read()
            seconds[side].append(time.perf_counter() - started)
            cpu[side] += cpu_seconds(servers[side].pid) - before
            if resp.status != 200 or len(orjson.loads(body)["events"]) != limit:
                raise RuntimeError(f"{urls[side]}: {resp.status}")
    ours, raw = (statistics.median(s) * 1000 for s in seconds)
    return [Row(f"events/history tail, {limit} events (vs seek+parse+dump)", ours, raw, "ms",
                ratio_at_most(2.0)),
            Row(f"events/history tail server CPU per answer, {limit} events",
                *(c * 1000 / sizes.tail_repeats for c in cpu), "ms")]


def raw_tail(path: Path, limit: int) -> float:
    """Seconds to read the last ``limit`` lines of ``path`` and answer them as JSON, in this
    process (``benchmarks.raw_app.tail_body``)."""
    started = time.perf_counter()
    tail_body(path, limit)
    return time.perf_counter() - started
