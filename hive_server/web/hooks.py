"""``POST /hooks/{agent_id}/{trigger_id}``: webhook ingress (verified by signature)."""

from __future__ import annotations

import functools

from aiohttp import web

from hive_server import keys
from hive_server.models.agent_views import WebhookReceipt
from hive_server.web.body import json_response, read_limited
from hive_server.web.openapi import doc

routes = web.RouteTableDef()


@routes.post("/hooks/{agent_id}/{trigger_id}")
@doc(status=202, response=WebhookReceipt, also={200: WebhookReceipt})
async def receive(request: web.Request) -> web.Response:
    """Webhook ingress, verified by the trigger's signature scheme."""
    receipt = await request.app[keys.WEBHOOKS].receive(
        request.match_info["agent_id"], request.match_info["trigger_id"],
        dict(request.headers), functools.partial(read_limited, request),
        request.app[keys.SETTINGS].max_body_bytes)
    return json_response(receipt, status=200 if receipt.duplicate else 202)
