"""Health: ``GET /api/health``."""

from __future__ import annotations

import functools

from aiohttp import web

from hive_server import __version__, keys
from hive_server.models.responses import Health
from hive_server.web.body import json_bytes
from hive_server.web.openapi import doc

routes = web.RouteTableDef()
ANSWERS_KEPT = 64  # distinct answers remembered (they change with the session counts only)


@routes.get("/api/health")
@doc(response=Health)
async def health(request: web.Request) -> web.Response:
    """Server status, session count, sessions still resuming and the model provider."""
    app = request.app
    llm = app[keys.LLM]
    manager = app[keys.SESSIONS]
    lives = manager.live()
    body = _answer(len(lives), sum(1 for live in lives if live.journal.meta.agent_id),
                   llm.provider, llm.default_model, app[keys.SETTINGS].durability.value,
                   manager.boot.left)
    return web.Response(body=body, content_type="application/json")


@functools.lru_cache(maxsize=ANSWERS_KEPT)
def _answer(sessions: int, agents_loaded: int, provider: str, model: str, durability: str,
            resuming: int) -> bytes:
    """The answer's bytes for these values: a pure function, so each distinct answer is
    built (and checked) by the ``Health`` model once, and a poll in between costs a lookup."""
    return json_bytes(Health(status="ok", version=__version__, sessions=sessions,
                             agents_loaded=agents_loaded, provider=provider, model=model,
                             durability=durability, resuming=resuming))
