"""LiveSession: a live session and the parts it runs (owned by ``SessionManager``)."""

from __future__ import annotations

import asyncio
import dataclasses

from hive_server.services.colony import Colony
from hive_server.services.queen import Queen
from hive_server.services.session import Session
from hive_server.services.tools import Tool
from hive_server.services.triggers import SessionTriggers
from hive_server.services.worker_ids import WorkerIds


@dataclasses.dataclass(slots=True)
class LiveSession:
    """A live session and the parts it runs."""

    session: Session
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
