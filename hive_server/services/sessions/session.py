"""Session: a live session and the parts it runs (owned by ``SessionManager``)."""

from __future__ import annotations

import asyncio
import dataclasses

from hive_server.services.journal.journal import SessionJournal
from hive_server.services.runtime.colony import Colony
from hive_server.services.runtime.queen import Queen
from hive_server.services.runtime.worker_ids import WorkerIds
from hive_server.services.tools.base import Tool
from hive_server.services.triggers.session_triggers import SessionTriggers


@dataclasses.dataclass(slots=True)
class Session:
    """A live session and the parts it runs."""

    journal: SessionJournal
    queen: Queen
    triggers: SessionTriggers
    colony: Colony | None = None
    colony_lock: asyncio.Lock = dataclasses.field(default_factory=asyncio.Lock)  # load/unload
    worker_ids: WorkerIds = dataclasses.field(default_factory=WorkerIds)  # across colonies

    def queen_tools(self, base: dict[str, Tool]) -> dict[str, Tool]:
        if self.colony is None:
            return base
        return {**base, "run_worker": self.colony.run_worker_tool()}

    def colony_text(self) -> str | None:
        return self.colony.describe() if self.colony is not None else None
