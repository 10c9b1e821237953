"""The ``data`` of the trigger and webhook events (part of ``models/event_data.py``'s set)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, JsonValue

from hive_server.models.event_base import EventData
from hive_server.models.events import EventType

TriggerOutcome = Literal["fired", "coalesced", "held", "rejected", "failed", "skipped"]
"""What became of a trigger's latest fire or delivery (``last_outcome`` on its card):

* ``fired``: ``trigger_fired`` was logged and the task handed to the queen;
* ``coalesced``: fired, but merged into the same trigger's input still waiting for the queen;
* ``held``: a webhook delivery kept in the inbox (the trigger is not active in any live
  session); it is handed over when the trigger is activated;
* ``rejected``: a webhook delivery refused (its reason is in ``last_error`` and in a
  ``webhook_rejected`` event);
* ``failed``: fired, but the queen could not take the task (her inbox is full, the session
  is stopping); the error is in ``last_error``;
* ``skipped``: missed ticks or held deliveries dropped by ``misfire: "skip"``.
"""


class TriggerCardFields(EventData):
    """A trigger card, flat (Hive reads ``trigger_id, trigger_type, name, task,
    trigger_config`` and the schedule fields at the top level of ``data``)."""

    trigger_id: str
    name: str
    trigger_type: Literal["timer", "webhook"]
    trigger_config: dict[str, JsonValue]
    task: str
    active: bool
    enabled: bool
    source: Literal["folder", "api"]
    next_fire_in: float | None = Field(description="seconds; null when not armed")
    next_fire_at: int | None = Field(description="epoch ms; null when not armed")
    fire_count: int
    last_fired_at: int | None = Field(description="epoch ms")


class TriggerAvailable(TriggerCardFields):
    TYPE = EventType.TRIGGER_AVAILABLE


class TriggerActivated(TriggerCardFields):
    TYPE = EventType.TRIGGER_ACTIVATED


class TriggerUpdated(TriggerCardFields):
    TYPE = EventType.TRIGGER_UPDATED


class TriggerFired(TriggerCardFields):
    TYPE = EventType.TRIGGER_FIRED
    tick: int | None = Field(description="the scheduled time (epoch ms); null for run and "
                                         "webhook fires")
    manual: bool = Field(description="fired by POST .../run")
    missed: int = Field(description="0, or how many missed ticks / held deliveries a catch-up "
                                    "fire stands for")
    payload: Any = None


class TriggerInvalid(EventData):
    TYPE = EventType.TRIGGER_INVALID
    trigger_id: str | None
    error: str
    source: Literal["folder"] = "folder"


class TriggerDeactivated(EventData):
    TYPE = EventType.TRIGGER_DEACTIVATED
    trigger_id: str


class TriggerRemoved(EventData):
    TYPE = EventType.TRIGGER_REMOVED
    trigger_id: str


class TriggerMissed(EventData):
    TYPE = EventType.TRIGGER_MISSED
    trigger_id: str
    missed: int
    capped: bool = Field(description="a cron count hit its cap of 1000")
    first_missed_at: int | None = Field(description="epoch ms: a tick, or a held delivery's "
                                                    "received_at")
    last_missed_at: int | None
    policy: Literal["skip", "fire_once"]


class WebhookReceived(EventData):
    TYPE = EventType.WEBHOOK_RECEIVED
    delivery_id: str
    agent_id: str
    trigger_id: str
    received_at: int = Field(description="epoch ms")
    headers: dict[str, str] = Field(description="allow-listed headers only")
    payload: Any = None
    held: bool = Field(default=False, description="it waited in the inbox")


class WebhookRejected(EventData):
    """A delivery for this session's trigger that was refused: why, and the allow-listed
    headers. Never the body, a signature, authorization or cookies."""

    TYPE = EventType.WEBHOOK_REJECTED
    agent_id: str
    trigger_id: str
    reason: str = Field(description="the refusal's code: payload_too_large, missing_signature, "
                                    "invalid_signature, stale_timestamp, "
                                    "secret_not_configured, trigger_not_found (not a webhook "
                                    "trigger), duplicate (a delivery id seen before), "
                                    "inbox_unavailable, webhook_store_unavailable, "
                                    "forward_timeout and forward_unavailable (--redis: no "
                                    "owner took it)")
    error: str = Field(description="the refusal's message")
    delivery_id: str | None = Field(description="the delivery id the sender gave, if any")
    received_at: int = Field(description="epoch ms")
    headers: dict[str, str] = Field(description="allow-listed headers only")
