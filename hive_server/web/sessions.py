"""Session routes: create, list, get, rename, stop, history."""

from __future__ import annotations

from aiohttp import web

from hive_server import keys
from hive_server.errors.sessions import SessionIdMismatch
from hive_server.models.api import CreateSessionBody, RenameSessionBody
from hive_server.models.responses import (
    LiveSessions,
    LiveSessionView,
    RemoteSessionView,
    SessionAnswer,
    SessionDeleted,
    SessionHistory,
    SessionLoading,
    SessionRenamed,
    SessionStopped,
)
from hive_server.models.session_query import SessionListQuery
from hive_server.services.sessions.history import agent_sessions, history_page
from hive_server.services.sessions.lookup import find_session, remote_sessions
from hive_server.services.sessions.manager import NewSession
from hive_server.services.sessions.patch import patch_session
from hive_server.services.sessions.session import Session
from hive_server.web.body import check_message, json_response, parse_json, parse_query
from hive_server.web.openapi import doc
from hive_server.web.views import (
    history_row,
    live_session_view,
    remote_session_view,
    session_answer,
)

routes = web.RouteTableDef()


# The routes of one session come first: its GET, the most polled route, is then the first
# resource aiohttp tries under /api/sessions (before the plain path of the list).
@routes.get("/api/sessions/{session_id}")
@doc(response=SessionAnswer, also={202: SessionLoading})
async def get_session(request: web.Request) -> web.Response:
    """A live session (with entry points), or a cold one from disk."""
    app = request.app
    found = await find_session(app[keys.SESSIONS], request.match_info["session_id"])
    if isinstance(found, Session):  # the most polled answer, its bytes kept between polls
        return web.Response(body=app[keys.DETAIL_CACHE].answer(found),
                            content_type="application/json")
    answer, status = session_answer(found)
    return json_response(answer, status=status)


@routes.delete("/api/sessions/{session_id}")
@doc(response=SessionStopped)
async def stop_session(request: web.Request) -> web.Response:
    """Stop a live session (its streams end)."""
    session_id = request.match_info["session_id"]
    await request.app[keys.SESSIONS].stop(session_id)
    return json_response(SessionStopped(session_id=session_id, stopped=True))


@routes.patch("/api/sessions/{session_id}")
@doc(RenameSessionBody, response=SessionRenamed)
async def rename_session(request: web.Request) -> web.Response:
    """Give a session (live or on disk) a title, and/or a live session its spend limit."""
    body = await parse_json(request, RenameSessionBody)
    return json_response(await patch_session(request.app[keys.SESSIONS],
                                             request.app[keys.BUDGETS],
                                             request.match_info["session_id"], body))


@routes.post("/api/sessions")
@doc(CreateSessionBody, status=201, response=LiveSessionView)
async def create_session(request: web.Request) -> web.Response:
    """Create a session, or resume one from disk (``queen_resume_from``)."""
    body = await parse_json(request, CreateSessionBody)
    if body.initial_prompt is not None:
        check_message(body.initial_prompt, request.app[keys.SETTINGS].max_message_chars,
                      "initial_prompt")
    sessions, resume_from = request.app[keys.SESSIONS], _resume_from(body)
    live = await (sessions.create(_new_session(body)) if resume_from is None
                  else sessions.resume(resume_from))
    return json_response(live_session_view(live), status=201)


def _resume_from(body: CreateSessionBody) -> str | None:
    """The session a create body resumes: ``queen_resume_from`` (``session_id`` may name the
    same one, never another)."""
    resume_from = body.queen_resume_from
    if resume_from is not None and body.session_id not in (None, resume_from):
        raise SessionIdMismatch()
    return resume_from


def _new_session(body: CreateSessionBody) -> NewSession:
    return NewSession(session_id=body.session_id, agent_id=body.agent_id,
                      agent_path=body.agent_path, model=body.model,
                      initial_prompt=body.initial_prompt, queen_name=body.queen_name,
                      initial_phase=body.initial_phase, title=body.title)


@routes.get("/api/sessions")
@doc(response=LiveSessions)
async def list_sessions(request: web.Request) -> web.Response:
    """The live sessions (with ``--redis``: those other nodes run too, as their detail)."""
    manager = request.app[keys.SESSIONS]
    views: list[LiveSessionView | RemoteSessionView] = [
        live_session_view(live) for live in manager.live()]
    views += [remote_session_view(found) for found in await remote_sessions(manager)]
    return json_response(LiveSessions(sessions=views))


@routes.get("/api/sessions/history")
@doc(query=SessionListQuery, response=SessionHistory)
async def list_history(request: web.Request) -> web.Response:
    """The sessions on disk, live and cold, newest activity first: filters, a page of
    ``limit`` by ``cursor`` or ``page`` (``corrupt``: sessions whose meta.json is not)."""
    query = parse_query(request, SessionListQuery)
    page = await history_page(request.app[keys.SESSIONS], query)
    return json_response(SessionHistory(
        sessions=[history_row(entry) for entry in page.entries], total=page.total,
        next_cursor=page.next_cursor, corrupt=page.corrupt))


@routes.get("/api/colonies/{colony_id}/sessions")
@doc(response=SessionHistory)
async def colony_sessions(request: web.Request) -> web.Response:
    """The sessions that have this agent as their colony, newest first (Hive's colony page)."""
    entries = await agent_sessions(request.app[keys.SESSIONS], request.match_info["colony_id"])
    return json_response(SessionHistory(sessions=[history_row(entry) for entry in entries],
                                        total=len(entries)))


@routes.delete("/api/sessions/history/{session_id}")
@doc(response=SessionDeleted)
async def delete_history(request: web.Request) -> web.Response:
    """Stop a session if live and delete its folder."""
    session_id = request.match_info["session_id"]
    await request.app[keys.SESSIONS].delete_history(session_id)
    return json_response(SessionDeleted(session_id=session_id, deleted=session_id))
