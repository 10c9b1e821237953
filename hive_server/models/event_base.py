"""The base of every event payload model (``models/event_data.py`` lists them all)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import ConfigDict

from hive_server.models.base import Model
from hive_server.models.events import EventType


class EventData(Model):
    """Base of every payload model; ``TYPE`` is the event type it belongs to."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    TYPE: ClassVar[EventType]
