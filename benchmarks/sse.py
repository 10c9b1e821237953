"""SSE fan-out: p50 publish -> client at a fixed rate, ours against a raw aiohttp SSE app.

The app under test runs in this process (so the benchmark can publish into a session at a
fixed rate: ``session.emit``, the path every event takes); the subscribers read in another
process (benchmarks/sse_clients.py). The raw app keeps one queue per subscriber and writes
each frame to every response, the least an aiohttp SSE server can do. Its frames are the
bytes ours sends (``id: <seq>`` and the event's whole envelope, ``raw_frame``), so both
write and the clients read the same bytes.

Also the CPU time of this process (the server, its publisher) per delivered event while the
events are published: a busy machine stretches the wall-clock latencies of both sides, not
the CPU each spends.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import orjson
from aiohttp import web

from benchmarks.procs import AUTH, TOKEN, scrubbed_env
from benchmarks.sizes import Sizes
from benchmarks.table import Row, ratio_at_most
from hive_server import keys
from hive_server.app import create_app
from hive_server.llm.offline import OfflineClient
from hive_server.models.event_data import LlmTextDelta
from hive_server.models.events import utc_now_iso
from hive_server.settings import Settings

Publish = Callable[[str], None]


async def run(root: Path, sizes: Sizes, rows: list[Row]) -> None:
    for n in sizes.sse_subscribers:
        raw = await fanout(raw_app(), n, sizes)
        ours = await fanout(our_app(root / f"sse-{n}"), n, sizes)
        target = ratio_at_most(1.3) if n >= 1000 else None
        rows.append(Row(f"SSE p50 publish→client, {n} subscribers, {sizes.sse_rate} ev/s",
                        ours.p50_ms, raw.p50_ms, "ms", target))
        rows.append(Row(f"SSE server CPU per delivered event, {n} subscribers",
                        ours.cpu_us, raw.cpu_us, "µs"))


@dataclasses.dataclass(frozen=True, slots=True)
class Fanout:
    p50_ms: float  # publish -> client, the median over every frame of every subscriber
    cpu_us: float  # this process's CPU while publishing, per delivered event


@asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[int]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


async def fanout(app_and_setup: tuple[web.Application, Callable], n: int,
                 sizes: Sizes) -> Fanout:
    app, setup = app_and_setup
    async with serving(app) as port:
        path, publish, count = await setup(port)
        clients = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "benchmarks.sse_clients", "--port", str(port), "--path", path,
            "--n", str(n), "--header", f"Authorization: Bearer {TOKEN}",
            stdout=asyncio.subprocess.PIPE, env=scrubbed_env())
        assert clients.stdout is not None
        await clients.stdout.readline()  # "subscribed"
        for _ in range(60_000):  # the server has them all (a minute at most)
            if count() >= n:
                break
            await asyncio.sleep(0.001)
        cpu = time.process_time()
        await paced(publish, sizes.sse_rate, sizes.sse_seconds)
        publish("END")
        out, _ = await clients.communicate()
        cpu = time.process_time() - cpu
    result = json.loads(out)
    if clients.returncode != 0 or not result["frames"]:
        raise RuntimeError(f"SSE clients failed: {result}")
    return Fanout(result["p50_ms"], cpu * 1e6 / result["frames"])


async def paced(publish: Publish, rate: int, seconds: float) -> None:
    """``publish`` the publish time ``rate`` times a second for ``seconds``."""
    interval, started = 1 / rate, time.monotonic()
    for i in range(int(rate * seconds)):
        delay = started + i * interval - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        publish(f"{time.monotonic():.6f}")


def our_app(root: Path) -> tuple[web.Application, Callable]:
    settings = Settings(home=root / "home", agents_dir=root / "agents",
                        queens_dir=root / "queens", token=TOKEN, durability="none",
                        sse_queue_size=4096, watch_folders=False)
    app = create_app(settings, llm=OfflineClient())

    async def setup(port: int) -> tuple[str, Publish, Callable[[], int]]:
        async with aiohttp.ClientSession(headers=AUTH) as http, http.post(
                f"http://127.0.0.1:{port}/api/sessions", json={"session_id": "bench"}) as resp:
            assert resp.status == 201, await resp.text()
        session = app[keys.SESSIONS].get("bench").journal

        def publish(value: str) -> None:
            session.emit(LlmTextDelta(content=f"@@{value}@@", snapshot=""))

        path = f"/api/sessions/bench/events?after_seq={session.last_seq}"
        return path, publish, lambda: session.bus.subscriber_count

    return app, setup


def raw_app() -> tuple[web.Application, Callable]:
    queues: set[asyncio.Queue[bytes]] = set()

    async def events(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                               "Cache-Control": "no-cache"})
        await response.prepare(request)
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        queues.add(queue)
        try:
            while True:
                frames = [await queue.get()]
                while not queue.empty():  # every frame already queued, in one write
                    frames.append(queue.get_nowait())
                data = b"".join(frames)
                await response.write(data)
                if b"@@END@@" in data:
                    break
        finally:
            queues.discard(queue)
        return response

    app = web.Application()
    app.add_routes([web.get("/events", events)])

    async def setup(port: int) -> tuple[str, Publish, Callable[[], int]]:
        seqs = itertools.count(1)

        def publish(value: str) -> None:
            frame = raw_frame(next(seqs), value)
            for queue in queues:
                queue.put_nowait(frame)

        return "/events", publish, lambda: len(queues)

    return app, setup


def raw_frame(seq: int, value: str) -> bytes:
    """The frame ours sends for ``LlmTextDelta(content=f"@@{value}@@", snapshot="")``: the
    same bytes but for the timestamp's digits."""
    event = {"seq": seq, "type": "llm_text_delta", "session_id": "bench", "stream_id": "queen",
             "node_id": "queen", "execution_id": None, "correlation_id": None,
             "colony_id": None, "timestamp": utc_now_iso(),
             "data": {"content": f"@@{value}@@", "snapshot": "", "iteration": 0, "inner_turn": 0}}
    return b"id: %d\ndata: %s\n\n" % (seq, orjson.dumps(event))
