"""Queen routes: chat, cancel, and the queen profiles."""

from __future__ import annotations

from aiohttp import web

from hive_server import keys
from hive_server.errors.sessions import ImagesNotSupported
from hive_server.models.api import ChatBody
from hive_server.models.responses import (
    Cancelled,
    ChatAccepted,
    InvalidQueen,
    QueenCard,
    QueenProfiles,
    QueueDropped,
)
from hive_server.services.sessions import commands
from hive_server.web.body import check_message, json_response, parse_json
from hive_server.web.openapi import doc
from hive_server.web.paths import live_session

routes = web.RouteTableDef()


@routes.post("/api/sessions/{session_id}/chat")
@doc(ChatBody, status=202, response=ChatAccepted)
async def chat(request: web.Request) -> web.Response:
    """Send the queen a message (queued if she is busy)."""
    manager, session_id = request.app[keys.SESSIONS], request.match_info["session_id"]
    await manager.check_reachable(session_id)  # 404 before the body is read
    body = await parse_json(request, ChatBody)
    check_message(body.message, request.app[keys.SETTINGS].max_message_chars)
    if body.images:
        raise ImagesNotSupported()
    accepted = await commands.chat(manager, session_id, body.message, body.display_message,
                                   body.request_id)
    return json_response(ChatAccepted(status="accepted", delivered=True, seq=accepted.seq,
                                      queued=accepted.queued), status=202)


@routes.post("/api/sessions/{session_id}/cancel")
@routes.post("/api/sessions/{session_id}/cancel-queen")
@doc(response=Cancelled)
async def cancel(request: web.Request) -> web.Response:
    """Cancel the queen's current turn and its workers (``cancel-queen``: Hive's name)."""
    live = live_session(request)
    cancelled = await live.queen.cancel()
    return json_response(Cancelled(session_id=live.journal.id, cancelled=cancelled))


@routes.delete("/api/sessions/{session_id}/queue")
@doc(response=QueueDropped)
async def clear_queue(request: web.Request) -> web.Response:
    """Drop the inputs waiting for the queen (her current turn goes on)."""
    live = live_session(request)
    event = await live.queen.clear_queue()
    return json_response(QueueDropped(session_id=live.journal.id, dropped=event.data["dropped"],
                                      input_seqs=event.data["input_seqs"], seq=event.seq))


@routes.get("/api/queen/profiles")
@doc(response=QueenProfiles)
async def queen_profiles(request: web.Request) -> web.Response:
    """The queen profiles found in the queens dir (``queens``: Hive's list)."""
    registry = request.app[keys.QUEENS]
    return json_response(QueenProfiles(
        # custom: not one of Hive's built-in queens (every profile here is a file of ours);
        # Hive's Org Chart lists custom queens with their own "Re-enable" switch
        queens=[QueenCard(id=p.id, name=p.name, title=p.title, has_avatar=False, custom=True)
                for p in registry.list()],
        profiles=registry.list(),
        invalid=[InvalidQueen(id=bad.queen_id, error=bad.error) for bad in registry.invalid()],
    ))
