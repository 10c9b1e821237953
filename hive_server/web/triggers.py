"""Trigger routes of a session, and the entry points (the trigger cards)."""

from __future__ import annotations

from aiohttp import web

from hive_server import keys
from hive_server.models.agent_views import (
    EntryPoints,
    TriggerCard,
    TriggerDeleted,
    TriggerList,
    TriggerRun,
)
from hive_server.models.api import PatchTriggerBody, RunTriggerBody
from hive_server.models.held import HeldWebhooks
from hive_server.models.triggers import TriggerSpec
from hive_server.services.sessions import commands
from hive_server.web.body import json_response, parse_json, read_object
from hive_server.web.openapi import doc
from hive_server.web.paths import live_session

routes = web.RouteTableDef()


@routes.get("/api/sessions/{session_id}/triggers")
@doc(response=TriggerList)
async def list_triggers(request: web.Request) -> web.Response:
    """The session's trigger cards."""
    live = live_session(request)
    return json_response(TriggerList(session_id=live.journal.id,
                                     triggers=live.triggers.cards()))


@routes.get("/api/sessions/{session_id}/entry-points")
@doc(response=EntryPoints)
async def entry_points(request: web.Request) -> web.Response:
    """The session's entry points (trigger cards)."""
    live = live_session(request)
    return json_response(EntryPoints(session_id=live.journal.id,
                                     entry_points=live.triggers.cards()))


@routes.post("/api/sessions/{session_id}/triggers")
@doc(TriggerSpec, status=201, response=TriggerCard)
async def create_trigger(request: web.Request) -> web.Response:
    """Create a trigger for this session."""
    live = live_session(request)
    trigger = await live.triggers.create(await read_object(request))
    return json_response(live.triggers.card(trigger), status=201)


@routes.get("/api/sessions/{session_id}/triggers/{trigger_id}")
@doc(response=TriggerCard)
async def get_trigger(request: web.Request) -> web.Response:
    """One trigger's card (with its last outcome and last error)."""
    live = live_session(request)
    return json_response(live.triggers.card_of(request.match_info["trigger_id"]))


@routes.patch("/api/sessions/{session_id}/triggers/{trigger_id}")
@doc(PatchTriggerBody, response=TriggerCard)
async def patch_trigger(request: web.Request) -> web.Response:
    """Change a trigger's task or config (validated first)."""
    live = live_session(request)
    live.triggers.get(request.match_info["trigger_id"])
    body = await parse_json(request, PatchTriggerBody)
    trigger = await live.triggers.update(request.match_info["trigger_id"], body.task,
                                         body.trigger_config)
    return json_response(live.triggers.card(trigger))


@routes.delete("/api/sessions/{session_id}/triggers/{trigger_id}")
@doc(response=TriggerDeleted)
async def delete_trigger(request: web.Request) -> web.Response:
    """Delete a trigger."""
    live = live_session(request)
    trigger_id = request.match_info["trigger_id"]
    await live.triggers.remove(trigger_id)
    return json_response(TriggerDeleted(trigger_id=trigger_id, deleted=True))


@routes.post("/api/sessions/{session_id}/triggers/{trigger_id}/activate")
@doc(response=TriggerCard)
async def activate(request: web.Request) -> web.Response:
    """Activate a trigger (arms its timer)."""
    live = live_session(request)
    trigger = await live.triggers.activate(request.match_info["trigger_id"])
    return json_response(live.triggers.card(trigger))


@routes.post("/api/sessions/{session_id}/triggers/{trigger_id}/deactivate")
@doc(response=TriggerCard)
async def deactivate(request: web.Request) -> web.Response:
    """Deactivate a trigger (disarms its timer)."""
    live = live_session(request)
    trigger = await live.triggers.deactivate(request.match_info["trigger_id"])
    return json_response(live.triggers.card(trigger))


@routes.post("/api/sessions/{session_id}/triggers/{trigger_id}/run")
@doc(RunTriggerBody, status=202, response=TriggerRun)
async def run(request: web.Request) -> web.Response:
    """Fire a trigger once now; its schedule does not move."""
    manager, session_id = request.app[keys.SESSIONS], request.match_info["session_id"]
    trigger_id = request.match_info["trigger_id"]
    if (live := await manager.check_reachable(session_id)) is not None:
        live.triggers.get(trigger_id)  # 404 before the body is read
    body = await parse_json(request, RunTriggerBody)
    seq, card = await commands.run_trigger(manager, session_id, trigger_id, body.payload)
    return json_response(TriggerRun(trigger_id=trigger_id, fired=True, seq=seq,
                                    trigger=TriggerCard.model_validate(card)), status=202)


@routes.get("/api/webhooks/held")
@doc(response=HeldWebhooks)
async def held_webhooks(request: web.Request) -> web.Response:
    """Webhook deliveries held in the inbox (their trigger is not active in a live session)."""
    return json_response(await request.app[keys.WEBHOOKS].inbox.held())
