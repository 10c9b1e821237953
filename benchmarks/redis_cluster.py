"""The wired Redis backend as the API serves it (``./scripts/bench --redis``): real server
processes beside file-backend ones, in the same run.

Processes: two nodes ``hive-server serve --redis URL --node-id n1|n2`` (``python -m
hive_server serve``, each its own ``--home``, the same agents and queens folders, durability
``batch``) on the part's redis-server, and two file-backend servers (``batch`` and
``fsync``), all started at once. In Redis mode ``--durability`` is only checked against
Redis's persistence at start; what an append waits for is Redis's ``appendfsync``, so the
``fsync`` rows switch the same nodes' Redis to ``always`` (``CONFIG SET``, checked as a node
checks it at start) and the batch ones back to ``everysec``. Every figure is the median of
``redis_rounds`` rounds, the sides alternating within each round.

- chat -> SSE p50 and p95 (``chat_sse.py``): chats POSTed to n1, which runs the session, at
  ``redis_chat_rate`` a second; an SSE client of the session on n2 (another node: its frames
  come from Redis) and one on n1 (the owner also streams from Redis), against the same on the
  file-backend server (chats and stream on that server, ``batch``);
- acknowledged chats per second (``benchmarks.load``: 4 connections, one chat at a time, as
  the HTTP part's chat row): to n1 and, forwarded, to n2 (Redis ``everysec``) against the
  ``batch`` file server; to n1 with Redis ``always`` against the ``fsync`` file server. A
  chat is acknowledged once its ``client_input_received`` is stored; the queen's turns run
  beside the load (their events appended through the same backend). Each run has a session
  of its own (a longer conversation makes every turn dearer), and the inputs still queued
  after it are dropped (``DELETE /queue``) so no backlog runs into the next.
  No CPU-per-chat row: a side acknowledging fewer chats runs a turn for a larger share of
  them in the same time, so the servers' CPU per chat would compare different work.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import redis.asyncio

from benchmarks.chat_sse import chat_latencies, quantile
from benchmarks.http import CHAT, make_session
from benchmarks.procs import AUTH, Proc, load, our_server
from benchmarks.sizes import Sizes
from benchmarks.table import Row
from hive_server.core.eventlog import Durability
from hive_server.core.redis_conn import check_durability

LATENCY = "lat"  # the session of the latency rounds
QUANTILES = (("p50", 0.5), ("p95", 0.95))
Samples = dict[str, list[float]]  # a measure's value in each round


class Servers:
    """The four server processes."""

    def __init__(self, root: Path, url: str):
        self.n1 = our_server(root, _home(root, "n1"), "--redis", url, "--node-id", "n1")
        self.n2 = our_server(root, _home(root, "n2"), "--redis", url, "--node-id", "n2")
        self.file = our_server(root, _home(root, "file-batch"))
        self.fsync = our_server(root, _home(root, "file-fsync"), "--durability", "fsync")
        self.all = [self.n1, self.n2, self.file, self.fsync]


def _home(root: Path, name: str) -> Path:
    home = root / name
    home.mkdir(parents=True)
    # chats queue without 429 (the measure is the request path, not the inbox bound)
    (home / "config.toml").write_text("queen_inbox_size = 10000000\n")
    return home


@contextlib.asynccontextmanager
async def running(root: Path, url: str) -> AsyncIterator[Servers]:
    servers = Servers(root, url)
    try:
        await asyncio.gather(*(proc.start() for proc in servers.all))
        for proc in (servers.n1, servers.file):
            async with aiohttp.ClientSession(proc.url, headers=AUTH) as http:
                await make_session(http, LATENCY)
        yield servers
    finally:
        await asyncio.gather(*(proc.stop() for proc in servers.all))


async def run(root: Path, url: str, client: redis.asyncio.Redis, sizes: Sizes,
              rows: list[Row]) -> None:
    """The rows above; leaves Redis at ``everysec``."""
    async with running(root, url) as servers:
        await latency_rows(servers, sizes, rows)
        await throughput_rows(servers, client, sizes, rows)


async def latency_rows(servers: Servers, sizes: Sizes, rows: list[Row]) -> None:
    found: Samples = defaultdict(list)
    rate, seconds = sizes.redis_chat_rate, sizes.redis_chat_seconds
    for _ in range(sizes.redis_rounds):
        n2, n1 = await chat_latencies(servers.n1.url, LATENCY, [servers.n2.url, servers.n1.url],
                                      rate, seconds)
        [file] = await chat_latencies(servers.file.url, LATENCY, [servers.file.url], rate,
                                      seconds)
        for side, values in (("n2", n2), ("n1", n1), ("file", file)):
            for name, fraction in QUANTILES:
                found[f"{side} {name}"].append(quantile(values, fraction) * 1000)
    for side, label in (("n2", "another node (n2)"), ("n1", "the owner (n1)")):
        for name, _ in QUANTILES:
            rows.append(Row(f"chat→SSE {name}, {label} via Redis (vs file backend), "
                            f"{rate} chats/s", _median(found, f"{side} {name}"),
                            _median(found, f"file {name}"), "ms"))


async def throughput_rows(servers: Servers, client: redis.asyncio.Redis, sizes: Sizes,
                          rows: list[Row]) -> None:
    rates: Samples = defaultdict(list)
    n1, n2 = servers.n1, servers.n2
    runs = {"everysec": [("file batch", servers.file, servers.file), ("n1 batch", n1, n1),
                         ("n2 batch", n2, n1)],
            "always": [("file fsync", servers.fsync, servers.fsync), ("n1 fsync", n1, n1)]}
    try:
        for round_ in range(sizes.redis_rounds):
            for appendfsync, sides in runs.items():
                await set_appendfsync(client, appendfsync)
                for name, target, owner in sides:
                    session = f"load-{round_}-{name.replace(' ', '-')}"
                    rates[name].append(await chat_load(target, owner, session,
                                                       sizes.redis_load_seconds))
    finally:
        await set_appendfsync(client, "everysec")
    for measure, ours, raw in (
            ("batch: Redis everysec, sent to the owner", "n1 batch", "file batch"),
            ("batch: Redis everysec, sent to another node (forwarded)", "n2 batch",
             "file batch"),
            ("fsync: Redis always, sent to the owner", "n1 fsync", "file fsync")):
        rows.append(Row(f"acked chats, {measure} (vs file backend)", _median(rates, ours),
                        _median(rates, raw), "chats/s"))


async def set_appendfsync(client: redis.asyncio.Redis, value: str) -> None:
    await client.config_set("appendfsync", value)
    await check_durability(client, Durability.FSYNC if value == "always" else Durability.BATCH)


async def chat_load(target: Proc, owner: Proc, session: str, seconds: float) -> float:
    """Acknowledged chats per second to ``target`` for ``seconds``, to a new ``session`` that
    ``owner`` runs; then the inputs still queued are dropped on the owner."""
    async with aiohttp.ClientSession(owner.url, headers=AUTH) as http:
        await make_session(http, session)
        got = await load(target.port, f"/api/sessions/{session}/chat", seconds=seconds,
                         method="POST", body=CHAT, conns=4, depth=1)
        async with http.delete(f"/api/sessions/{session}/queue") as resp:
            if resp.status != 200:
                raise RuntimeError(f"DELETE queue: {resp.status} {await resp.text()}")
    if got["errors"] or not got["ok"]:
        raise RuntimeError(f"chats to {target.url}: {got['statuses']}")
    return got["ok_per_s"]


def _median(samples: Samples, name: str) -> float:
    return statistics.median(samples[name])
