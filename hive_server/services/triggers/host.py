"""What the parts mixed into ``SessionTriggers`` (``WebhookTriggers``, ``HeldFires``) need
of it: its session, clock and triggers, a fire, a save, and a trigger's last outcome."""

from __future__ import annotations

import contextlib
from typing import Any

from hive_server.core.clock import Clock
from hive_server.models.trigger_events import TriggerOutcome
from hive_server.services.journal.journal import SessionJournal
from hive_server.services.triggers.cards import Trigger


class TriggerHost:
    session: SessionJournal
    clock: Clock
    triggers: dict[str, Trigger]

    def _changing(self) -> contextlib.AbstractAsyncContextManager[None]:
        raise NotImplementedError

    async def _fire(self, trigger: Trigger, *, tick: float | None, manual: bool,
                    payload: Any = None, missed: int = 0) -> int:
        raise NotImplementedError

    async def _save(self) -> None:
        raise NotImplementedError

    def _outcome(self, trigger: Trigger, outcome: TriggerOutcome,
                 error: str | None = None) -> None:
        """The card's ``last_outcome`` (and ``last_error``), saved with the next ``_save``."""
        trigger.state = trigger.state.with_outcome(outcome, at=self.clock.time(), error=error)
