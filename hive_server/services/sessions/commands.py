"""Chats and trigger runs for a session, wherever it runs (issue 14 item 3).

On this node (``manager.get``) they are applied here as always. With ``--redis``, a session
that is live in the index but run by another node (or by none for a moment: a takeover under
way) gets them through Redis (``core/redis_forward.py``): the sender ``Forwarder.ask``s, the
owner's ``CommandLoop`` applies them with ``apply`` and replies with the stored seq (and what
the route answers beside it), so the API acknowledges with the stored ``seq`` as on the owner.
A forward waits up to ``FORWARD_TIMEOUT`` seconds: long enough for a takeover (the new
owner's loop reads the commands sent while nobody ran the session), then 503
``forward_timeout`` with the request id to send again (applied once).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from hive_server.errors.backend import BadForwardedCommand, ForwardInDoubt
from hive_server.models.events import EventType
from hive_server.services.sessions.session import Session
from hive_server.services.sessions.webhook_cluster import WEBHOOK_OP, apply_forwarded_webhook

if TYPE_CHECKING:  # the manager imports ``apply``
    from hive_server.services.sessions.manager import SessionManager

FORWARD_TIMEOUT = 30.0
RECOVER_WINDOW = 10_000  # events searched for a chat an earlier owner may have stored


@dataclasses.dataclass(frozen=True, slots=True)
class Accepted:
    """A chat stored: its ``client_input_received`` seq and the inputs queued behind it."""

    seq: int
    queued: int


async def chat(manager: SessionManager, session_id: str, message: str,
               shown: str | None, request_id: str | None = None) -> Accepted:
    """Hand ``message`` to the session's queen, here or on its owner. With ``request_id``
    (and Redis) it goes through the owner's command stream even from the owner itself, so
    the same id sent again to any node is applied once."""
    body = {"op": "chat", "message": message, "shown": shown}
    live = await manager.check_reachable(session_id)
    if live is not None and (request_id is None or manager.node is None):
        answer = await apply(live, body)
    else:
        answer = await _forward(manager, session_id, body,
                                None if request_id is None else f"chat:{request_id}")
    return Accepted(int(answer["seq"]), int(answer.get("queued", 0)))


async def run_trigger(manager: SessionManager, session_id: str, trigger_id: str,
                      payload: Any) -> tuple[int, dict[str, Any]]:
    """Fire a trigger of the session once, here or on its owner: its seq and its card."""
    body = {"op": "trigger_run", "trigger_id": trigger_id, "payload": payload}
    live = await manager.check_reachable(session_id)
    answer = await (apply(live, body) if live is not None
                    else _forward(manager, session_id, body))
    return int(answer["seq"]), answer["trigger"]


async def _forward(manager: SessionManager, session_id: str, body: dict[str, Any],
                   request_id: str | None = None) -> dict[str, Any]:
    assert manager.node is not None  # live_elsewhere: only with --redis
    return await manager.node.forwarder.ask(session_id, body, FORWARD_TIMEOUT, request_id)


async def apply(live: Session, body: dict[str, Any],
                request_id: str | None = None) -> dict[str, Any]:
    """Apply a command to the session this node runs (the owner's side, ``request_id`` the
    forward's; also the local path): the reply, with ``seq``."""
    op = body.get("op")
    if op == "chat":
        event, _ = await live.queen.deliver(_text(body, "message"), shown=body.get("shown"),
                                            request_id=request_id)
        return {"seq": event.seq, "queued": live.queen.pending}
    if op == "trigger_run":
        trigger_id = _text(body, "trigger_id")
        live.triggers.get(trigger_id)  # 404 for an unknown trigger
        seq = await live.triggers.run(trigger_id, body.get("payload"))
        card = live.triggers.card_of(trigger_id)
        return {"seq": seq, "trigger": card.model_dump(mode="json")}
    if op == WEBHOOK_OP:  # a webhook delivery (the ingress of any node: webhook_cluster.py)
        return {"seq": await apply_forwarded_webhook(live, body)}
    raise BadForwardedCommand(repr(body).encode()[:200])


def _text(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str):
        raise BadForwardedCommand(repr(body).encode()[:200])
    return value


async def recover(live: Session, body: dict[str, Any],
                  request_id: str) -> dict[str, Any] | None:
    """A command an earlier owner took and never answered (``CommandLoop``): a chat is
    looked for in the last ``RECOVER_WINDOW`` events by its request id (its reply when it is
    there, None when it is not: apply it); any other command, or a log longer than the
    window, is ``ForwardInDoubt``."""
    if body.get("op") != "chat":
        raise ForwardInDoubt(live.journal.id, request_id)
    events = await live.journal.log.read_tail(RECOVER_WINDOW)
    for event in reversed(events):
        if (event.type == EventType.CLIENT_INPUT_RECEIVED
                and event.data.get("request_id") == request_id):
            return {"seq": event.seq, "queued": 0}
    if events and events[0].seq > 1:  # the window did not reach the log's start
        raise ForwardInDoubt(live.journal.id, request_id)
    return None
