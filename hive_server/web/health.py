"""Health: ``GET /api/health``."""

from __future__ import annotations

import functools

from aiohttp import web

from hive_server import __version__, keys
from hive_server.core.stats import LEASE_RENEW_SECONDS, LEASES_LOST
from hive_server.models.responses import Health, LeaseHealth
from hive_server.web.body import json_bytes
from hive_server.web.openapi import doc

routes = web.RouteTableDef()
ANSWERS_KEPT = 64  # distinct answers remembered (they change with the counts only)
RENEW_MS_DIGITS = 2  # the renew median, rounded to 10 µs: fewer distinct answers to build

# (node id, sessions owned, (lease ttl ms, renew p50 ms, leases lost)): a node on Redis
NodeState = tuple[str, int, tuple[int, float | None, int]]


@routes.get("/api/health")
@doc(response=Health)
async def health(request: web.Request) -> web.Response:
    """Server status, session count, sessions still resuming, the model provider and, on
    Redis, this node's id, sessions owned and leases."""
    app = request.app
    llm = app[keys.LLM]
    manager = app[keys.SESSIONS]
    lives = manager.live()
    body = _answer(len(lives), sum(1 for live in lives if live.journal.meta.agent_id),
                   llm.provider, llm.default_model, app[keys.SETTINGS].durability.value,
                   manager.boot.left, _node_state(app))
    return web.Response(body=body, content_type="application/json")


def _node_state(app: web.Application) -> NodeState | None:
    """This node's part of the answer with ``--redis``; None with files only."""
    node = app.get(keys.REDIS_NODE)
    if node is None:
        return None
    keeper = node.keeper
    p50 = LEASE_RENEW_SECONDS.quantile(0.5)
    renew_ms = None if p50 is None else round(p50 * 1000, RENEW_MS_DIGITS)
    return node.node_id, keeper.owned_count, (keeper.ttl_ms, renew_ms, LEASES_LOST.value)


@functools.lru_cache(maxsize=ANSWERS_KEPT)
def _answer(sessions: int, agents_loaded: int, provider: str, model: str, durability: str,
            resuming: int, node: NodeState | None) -> bytes:
    """The answer's bytes for these values: a pure function, so each distinct answer is
    built (and checked) by the ``Health`` model once, and a poll in between costs a lookup."""
    if node is None:
        node_id, backend, owned, lease = None, "file", sessions, None
    else:
        (node_id, owned, (ttl_ms, renew_ms, lost)), backend = node, "redis"
        lease = LeaseHealth(ttl_ms=ttl_ms, renew_p50_ms=renew_ms, lost=lost)
    return json_bytes(Health(status="ok", version=__version__, sessions=sessions,
                             agents_loaded=agents_loaded, provider=provider, model=model,
                             durability=durability, resuming=resuming, node_id=node_id,
                             backend=backend, sessions_owned=owned, lease=lease))
