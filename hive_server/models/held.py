"""``GET /api/webhooks/held``: webhook deliveries waiting in the inbox (no live session had
their trigger active when they came), by agent and trigger. Payloads are not listed."""

from __future__ import annotations

from pydantic import Field

from hive_server.models.agent_views import Response


class HeldDelivery(Response):
    delivery_id: str
    received_at: int | None = Field(description="epoch ms")
    headers: dict[str, str] = Field(description="allow-listed headers only")


class HeldTrigger(Response):
    agent_id: str
    trigger_id: str
    count: int
    first_received_at: int | None = Field(description="epoch ms")
    last_received_at: int | None = Field(description="epoch ms")
    deliveries: list[HeldDelivery] = Field(description="oldest first")


class HeldWebhooks(Response):
    held: list[HeldTrigger]
    total: int = Field(description="deliveries held, all triggers together")
