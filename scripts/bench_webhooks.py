"""Benchmark webhook ingress through the real app on a loopback port.

Run: ``.venv/bin/python scripts/bench_webhooks.py [--deliveries 2000] [--concurrency 32]
[--durability batch] [--quick]`` (``--quick``: 200 deliveries).

One live session has an agent loaded whose webhook trigger (Standard Webhooks) is active.
Every delivery has its own id and is signed beforehand with the independent
``standardwebhooks`` package; ``concurrency`` clients in the same process POST them without the
API token. Each one is verified, recorded in the dedup store (fsync), logged as
``webhook_received``, fired (state saved, ``trigger_fired`` logged, task handed to the offline
queen, which keeps coalescing and running them) before its 202.

* accepted/s: 202 answers per second of wall time, first request to last answer;
* fired/s: ``trigger_fired`` events seen on the session's bus per second, first request to the
  last event.

With ``--held`` no session is live, so every delivery is verified, deduplicated and written
to the inbox (fsync) and nothing fires: the ingress alone, without the queen's work.

Clients and server share one event loop, so both figures are lower bounds.
``measure(deliveries, concurrency, durability)`` is importable and returns ``WebhookFigures``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from aiohttp import web
from standardwebhooks import Webhook

from hive_server import keys
from hive_server.app import create_app
from hive_server.core.eventlog import Durability
from hive_server.llm.offline import OfflineClient
from hive_server.models.events import EventType
from hive_server.settings import Settings

TOKEN = "bench-token"
AGENT, TRIGGER, SESSION = "hooked", "push", "bench"
SECRET = "whsec_" + base64.b64encode(os.urandom(32)).decode()


@dataclass(frozen=True)
class WebhookFigures:
    deliveries: int
    concurrency: int
    durability: str
    accepted: int
    fired: int
    accept_seconds: float
    fire_seconds: float

    @property
    def accepted_per_second(self) -> float:
        return self.accepted / self.accept_seconds

    @property
    def fired_per_second(self) -> float:
        return self.fired / self.fire_seconds


def _write_agent(agents_dir: Path) -> None:
    folder = agents_dir / AGENT
    folder.mkdir(parents=True)
    (folder / "agent.json").write_text(json.dumps({"name": "Hooked"}))
    (folder / "triggers.json").write_text(json.dumps([{
        "id": TRIGGER, "trigger_type": "webhook", "task": "look at the delivery",
        "trigger_config": {"signature": "standard", "secret_env": "BENCH_SECRET"}}]))


def _signed(count: int) -> list[tuple[bytes, dict[str, str]]]:
    signer, now = Webhook(SECRET), datetime.now(UTC)
    out = []
    for i in range(count):
        msg_id, body = f"msg_{i:08d}", json.dumps({"n": i, "action": "opened"})
        out.append((body.encode(), {
            "webhook-id": msg_id, "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signer.sign(msg_id, now, body),
            "content-type": "application/json"}))
    return out


async def _post_all(url: str, signed: list[tuple[bytes, dict[str, str]]],
                    concurrency: int) -> int:
    queue = iter(signed)
    accepted = 0

    async def sender(http: aiohttp.ClientSession) -> None:
        nonlocal accepted
        for body, headers in queue:
            async with http.post(url, data=body, headers=headers) as resp:
                await resp.read()
                accepted += resp.status == 202

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:
        await asyncio.gather(*(sender(http) for _ in range(concurrency)))
    return accepted


async def _count_fires(app: web.Application, expected: int) -> int:
    session = app[keys.SESSIONS].get(SESSION).journal
    sub = session.subscribe(maxsize=expected + 16,
                            types=frozenset({EventType.TRIGGER_FIRED.value}))
    fired = 0
    try:
        while fired < expected and await sub.get() is not None:
            fired += 1
    finally:
        sub.close()
    return fired


@asynccontextmanager
async def _server(durability: str) -> AsyncIterator[tuple[web.Application, str]]:
    """The real app with the agent folder, on a free loopback port."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _write_agent(root / "agents")
        settings = Settings(home=root / "home", agents_dir=root / "agents",
                            queens_dir=root / "queens", token=TOKEN,
                            durability=Durability(durability), env={"BENCH_SECRET": SECRET})
        app = create_app(settings, llm=OfflineClient())
        runner = web.AppRunner(app)
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            yield app, f"http://127.0.0.1:{runner.addresses[0][1]}"
        finally:
            await runner.cleanup()


async def measure(deliveries: int = 2000, concurrency: int = 32, durability: str = "batch",
                  *, held: bool = False) -> WebhookFigures:
    """With ``held`` no session is live: every delivery goes to the inbox, nothing fires."""
    async with _server(durability) as (app, base):
        if not held:
            async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as h, \
                    h.post(f"{base}/api/sessions",
                           json={"session_id": SESSION, "agent_id": AGENT}) as resp:
                assert resp.status == 201, await resp.text()
        signed = _signed(deliveries)
        counter = None if held else asyncio.create_task(_count_fires(app, deliveries))
        await asyncio.sleep(0)  # subscribed before the first delivery
        started = time.perf_counter()
        accepted = await _post_all(f"{base}/hooks/{AGENT}/{TRIGGER}", signed, concurrency)
        accept_seconds = time.perf_counter() - started
        fired = 0 if counter is None else await asyncio.wait_for(counter, timeout=120)
        fire_seconds = time.perf_counter() - started
    return WebhookFigures(deliveries, concurrency, durability, accepted, fired,
                          accept_seconds, fire_seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--durability", choices=[d.value for d in Durability], default="batch")
    parser.add_argument("--quick", action="store_true", help="200 deliveries")
    parser.add_argument("--held", action="store_true",
                        help="no live session: deliveries go to the inbox, nothing fires")
    args = parser.parse_args()
    deliveries = 200 if args.quick else args.deliveries
    figures = asyncio.run(measure(deliveries, args.concurrency, args.durability,
                                  held=args.held))
    print(f"webhooks{' (held)' if args.held else ''}: "
          f"{figures.accepted_per_second:,.0f} accepted/s, "
          f"{figures.fired_per_second:,.0f} fired/s "
          f"({figures.accepted}/{figures.deliveries} accepted, {figures.fired} fired, "
          f"{figures.concurrency} concurrent, durability {figures.durability})")


if __name__ == "__main__":
    main()
