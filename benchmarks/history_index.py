"""The history list over many sessions, served from the sessions index; prints one JSON object.

``python -m benchmarks.history_index [--sessions 10000] [--rounds 50]``

Writes N stopped sessions (``meta.json`` + an empty log) into a temporary HIVE_HOME, starts the
app in this process on a loopback port, and measures over HTTP (p50 of ``--rounds`` requests,
after one warm-up): the first page (``limit=50``), a filtered page (``q`` + ``status``), the
page after a cursor, and their answer sizes. Beside them: the index build from the meta.json
files (the first request on a new home) and what listing cost before the index, reading every
meta.json (``SessionStore.scan``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
from aiohttp import web

from hive_server.app import create_app
from hive_server.llm.offline import OfflineClient
from hive_server.services.sessions.store import SessionStore
from hive_server.settings import Settings

TOKEN = "bench-token-0123456789"
BASE = datetime(2026, 1, 1, tzinfo=UTC)


def write_sessions(home: Path, count: int) -> None:
    for n in range(count):
        moment = (BASE + timedelta(minutes=n)).isoformat()
        meta = {"session_id": f"s{n:06d}", "created_at": moment, "updated_at": moment,
                "last_active_at": moment, "queen_id": "queen", "queen_name": "Queen",
                "model": "m", "status": "stopped", "message_count": n % 7, "last_seq": 0,
                "agent_id": f"agent{n % 10}", "title": f"Session number {n}",
                "first_message": f"please look at item {n}", "last_message": "thanks"}
        folder = home / "sessions" / meta["session_id"]
        folder.mkdir(parents=True)
        (folder / "meta.json").write_text(json.dumps(meta))
        (folder / "events.jsonl").write_bytes(b"")


async def timed(http: aiohttp.ClientSession, url: str, rounds: int) -> tuple[float, int, dict]:
    """p50 milliseconds, the answer size, and the last answer."""
    body = await (await http.get(url)).read()  # warm-up
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        async with http.get(url) as resp:
            body = await resp.read()
            assert resp.status == 200, body[:200]
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), len(body), json.loads(body)


async def measure(home: Path, count: int, rounds: int) -> dict[str, object]:
    start = time.perf_counter()
    await SessionStore(home).scan()
    scan_ms = (time.perf_counter() - start) * 1000
    settings = Settings(home=home, token=TOKEN, durability="none", watch_folders=False,
                        agents_dir=home / "agents", queens_dir=home / "queens")
    runner = web.AppRunner(create_app(settings, llm=OfflineClient()))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    url = f"http://127.0.0.1:{port}/api/sessions/history"
    try:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            start = time.perf_counter()
            await (await http.get(f"{url}?limit=1")).read()
            build_ms = (time.perf_counter() - start) * 1000
            first_ms, first_bytes, first = await timed(http, f"{url}?limit=50", rounds)
            filtered_ms, _, _ = await timed(http, f"{url}?limit=50&q=item%2012&status=stopped",
                                            rounds)
            cursor_ms, _, _ = await timed(http, f"{url}?limit=50&cursor={first['next_cursor']}",
                                          rounds)
    finally:
        await runner.cleanup()
    return {"sessions": count, "rounds": rounds, "index_build_ms": round(build_ms, 1),
            "list_limit50_p50_ms": round(first_ms, 2), "list_limit50_bytes": first_bytes,
            "list_filtered_p50_ms": round(filtered_ms, 2),
            "list_cursor_p50_ms": round(cursor_ms, 2),
            "before_index_scan_all_metas_ms": round(scan_ms, 1), "total": first["total"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="hive-history-") as tmp:
        home = Path(tmp) / "home"
        write_sessions(home, args.sessions)
        result = asyncio.run(measure(home, args.sessions, args.rounds))
    json.dump(result, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
