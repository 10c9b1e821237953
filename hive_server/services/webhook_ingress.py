"""Webhook ingress: verify, dedup, record, deliver (or hold in the inbox).

``POST /hooks/{agent_id}/{trigger_id}`` proves itself by the trigger's signature scheme, not
by the API token. A valid delivery is recorded (dedup store, then the session log or the
inbox) before the caller answers 202; a repeated delivery id fires nothing, across restarts.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from hive_server.core.clock import Clock
from hive_server.errors import HiveError, NotFound, Unauthorized, Unavailable
from hive_server.models.triggers import TriggerSpec, WebhookConfig, parse_triggers_file
from hive_server.services.catalog import AgentCatalog
from hive_server.services.sessions import SessionManager
from hive_server.services.webhooks import (
    DeliveryStore,
    WebhookInbox,
    filter_headers,
    verify_signature,
)

log = logging.getLogger(__name__)


@dataclasses.dataclass(slots=True)
class WebhookIngress:
    catalog: AgentCatalog
    sessions: SessionManager
    store: DeliveryStore
    inbox: WebhookInbox
    clock: Clock
    secret: Callable[[str], str | None]
    allow_unsigned: bool
    accepted: int = 0
    duplicates: int = 0

    def config_for(self, agent_id: str, trigger_id: str) -> WebhookConfig:
        spec = self._find(agent_id, trigger_id)
        if spec.webhook is None:
            raise NotFound(f"trigger {trigger_id!r} is not a webhook trigger",
                           code="trigger_not_found")
        return spec.webhook

    def _find(self, agent_id: str, trigger_id: str) -> TriggerSpec:
        for live in self.sessions.live():
            if live.colony is not None and live.colony.agent_id == agent_id:
                trigger = live.triggers.triggers.get(trigger_id)
                if trigger is not None:
                    return trigger.spec
        entry = self.catalog.get(agent_id)
        specs, _ = parse_triggers_file(entry.triggers_raw or b"[]")
        for spec in specs:
            if spec.id == trigger_id:
                return spec
        raise NotFound(f"no trigger {trigger_id!r} for agent {agent_id!r}",
                       code="trigger_not_found")

    async def receive(self, agent_id: str, trigger_id: str, headers: Mapping[str, str],
                      body: bytes) -> dict[str, Any]:
        config = self.config_for(agent_id, trigger_id)
        if config.signature == "none" and not self.allow_unsigned:
            raise Unauthorized("unsigned webhooks are accepted only on a loopback listener",
                               code="invalid_signature")
        secret = self.secret(config.secret_env) if config.secret_env else None
        delivery_id = verify_signature(config, secret, headers, body, self.clock.time())
        delivery_id = delivery_id or f"local-{uuid.uuid4().hex}"
        if not await self.store.record(agent_id, trigger_id, delivery_id):
            self.duplicates += 1
            return {"delivery_id": delivery_id, "duplicate": True, "delivered_to": []}
        delivery = {"delivery_id": delivery_id, "agent_id": agent_id,
                    "received_at": int(self.clock.time() * 1000),
                    "headers": filter_headers(headers), "payload": _payload(body)}
        targets = [live for live in self.sessions.live()
                   if live.colony is not None and live.colony.agent_id == agent_id
                   and live.triggers.accepts_webhook(trigger_id)]
        self.accepted += 1
        if not targets:
            try:
                await self.inbox.put(agent_id, trigger_id, delivery)
            except (Unavailable, OSError) as exc:  # not accepted: let the sender's retry through
                await self.store.forget(agent_id, trigger_id, delivery_id)
                raise Unavailable(f"the delivery could not be stored: {exc}",
                                  code="inbox_unavailable") from exc
            return {"delivery_id": delivery_id, "delivered_to": [], "held": True}
        for live in targets:
            try:
                await live.triggers.receive_webhook(trigger_id, delivery)
            except HiveError as exc:  # recorded in that session's log; its queen is busy/going
                log.warning("webhook %s for session %s not handed to the queen: %s",
                            delivery_id, live.session.id, exc)
        return {"delivery_id": delivery_id, "delivered_to": [live.session.id for live in targets]}


def _payload(body: bytes) -> Any:
    if not body:
        return None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode("utf-8", errors="replace")
