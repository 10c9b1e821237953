"""The webhook side of a session's triggers (mixed into ``SessionTriggers``): the config a
delivery is verified against, a delivery taken, refused or held, and the hand-over of the
deliveries held in the inbox while the trigger was not active anywhere."""

from __future__ import annotations

import logging
from typing import Any

from hive_server.errors import Unavailable
from hive_server.models.event_data import TriggerMissed, WebhookReceived, WebhookRejected
from hive_server.models.triggers import WebhookConfig
from hive_server.services.triggers.cards import Trigger
from hive_server.services.triggers.host import TriggerHost
from hive_server.services.webhooks.inbox import WebhookInbox

log = logging.getLogger(__name__)


class WebhookTriggers(TriggerHost):
    """Needs the host's inbox, ``_stopped`` and ``get`` besides ``TriggerHost``."""

    inbox: WebhookInbox
    _stopped: bool

    def get(self, trigger_id: str) -> Trigger:
        raise NotImplementedError

    def webhook_config(self, trigger_id: str) -> WebhookConfig | None:
        """The config of an active webhook trigger (what a delivery is verified against)."""
        trigger = self.triggers.get(trigger_id)
        return trigger.spec.webhook if trigger is not None and trigger.state.active else None

    async def receive_webhook(self, trigger_id: str, delivery: dict[str, Any]) -> int:
        """Log ``webhook_received`` and fire the trigger with the delivery's payload; the seq
        of its ``trigger_fired`` (``trigger_held`` in a session parked by its spend limit)."""
        trigger = self.get(trigger_id)
        await self.session.emit_durable(WebhookReceived(**{**delivery, "trigger_id": trigger_id}))
        return await self._fire(trigger, tick=None, manual=False,
                                payload=delivery.get("payload"))

    async def take_held(self, trigger_id: str | None = None) -> None:
        """Take what the inbox holds for this session's active webhook triggers (or one of
        them): a delivery that found no session with its trigger active while this one was
        becoming visible to the ingress (its trigger armed, the session not yet live) went
        there after the trigger's own take. Called once the session is live, and by the
        ingress after it held a delivery."""
        if self._stopped:
            return
        try:
            async with self._changing():
                for trigger in list(self.triggers.values()):
                    if trigger.state.active and trigger_id in (None, trigger.spec.id):
                        await self._take_inbox(trigger)
        except (Unavailable, OSError) as exc:  # stopping, or the inbox unreadable: kept there
            log.warning("session %s: held webhook deliveries not taken now: %s",
                        self.session.id, exc)

    async def _take_inbox(self, trigger: Trigger) -> None:
        """Hand over deliveries held while no session had this webhook trigger active.

        They are logged as received and reported as missed; ``fire_once`` then fires once
        with the latest delivery's payload, ``skip`` fires nothing.
        """
        webhook, agent_id = trigger.spec.webhook, self.session.meta.agent_id
        if webhook is None or agent_id is None:
            return
        held = await self.inbox.take(agent_id, trigger.spec.id)
        if not held:
            return
        for delivery in held:
            self.session.emit(WebhookReceived(**{**delivery, "trigger_id": trigger.spec.id,
                                                 "held": True}))
        await self.session.emit_durable(TriggerMissed(
            trigger_id=trigger.spec.id, missed=len(held), capped=False,
            first_missed_at=held[0].get("received_at"),
            last_missed_at=held[-1].get("received_at"), policy=webhook.misfire))
        if webhook.misfire == "fire_once":
            await self._fire(trigger, tick=None, manual=False, payload=held[-1].get("payload"),
                             missed=len(held))
        else:
            self._outcome(trigger, "skipped")
            await self._save()

    async def webhook_rejected(self, rejected: WebhookRejected) -> None:
        """Log a refused delivery for this session's trigger (its card shows it too)."""
        trigger = self.triggers.get(rejected.trigger_id)
        if trigger is None or self._stopped:
            return
        before = trigger.state
        self._outcome(trigger, "rejected", f"{rejected.reason}: {rejected.error}")
        if (before.last_outcome, before.last_error) != ("rejected", trigger.state.last_error):
            await self._save()  # a flood of the same refusal rewrites triggers.json once
        await self.session.emit_durable(rejected)

    async def webhook_held(self, trigger_id: str) -> None:
        """A delivery for this (inactive) trigger went to the inbox: its card shows it."""
        trigger = self.triggers.get(trigger_id)
        if trigger is not None and not self._stopped:
            before = trigger.state.last_outcome
            self._outcome(trigger, "held")
            if before != "held":  # many held deliveries rewrite triggers.json once
                await self._save()
