"""Health and the token-cookie landing page."""

from __future__ import annotations

from aiohttp import web

from hive_server import __version__, keys
from hive_server.errors import Unauthorized
from hive_server.web.security import TOKEN_COOKIE, token_ok

routes = web.RouteTableDef()
landing = web.RouteTableDef()  # ``/`` when no UI is served (``--ui-dir`` replaces it)


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


@landing.get("/")
async def index(request: web.Request) -> web.Response:
    """``/?token=`` sets the auth cookie so a browser UI can use the API without headers."""
    settings = request.app[keys.SETTINGS]
    supplied = request.query.get("token")
    if settings.auth_required and not token_ok(settings, supplied):
        raise Unauthorized("open the URL printed at start-up (it carries the token)")
    response = web.Response(text="hive_server is running. The API is under /api/.\n")
    if supplied:
        response.set_cookie(TOKEN_COOKIE, supplied, httponly=True, samesite="Strict")
    return response
