"""Health: ``GET /api/health``."""

from __future__ import annotations

from aiohttp import web

from hive_server import __version__, keys
from hive_server.models.responses import Health
from hive_server.web.body import json_response
from hive_server.web.openapi import doc

routes = web.RouteTableDef()


@routes.get("/api/health")
@doc(response=Health)
async def health(request: web.Request) -> web.Response:
    """Server status, session count, sessions still resuming and the model provider."""
    app = request.app
    llm = app[keys.LLM]
    manager = app[keys.SESSIONS]
    lives = manager.live()
    return json_response(Health(
        status="ok",
        version=__version__,
        sessions=len(lives),
        agents_loaded=sum(1 for live in lives if live.journal.meta.agent_id),
        provider=llm.provider,
        model=llm.default_model,
        durability=app[keys.SETTINGS].durability.value,
        resuming=manager.boot.left,
    ))
