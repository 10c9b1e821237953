"""Session routes: create, list, get, stop, history."""

from __future__ import annotations

import asyncio

from aiohttp import web

from hive_server import keys
from hive_server.core.eventlog import last_seq_file
from hive_server.errors import NotFound
from hive_server.models.api import CreateSessionBody
from hive_server.services.history import agent_sessions, history_listing
from hive_server.web.body import check_message, json_response, parse_json
from hive_server.web.openapi import doc
from hive_server.web.views import cold_session_dict, history_row, live_session_dict

routes = web.RouteTableDef()


@routes.post("/api/sessions")
@doc(CreateSessionBody, status=201)
async def create_session(request: web.Request) -> web.Response:
    """Create a session, or resume one from disk."""
    body = await parse_json(request, CreateSessionBody, allow_empty=True)
    if body.initial_prompt is not None:
        check_message(body.initial_prompt, request.app[keys.SETTINGS].max_message_chars,
                      "initial_prompt")
    live = await request.app[keys.SESSIONS].create(body)
    return web.json_response(live_session_dict(live), status=201)


@routes.get("/api/sessions")
async def list_sessions(request: web.Request) -> web.Response:
    """The live sessions."""
    lives = request.app[keys.SESSIONS].live()
    return web.json_response({"sessions": [live_session_dict(live) for live in lives]})


@routes.get("/api/sessions/history")
async def list_history(request: web.Request) -> web.Response:
    """Every session on disk, newest first (``corrupt``: those whose meta.json is not)."""
    entries, corrupt = await history_listing(request.app[keys.SESSIONS])
    return json_response({"sessions": [history_row(entry) for entry in entries],
                          "corrupt": [item.model_dump(mode="json") for item in corrupt]})


@routes.get("/api/colonies/{colony_id}/sessions")
async def colony_sessions(request: web.Request) -> web.Response:
    """The sessions that have this agent as their colony, newest first (Hive's colony page)."""
    entries = await agent_sessions(request.app[keys.SESSIONS], request.match_info["colony_id"])
    return json_response({"sessions": [history_row(entry) for entry in entries]})


@routes.delete("/api/sessions/history/{session_id}")
async def delete_history(request: web.Request) -> web.Response:
    """Stop a session if live and delete its folder."""
    session_id = request.match_info["session_id"]
    await request.app[keys.SESSIONS].delete_history(session_id)
    return web.json_response({"session_id": session_id, "deleted": session_id})


@routes.get("/api/sessions/{session_id}")
async def get_session(request: web.Request) -> web.Response:
    """A live session (with entry points), or a cold one from disk."""
    manager = request.app[keys.SESSIONS]
    session_id = request.match_info["session_id"]
    path = manager.store.path(session_id)
    if manager.is_loading(session_id):
        return web.json_response({"session_id": session_id, "loading": True}, status=202)
    try:
        live = manager.get(session_id)
        return json_response({**live_session_dict(live), "entry_points": live.triggers.cards()})
    except NotFound:
        meta = await manager.store.read_meta(session_id)
    last_seq = await asyncio.to_thread(last_seq_file, path / "events.jsonl")
    return web.json_response(cold_session_dict(meta, last_seq))


@routes.delete("/api/sessions/{session_id}")
async def stop_session(request: web.Request) -> web.Response:
    """Stop a live session (its streams end)."""
    session_id = request.match_info["session_id"]
    await request.app[keys.SESSIONS].stop(session_id)
    return web.json_response({"session_id": session_id, "stopped": True})
