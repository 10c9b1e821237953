"""SSE fan-out: p50 publish -> client at a fixed rate, ours against a raw aiohttp SSE app.

The app under test runs in this process (so the benchmark can publish into a session at a
fixed rate: ``session.emit``, the path every event takes); the subscribers read in another
process (benchmarks/sse_clients.py). The raw app keeps one queue per subscriber and writes
each frame to every response, the least an aiohttp SSE server can do.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
from aiohttp import web

from benchmarks.procs import AUTH, TOKEN, scrubbed_env
from benchmarks.sizes import Sizes
from benchmarks.table import Row, ratio_at_most
from hive_server import keys
from hive_server.app import create_app
from hive_server.llm.offline import OfflineClient
from hive_server.models.event_data import LlmTextDelta
from hive_server.settings import Settings

Publish = Callable[[str], None]


async def run(root: Path, sizes: Sizes, rows: list[Row]) -> None:
    for n in sizes.sse_subscribers:
        raw = await fanout(raw_app(), n, sizes)
        ours = await fanout(our_app(root / f"sse-{n}"), n, sizes)
        target = ratio_at_most(1.3) if n >= 1000 else None
        rows.append(Row(f"SSE p50 publish→client, {n} subscribers, {sizes.sse_rate} ev/s",
                        ours, raw, "ms", target))


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
                 sizes: Sizes) -> float:
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
        await paced(publish, sizes.sse_rate, sizes.sse_seconds)
        publish("END")
        out, _ = await clients.communicate()
    result = json.loads(out)
    if clients.returncode != 0 or not result["frames"]:
        raise RuntimeError(f"SSE clients failed: {result}")
    return result["p50_ms"]


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
        def publish(value: str) -> None:
            frame = b'data: {"content":"@@%s@@"}\n\n' % value.encode()
            for queue in queues:
                queue.put_nowait(frame)

        return "/events", publish, lambda: len(queues)

    return app, setup
