"""Session: a live session and the parts it runs (owned by ``SessionManager``).

``SessionParts.build`` (start.py) puts one together; ``start`` arms its triggers and its
watchdog; ``stop`` takes it down, in the order its docstring states.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import TYPE_CHECKING, Protocol

from hive_server.models.handoff import HandoffTrigger
from hive_server.services.budget.budgets import SessionBudget
from hive_server.services.journal.handoff import armed_triggers
from hive_server.services.journal.journal import SessionJournal
from hive_server.services.runtime.colony import Colony
from hive_server.services.runtime.queen import Queen
from hive_server.services.runtime.watchdog import TurnWatchdog
from hive_server.services.runtime.worker_ids import WorkerIds
from hive_server.services.triggers.session_triggers import SessionTriggers, TriggerFiles

if TYPE_CHECKING:  # redis-py is imported only with --redis
    from hive_server.core.redis_lease import LeaseToken

log = logging.getLogger(__name__)


class _Part(Protocol):
    async def stop(self) -> None: ...


@dataclasses.dataclass(slots=True)
class Session:
    """A live session: its journal (events, log, bus, meta) and the parts that run around it."""

    journal: SessionJournal
    queen: Queen
    triggers: SessionTriggers
    watchdog: TurnWatchdog  # fails a queen turn that went silent
    budget: SessionBudget  # the session's spend gate
    colony_lock: asyncio.Lock = dataclasses.field(default_factory=asyncio.Lock)  # load/unload
    worker_ids: WorkerIds = dataclasses.field(default_factory=WorkerIds)  # across colonies
    lease: LeaseToken | None = None  # with --redis: this node's lease of the session
    commands: _Part | None = None  # with --redis: the loop serving forwarded commands

    @property
    def colony(self) -> Colony | None:
        """The loaded colony (``queen.set_colony``), or None."""
        return self.queen.colony

    async def start(self, trigger_files: TriggerFiles) -> None:
        """Arm the saved triggers (``read_trigger_files``) and start the stale-turn watchdog."""
        await self.triggers.start(trigger_files)
        self.watchdog.start()

    async def stop(self, reason: str, *, mark_stopped: bool, log_stop: bool = True) -> None:
        """Stop the session, in this order:

        1. the journal is marked stopping (an action that races the stop is refused);
        2. the armed triggers are noted for the handoff, before they are disarmed;
        3. the parts stop, each awaited, one's failure logged and never keeping the next one
           running: the loop of forwarded commands (with ``--redis``); the stale-turn
           watchdog; the triggers (every timer disarmed, after a fire under way); the queen
           (its turn and its workers cancelled); the spend gate (detached from the budgets);
        4. the journal closes (``SessionJournal.close``): ``session_summary`` and
           ``session_stopped`` logged (``log_stop``), the log closed, the streams ended,
           ``meta.json`` written (``mark_stopped``: as stopped; else kept live for the next
           start).
        """
        self.journal.stopping = True
        armed = self._armed()
        first = () if self.commands is None else (self.commands,)  # no command after a stop
        for part in (*first, self.watchdog, self.triggers, self.queen, self.budget):
            await self._stop_part(part)
        await self.journal.close(reason, mark_stopped=mark_stopped, log_stop=log_stop,
                                 armed=armed)

    def _armed(self) -> list[HandoffTrigger]:
        """The armed triggers for the handoff notes (a failure never stops a stop)."""
        try:
            return armed_triggers(self.triggers)
        except Exception:  # the notes are best effort; the stop goes on
            log.exception("session %s: reading the armed triggers failed", self.journal.id)
            return []

    async def _stop_part(self, part: _Part) -> None:
        try:
            await part.stop()
        except Exception:  # a part that fails to stop never keeps the others running
            log.exception("session %s: stopping %r failed", self.journal.id, part)
