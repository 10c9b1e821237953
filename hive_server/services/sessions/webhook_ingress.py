"""Webhook ingress: verify, dedup, record, deliver (or hold in the inbox).

``POST /hooks/{agent_id}/{trigger_id}`` proves itself by the trigger's signature scheme, not
by the API token. A valid delivery is recorded (dedup store, then the session log or the
inbox) before the caller answers 202; a repeated delivery id fires nothing, across restarts.

A session may have changed the trigger's config (PATCH), so each live session with the trigger
active checks the delivery against its own config and gets it only if that check passes. With
no such session the delivery is checked against the definition the inbox will hand it to.

With ``--redis`` (``forwarder`` set, ``webhook_cluster.py``) the delivery ids and the inbox are
Redis's (``RedisDeliveryStore``, ``RedisWebhookInbox``), the sessions running the agent on
other nodes are targets too (``SessionManager.running_elsewhere``; each checked against its
own config, from its saved trigger state in Redis: ``peek_triggers``), and every target
session gets the delivery through its owner's command stream, one request id per delivery, so
that a retry reaching any node is applied once.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson

from hive_server.core.clock import Clock
from hive_server.errors import HiveError, Unauthorized, Unavailable
from hive_server.errors.triggers import (
    DeliveryStoreUnavailable,
    DuplicateDelivery,
    InboxUnavailable,
    NoAgentTrigger,
    NotAWebhookTrigger,
    UnsignedOffLoopback,
)
from hive_server.models.agent_views import WebhookReceipt
from hive_server.models.event_data import WebhookRejected
from hive_server.models.triggers import TriggerSpec, WebhookConfig, parse_triggers_file
from hive_server.services.catalog.agents import AgentCatalog
from hive_server.services.sessions.manager import Session, SessionManager
from hive_server.services.sessions.webhook_cluster import NOT_SENT, Forward, deliver
from hive_server.services.triggers.store import SavedTriggers
from hive_server.services.webhooks.deliveries import DeliveryRecords
from hive_server.services.webhooks.inbox import HeldInbox
from hive_server.services.webhooks.signatures import (
    check_secret,
    filter_headers,
    given_delivery_id,
    verify_signature,
)

log = logging.getLogger(__name__)
GITHUB_MAX_BYTES = 25 * 1024 * 1024
"""The body limit for a GitHub-signed trigger (GitHub sends up to 25 MB)."""
FORWARD_TIMEOUT = 30.0
"""Seconds a delivery waits for a session's owner (a failover: a lease ttl and a resume)."""
BodyReader = Callable[[int], Awaitable[bytes]]
Target = Session | str  # a live session of this node, or the id of one another node runs
PeekTriggers = Callable[[list[str]], Awaitable[dict[str, SavedTriggers]]]
"""The saved trigger state of sessions other nodes run, by id (``store_redis``)."""
Refusal = tuple[Target, Unauthorized | Unavailable]


@dataclasses.dataclass(slots=True)
class WebhookIngress:
    catalog: AgentCatalog
    sessions: SessionManager
    store: DeliveryRecords
    inbox: HeldInbox
    clock: Clock
    secret: Callable[[str], str | None]
    allow_unsigned: bool
    forwarder: Forward | None = None  # with --redis: deliveries go through the owners
    peek_triggers: PeekTriggers | None = None  # with --redis: other nodes' sessions' state
    forward_timeout: float = FORWARD_TIMEOUT
    accepted: int = 0
    duplicates: int = 0

    def config_for(self, agent_id: str, trigger_id: str) -> WebhookConfig:
        """The config a delivery is checked against when no live session takes it."""
        spec = self._find(agent_id, trigger_id)
        if spec.webhook is None:
            raise NotAWebhookTrigger(trigger_id)
        return spec.webhook

    async def _candidates(self, agent_id: str,
                          trigger_id: str) -> list[tuple[Target, WebhookConfig]]:
        """The sessions with the trigger active, each with its own config: this node's, and
        with --redis the other nodes' (``_elsewhere``)."""
        return [*self._targets(agent_id, trigger_id),
                *await self._elsewhere(agent_id, trigger_id)]

    def _targets(self, agent_id: str,
                 trigger_id: str) -> list[tuple[Session, WebhookConfig]]:
        """The live sessions with the trigger active, each with its own config."""
        return [(live, config) for live in self.sessions.running(agent_id)
                if (config := live.triggers.webhook_config(trigger_id)) is not None]

    def _find(self, agent_id: str, trigger_id: str) -> TriggerSpec:
        for live in self.sessions.running(agent_id):
            if (spec := live.triggers.spec(trigger_id)) is not None:
                return spec
        if (spec := self._folder_spec(agent_id, trigger_id)) is not None:
            return spec
        raise NoAgentTrigger(agent_id, trigger_id)

    def _folder_spec(self, agent_id: str, trigger_id: str) -> TriggerSpec | None:
        """The agent folder's definition of the trigger (``AgentNotFound`` for no agent)."""
        specs, _ = parse_triggers_file(self.catalog.get(agent_id).triggers_raw or b"[]")
        return next((spec for spec in specs if spec.id == trigger_id), None)

    def _verify(self, config: WebhookConfig, headers: Mapping[str, str],
                body: bytes) -> str | None:
        if config.signature == "none" and not self.allow_unsigned:
            raise UnsignedOffLoopback()
        check_secret(config, self.secret)
        secret = self.secret(config.secret_env) if config.secret_env else None
        return verify_signature(config, secret, headers, body, self.clock.time())

    def _verify_targets(self, targets: list[tuple[Target, WebhookConfig]],
                        headers: Mapping[str, str], body: bytes,
                        ) -> tuple[str | None, list[Target], list[Refusal]]:
        """The delivery id, the sessions whose config verifies the delivery and those whose
        config refuses it; when none verifies it, the first refusal (``Unauthorized``, or
        ``Unavailable`` for an unset secret) is raised."""
        verdicts: dict[WebhookConfig, str | Unauthorized | Unavailable | None] = {}
        for _, config in targets:
            if config not in verdicts:
                try:
                    verdicts[config] = self._verify(config, headers, body)
                except (Unauthorized, Unavailable) as exc:
                    verdicts[config] = exc
        refusals = [(live, verdict) for live, config in targets
                    if isinstance(verdict := verdicts[config], Unauthorized | Unavailable)]
        if len(refusals) == len(targets):
            raise refusals[0][1]
        ids = [v for v in verdicts.values() if isinstance(v, str)]
        refused = {id(live) for live, _ in refusals}
        accepted = [live for live, _ in targets if id(live) not in refused]
        return (ids[0] if ids else None), accepted, refusals

    async def receive(self, agent_id: str, trigger_id: str, headers: Mapping[str, str],
                      read_body: BodyReader, limit: int) -> WebhookReceipt:
        """Take one delivery (the body is read through ``read_body``, at most ``limit``
        bytes, more for a GitHub-signed trigger). A refusal is logged with the agent and the
        trigger, and stored as ``webhook_rejected`` in each live session with the trigger."""
        try:
            return await self._receive(agent_id, trigger_id, headers, read_body, limit)
        except HiveError as exc:
            await self._reject(self._having(agent_id, trigger_id), agent_id, trigger_id,
                               headers, exc)
            raise

    async def _receive(self, agent_id: str, trigger_id: str, headers: Mapping[str, str],
                       read_body: BodyReader, limit: int) -> WebhookReceipt:
        candidates = await self._candidates(agent_id, trigger_id)
        configs = ([config for _, config in candidates]
                   or [self.config_for(agent_id, trigger_id)])  # NotFound if none
        if any(config.signature == "github" for config in configs):
            limit = max(limit, GITHUB_MAX_BYTES)
        body = await read_body(limit)
        delivery_id, targets = await self._verified(candidates, agent_id, trigger_id, headers,
                                                    body)
        delivery_id = delivery_id or f"local-{uuid.uuid4().hex}"
        if not await self._record(agent_id, trigger_id, delivery_id):
            self.duplicates += 1
            await self._reject(_local(targets), agent_id, trigger_id, headers,
                               DuplicateDelivery())
            return WebhookReceipt(delivery_id=delivery_id, delivered_to=[], duplicate=True)
        self.accepted += 1
        delivery = {"delivery_id": delivery_id, "agent_id": agent_id,
                    "received_at": int(self.clock.time() * 1000),
                    "headers": filter_headers(headers), "payload": _payload(body)}
        delivered = await self._deliver(targets, trigger_id, delivery) if targets else []
        if not delivered:
            return await self._hold(agent_id, trigger_id, delivery)
        return WebhookReceipt(delivery_id=delivery_id, delivered_to=delivered)

    async def _verified(self, candidates: list[tuple[Target, WebhookConfig]], agent_id: str,
                        trigger_id: str, headers: Mapping[str, str],
                        body: bytes) -> tuple[str | None, list[Target]]:
        """The delivery id and the ``candidates`` whose config verifies the delivery (none:
        it was verified against the definition the inbox hands it to); see
        ``_verify_targets``."""
        if not candidates:
            return self._verify(self.config_for(agent_id, trigger_id), headers, body), []
        delivery_id, targets, refusals = self._verify_targets(candidates, headers, body)
        for target, exc in refusals:
            await self._reject(_local([target]), agent_id, trigger_id, headers, exc)
        return delivery_id, targets

    async def _elsewhere(self, agent_id: str,
                         trigger_id: str) -> list[tuple[Target, WebhookConfig]]:
        """The sessions other nodes run (or are taking over) with the agent loaded and the
        trigger active, each with its own config, read from its saved state as its owner
        loads it (``SavedTriggers.webhook_config``); none without --redis."""
        if self.forwarder is None:
            return []
        here = {live.journal.id for live in self.sessions.running(agent_id)}
        elsewhere = [sid for sid in await self.sessions.running_elsewhere(agent_id)
                     if sid not in here]
        if not elsewhere:
            return []
        folder = self._folder_spec(agent_id, trigger_id)
        saved = await self.peek_triggers(elsewhere) if self.peek_triggers is not None else {}
        configs = [(sid, saved.get(sid, SavedTriggers()).webhook_config(
            trigger_id, agent_id, folder)) for sid in elsewhere]
        return [(sid, config) for sid, config in configs if config is not None]

    async def _deliver(self, targets: list[Target], trigger_id: str,
                       delivery: dict[str, Any]) -> list[str]:
        """Hand the delivery to each target; the ids of the sessions that took it. With
        --redis through the owners (``webhook_cluster.deliver``): when none could be
        reached, the delivery's claim is released and the error raised (503)."""
        if self.forwarder is None:
            return await self._deliver_here(_local(targets), trigger_id, delivery)
        agent_id, delivery_id = delivery["agent_id"], delivery["delivery_id"]
        try:
            return await deliver(self.forwarder, [_id_of(t) for t in targets], trigger_id,
                                 delivery, self.forward_timeout)
        except NOT_SENT:  # no owner took it: let the sender's retry through (same request id)
            await self._forget(agent_id, trigger_id, delivery_id)
            raise

    async def _deliver_here(self, targets: list[Session], trigger_id: str,
                            delivery: dict[str, Any]) -> list[str]:
        for live in targets:
            try:
                await live.triggers.receive_webhook(trigger_id, delivery)
            except HiveError as exc:  # recorded in that session's log; its queen is busy/going
                log.warning("webhook %s for session %s not handed to the queen: %s",
                            delivery["delivery_id"], live.journal.id, exc)
        return [live.journal.id for live in targets]

    async def _record(self, agent_id: str, trigger_id: str, delivery_id: str) -> bool:
        """``store.record``; a store that fails is 503 ``webhook_store_unavailable``."""
        try:
            return await self.store.record(agent_id, trigger_id, delivery_id)
        except OSError as exc:  # the file store (Redis's raises the named error itself)
            raise DeliveryStoreUnavailable(exc) from exc

    async def _forget(self, agent_id: str, trigger_id: str, delivery_id: str) -> None:
        """``store.forget`` of a delivery not accepted; a failure is logged (its retry is
        then answered as a duplicate)."""
        try:
            await self.store.forget(agent_id, trigger_id, delivery_id)
        except (DeliveryStoreUnavailable, OSError) as exc:
            log.error("webhook %s for agent %r trigger %r was not accepted, and its id could "
                      "not be released (%s): a retry is answered as a duplicate",
                      delivery_id, agent_id, trigger_id, exc)

    async def _hold(self, agent_id: str, trigger_id: str,
                    delivery: dict[str, Any]) -> WebhookReceipt:
        """Keep a delivery no live session takes in the inbox (the sessions that have the
        trigger inactive show it as held)."""
        delivery_id = delivery["delivery_id"]
        try:
            await self.inbox.put(agent_id, trigger_id, delivery)
        except (Unavailable, OSError) as exc:  # not accepted: let the sender's retry through
            await self._forget(agent_id, trigger_id, delivery_id)
            raise InboxUnavailable(exc) from exc
        log.info("webhook %s for agent %r trigger %r held: no live session has it active",
                 delivery_id, agent_id, trigger_id)
        for live in self._having(agent_id, trigger_id):
            await live.triggers.webhook_held(trigger_id)
        for live, _ in self._targets(agent_id, trigger_id):  # one went live meanwhile
            await live.triggers.take_held(trigger_id)
        return WebhookReceipt(delivery_id=delivery_id, delivered_to=[], held=True)

    def _having(self, agent_id: str, trigger_id: str) -> list[Session]:
        """The live sessions with the agent's trigger, active or not."""
        return [live for live in self.sessions.running(agent_id)
                if live.triggers.spec(trigger_id) is not None]

    async def _reject(self, sessions: list[Session], agent_id: str, trigger_id: str,
                      headers: Mapping[str, str], exc: HiveError) -> None:
        """Log a refusal (naming the agent and the trigger) and store it in ``sessions``."""
        names = ", ".join(live.journal.id for live in sessions) or "no live session"
        log.warning("webhook for agent %r trigger %r rejected (%s: %s); recorded in %s",
                    agent_id, trigger_id, exc.code, exc.message, names)
        rejected = WebhookRejected(
            agent_id=agent_id, trigger_id=trigger_id, reason=exc.code, error=exc.message,
            delivery_id=given_delivery_id(headers),
            received_at=int(self.clock.time() * 1000), headers=filter_headers(headers))
        for live in sessions:
            try:
                await live.triggers.webhook_rejected(rejected)
            except HiveError as error:  # that session is stopping: the refusal stands
                log.warning("session %s: webhook_rejected not stored: %s", live.journal.id,
                            error)


def _payload(body: bytes) -> Any:
    if not body:
        return None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode("utf-8", errors="replace")


def _local(targets: list[Target]) -> list[Session]:
    """The targets this node runs."""
    return [target for target in targets if isinstance(target, Session)]


def _id_of(target: Target) -> str:
    return target if isinstance(target, str) else target.journal.id
