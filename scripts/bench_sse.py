"""Benchmark publish -> SSE delivery through the real app on a loopback socket.

Run: ``.venv/bin/python scripts/bench_sse.py [--quick]``. One session, N SSE clients (in the
same process, reading raw frames), M events published in paced bursts; the figure is events
delivered to clients per second (N * M / time until every client saw the last event). The
clients share the server's event loop and cores, so the figure is a lower bound. The process CPU
time per delivered event (server and clients) is printed too: on a shared machine it moves far
less than the wall-clock rate.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

from hive_server import keys
from hive_server.app import create_app
from hive_server.llm.offline import OfflineClient
from hive_server.models.event_data import LlmTextDelta
from hive_server.settings import Settings

TOKEN = "bench-token"
BURST = 50


async def _client(http: aiohttp.ClientSession, url: str, last: int,
                  ready: asyncio.Event, counter: list[int]) -> int:
    received = 0
    async with http.get(url) as resp:
        ready.set()
        marker = b"id: %d\n" % last
        tail = b""
        async for chunk in resp.content.iter_any():
            received += chunk.count(b"\n\n")
            if marker in tail + chunk:
                break
            tail = chunk[-32:]
    counter[0] += 1
    return received


async def bench_fanout(subscribers: int, events: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(home=Path(tmp) / "home", agents_dir=Path(tmp) / "agents",
                            queens_dir=Path(tmp) / "queens", token=TOKEN, durability="none",
                            sse_queue_size=4096)
        app = create_app(settings, llm=OfflineClient())
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            return await _measure(app, port, subscribers, events)
        finally:
            await runner.cleanup()


async def _measure(app: web.Application, port: int, subscribers: int, events: int) -> dict:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(headers=headers, connector=connector) as http:
        base = f"http://127.0.0.1:{port}/api/sessions"
        async with http.post(base, json={"session_id": "bench"}) as resp:
            assert resp.status == 201
        session = app[keys.SESSIONS].get("bench").journal
        last = session.last_seq + events
        readies = [asyncio.Event() for _ in range(subscribers)]
        done = [0]
        # a resume cursor: live events only (no opening snapshot and tail to replay first)
        url = f"{base}/bench/events?after_seq={session.last_seq}"
        tasks = [asyncio.create_task(_client(http, url, last, r, done)) for r in readies]
        await asyncio.gather(*(r.wait() for r in readies))  # subscribed before headers go out
        assert session.bus.subscriber_count == subscribers
        started = time.perf_counter()
        for i in range(events):
            session.emit(LlmTextDelta(content="token ", snapshot="x" * 80))
            if i % BURST == BURST - 1:
                await asyncio.sleep(0)
        counts = await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - started
    return {"subscribers": subscribers, "events": events, "seconds": elapsed,
            "delivered_per_s": sum(counts) / elapsed,
            "dropped": session.bus.dropped_subscribers}


async def run(quick: bool) -> list[dict]:
    plan = [(1, 20_000), (100, 2_000), (1000, 500)]
    if quick:
        plan = [(1, 2_000), (100, 200), (1000, 50)]
    results = []
    for subscribers, events in plan:
        cpu = time.process_time()
        result = await bench_fanout(subscribers, events)
        result["cpu_us_per_event"] = (time.process_time() - cpu) * 1e6 / (subscribers * events)
        results.append(result)
        print(f"sse.fanout[{subscribers} subscribers, {events} events]: "
              f"{result['delivered_per_s']:,.0f} delivered events/s, "
              f"{result['cpu_us_per_event']:.2f} us CPU per delivered event "
              f"({result['seconds']:.2f} s, {result['dropped']} dropped)", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    asyncio.run(run(parser.parse_args().quick))


if __name__ == "__main__":
    main()
