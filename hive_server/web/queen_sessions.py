"""Hive's queen routes: her profile, and opening, starting or selecting one of her sessions."""

from __future__ import annotations

from aiohttp import web

from hive_server import keys
from hive_server.models.api import QueenSessionBody, SelectQueenSessionBody
from hive_server.models.queen import QueenProfile
from hive_server.models.responses import QueenProfileView, QueenSession
from hive_server.web.body import check_message, json_response, parse_json
from hive_server.web.openapi import doc

routes = web.RouteTableDef()


async def _body(request: web.Request) -> QueenSessionBody:
    body = await parse_json(request, QueenSessionBody)
    if body.initial_prompt is not None:
        check_message(body.initial_prompt, request.app[keys.SETTINGS].max_message_chars,
                      "initial_prompt")
    return body


@routes.post("/api/queen/{queen_id}/session")
@doc(QueenSessionBody, response=QueenSession)
async def open_session(request: web.Request) -> web.Response:
    """The queen's session: her live one, else her last one resumed, else a new one."""
    body = await _body(request)
    result = await request.app[keys.QUEEN_SESSIONS].open(request.match_info["queen_id"], body)
    return json_response(result)


@routes.post("/api/queen/{queen_id}/session/new")
@doc(QueenSessionBody, response=QueenSession)
async def new_session(request: web.Request) -> web.Response:
    """A new session with the queen."""
    body = await _body(request)
    result = await request.app[keys.QUEEN_SESSIONS].new(request.match_info["queen_id"], body)
    return json_response(result)


@routes.post("/api/queen/{queen_id}/session/select")
@doc(SelectQueenSessionBody, response=QueenSession)
async def select_session(request: web.Request) -> web.Response:
    """One of the queen's sessions, made live (a colony session is only named)."""
    body = await parse_json(request, SelectQueenSessionBody)
    result = await request.app[keys.QUEEN_SESSIONS].select(request.match_info["queen_id"],
                                                           body.session_id)
    return json_response(result)


@routes.get("/api/queen/{queen_id}/profile")
@doc(response=QueenProfileView)
async def queen_profile(request: web.Request) -> web.Response:
    """One queen's profile, with Hive's ``summary`` built from it."""
    profile = request.app[keys.QUEEN_SESSIONS].profile(request.match_info["queen_id"])
    return json_response(queen_profile_view(profile))


def queen_profile_view(profile: QueenProfile) -> QueenProfileView:
    """A profile as Hive's profile panel reads it (``id, name, title, summary``), plus ours."""
    own = (profile.model_extra or {}).get("summary")
    summary = own if isinstance(own, str) else " ".join(part for part in (
        f"{profile.name}, {profile.title}." if profile.title else f"{profile.name}.",
        "Core traits: " + ", ".join(profile.core_traits) + "." if profile.core_traits else "",
    ) if part)
    return QueenProfileView(**{
        **profile.model_dump(mode="json"), "summary": summary, "has_avatar": False,
        "experience": [], "skills": ", ".join(profile.skills), "skill_list": profile.skills})
