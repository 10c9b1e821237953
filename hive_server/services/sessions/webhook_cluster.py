"""Webhook deliveries across nodes (issue 14): with ``--redis`` the ingress hands a delivery
to every session running the agent's trigger through the session's owner, whichever node that
is, so each session takes it once.

Sender side (``deliver``): one forwarded command per target session, ``{"op": "webhook",
"trigger_id", "delivery"}``, sent with ``Forwarder.forward`` under a request id made from the
delivery (``request_id``: the hash of agent, trigger and delivery id), also to a session this
node runs itself: a retry of the same delivery, whichever node it reaches, is applied once by
the owner (``core/redis_forward.py``: a request id is applied once within its hour), and a
command queued while the owner was dead is applied by the new owner when it starts. A forward
waits up to the ingress's ``forward_timeout`` (a failover takes a lease ttl and a resume).
When no target took the delivery (every forward timed out or Redis failed), the ingress
releases the delivery's claim and answers 503 (``forward_timeout`` or
``forward_unavailable``): the sender's retry goes through and reaches the same request ids.

Owner side (``apply_forwarded_webhook``): the command's delivery handed to the live session's
trigger as a local delivery is (``webhook_received`` logged, the trigger fired); the answer is
the stored seq of its ``trigger_fired`` (or ``trigger_held`` for a session parked by its spend
limit); 404 ``trigger_not_found`` when the trigger is not an active webhook trigger there (the
sender then holds the delivery in the inbox if no other session took it). The owner's
command dispatcher calls it for the op ``WEBHOOK_OP``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import orjson

from hive_server.errors import HiveError, NotFound
from hive_server.errors.backend import BadForwardedCommand, ForwardTimeout, ForwardUnavailable
from hive_server.errors.triggers import NotAWebhookTrigger
from hive_server.services.sessions.session import Session
from hive_server.services.webhooks.deliveries import delivery_hash

log = logging.getLogger(__name__)
WEBHOOK_OP = "webhook"
NOT_SENT = (ForwardTimeout, ForwardUnavailable)  # the owner has not taken it (yet)


class Forward(Protocol):
    """``core/redis_forward.Forwarder``'s sending side, as the ingress uses it."""

    async def forward(self, session_id: str, body: dict[str, object], timeout: float,
                      request_id: str | None = None) -> int: ...


def request_id(agent_id: str, trigger_id: str, delivery_id: str) -> str:
    """The forwarded command's request id: the same for every retry of one delivery."""
    return f"webhook-{delivery_hash(agent_id, trigger_id, delivery_id)}"


async def deliver(forwarder: Forward, session_ids: Sequence[str], trigger_id: str,
                  delivery: dict[str, Any], timeout: float) -> list[str]:
    """Forward the delivery to each session's owner at once; the sessions that took it. An
    owner's error counts as taken (its queen's inbox full: its log holds the delivery, as a
    local session's does), except a 404 (the trigger is not active there, the session is not
    run there any more: not a target). When none took it and some could not be reached, the
    first such forward's error is raised (``ForwardTimeout`` or ``ForwardUnavailable``)."""
    command: dict[str, object] = {"op": WEBHOOK_OP, "trigger_id": trigger_id,
                                  "delivery": delivery}
    rid = request_id(str(delivery["agent_id"]), trigger_id, str(delivery["delivery_id"]))
    outcomes = await asyncio.gather(
        *(_forward(forwarder, sid, command, timeout, rid) for sid in session_ids))
    taken = [sid for sid, outcome in zip(session_ids, outcomes, strict=True)
             if not isinstance(outcome, (*NOT_SENT, NotFound))]
    unsent = [outcome for outcome in outcomes if isinstance(outcome, NOT_SENT)]
    if unsent and not taken:
        raise unsent[0]
    return taken


async def _forward(forwarder: Forward, session_id: str, command: dict[str, object],
                   timeout: float, rid: str) -> HiveError | int:
    """The stored seq, or the error (logged) that stopped this one."""
    try:
        return await forwarder.forward(session_id, command, timeout, request_id=rid)
    except HiveError as exc:  # one session's answer; the others' go on
        log.warning("webhook %s for session %s: %s: %s", rid, session_id, exc.code,
                    exc.message)
        return exc


async def apply_forwarded_webhook(live: Session, body: Mapping[str, object]) -> int:
    """Hand a forwarded delivery to ``live`` (see the module docstring); its stored seq."""
    trigger_id, delivery = body.get("trigger_id"), body.get("delivery")
    if body.get("op") != WEBHOOK_OP or not isinstance(trigger_id, str) or not isinstance(
            delivery, dict):
        raise BadForwardedCommand(orjson.dumps(dict(body)))
    if live.triggers.webhook_config(trigger_id) is None:  # not active here (any more)
        raise NotAWebhookTrigger(trigger_id)
    return await live.triggers.receive_webhook(trigger_id, delivery)
