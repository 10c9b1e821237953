"""``POST /hooks/{agent_id}/{trigger_id}``: webhook ingress (verified by signature)."""

from __future__ import annotations

from aiohttp import web

from hive_server import keys
from hive_server.models.agent_views import WebhookReceipt
from hive_server.web.body import json_response, read_limited
from hive_server.web.openapi import doc

routes = web.RouteTableDef()

GITHUB_MAX_BYTES = 25 * 1024 * 1024


@routes.post("/hooks/{agent_id}/{trigger_id}")
@doc(status=202, response=WebhookReceipt, also={200: WebhookReceipt})
async def receive(request: web.Request) -> web.Response:
    """Webhook ingress, verified by the trigger's signature scheme."""
    ingress = request.app[keys.WEBHOOKS]
    agent_id, trigger_id = request.match_info["agent_id"], request.match_info["trigger_id"]
    configs = ingress.configs_for(agent_id, trigger_id)
    limit = request.app[keys.SETTINGS].max_body_bytes
    if any(config.signature == "github" for config in configs):
        limit = max(limit, GITHUB_MAX_BYTES)
    body = await read_limited(request, limit)
    result = await ingress.receive(agent_id, trigger_id, dict(request.headers), body)
    receipt = WebhookReceipt.model_validate(result)
    return json_response(receipt, status=200 if receipt.duplicate else 202)
