"""Health: ``GET /api/health``."""

from __future__ import annotations

from aiohttp import web

from hive_server import __version__, keys

routes = web.RouteTableDef()


@routes.get("/api/health")
async def health(request: web.Request) -> web.Response:
    """Server status, session count and the model provider in use."""
    app = request.app
    llm = app[keys.LLM]
    lives = app[keys.SESSIONS].live()
    return web.json_response({
        "status": "ok",
        "version": __version__,
        "sessions": len(lives),
        "agents_loaded": sum(1 for live in lives if live.session.meta.agent_id),
        "provider": llm.provider,
        "model": llm.default_model,
        "durability": app[keys.SETTINGS].durability.value,
    })
