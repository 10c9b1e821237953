"""What a route's path names, resolved: the live session of ``{session_id}``."""

from __future__ import annotations

from aiohttp import web

from hive_server import keys
from hive_server.services.sessions.manager import Session


def live_session(request: web.Request) -> Session:
    """The live session ``{session_id}`` names (404 ``session_not_live``, 409
    ``session_loading`` while it starts)."""
    return request.app[keys.SESSIONS].get(request.match_info["session_id"])
