"""The colony of a live session (mixed into ``SessionManager``): loading an agent folder as
its colony (with its triggers), reloading the one a resumed session had, unloading it, and
stopping the sessions that run an agent about to be deleted."""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING

from hive_server.errors import InvalidInput, NotFound
from hive_server.errors.sessions import ColonyAlreadyLoaded, NoColonyLoaded
from hive_server.models.event_data import WorkerColonyLoaded, WorkerColonyUnloaded
from hive_server.models.triggers import parse_triggers_file
from hive_server.services.catalog.agent_folder import AgentEntry
from hive_server.services.runtime.colony import Colony, find_agent
from hive_server.services.sessions.session import Session

if TYPE_CHECKING:  # the manager mixes this in
    from hive_server.services.sessions.manager import SessionManager

log = logging.getLogger(__name__)


class Colonies:
    """Mixed into ``SessionManager`` (see the module docstring)."""

    async def load_colony(self: SessionManager, session_id: str, agent_id: str | None,
                          agent_path: str | None) -> Colony:
        live = self.get(session_id)
        async with live.colony_lock:
            if live.colony is not None:
                raise ColonyAlreadyLoaded(live.colony.agent_id)
            return await self._load(live, find_agent(self.catalog, agent_id, agent_path))

    async def _load(self: SessionManager, live: Session, entry: AgentEntry) -> Colony:
        colony = Colony(live.journal, entry, self.llm, self.clock, ids=live.worker_ids,
                        model_override=self.options.model_override)
        live.queen.set_colony(colony)
        await live.journal.save_meta(agent_id=entry.agent_id, agent_path=str(entry.path))
        await live.journal.emit_durable(WorkerColonyLoaded(
            agent_id=entry.agent_id, agent_path=str(entry.path), name=colony.manifest.name,
            version=entry.version, tools=sorted(colony.available),
            workers=sorted(colony.workers)))
        if entry.triggers_raw is not None:
            await live.triggers.attach_folder(*parse_triggers_file(entry.triggers_raw))
        return colony

    async def _reload_on_resume(self: SessionManager, live: Session, agent_id: str) -> None:
        """Load the colony a resumed session had; if the agent is gone, say so and go on."""
        try:
            await self._load(live, self.catalog.get_valid(agent_id))
        except (NotFound, InvalidInput) as exc:
            log.warning("session %s: colony %s not reloaded: %s", live.journal.id, agent_id, exc)
            await live.journal.save_meta(agent_id=None, agent_path=None)
            await live.journal.emit_durable(WorkerColonyUnloaded(
                agent_id=agent_id, reason="agent_unavailable", error=str(exc)))

    async def unload_colony(self: SessionManager, session_id: str, reason: str = "request") -> str:
        live = self.get(session_id)
        async with live.colony_lock:  # after a load in progress, never in the middle of it
            colony = live.colony
            if colony is None:
                raise NoColonyLoaded()
            if colony.stats.running:
                await live.queen.cancel()
            await live.triggers.detach_folder()
            live.queen.set_colony(None)
            await live.journal.save_meta(agent_id=None, agent_path=None)
            await live.journal.emit_durable(WorkerColonyUnloaded(agent_id=colony.agent_id,
                                                                 reason=reason))
            return colony.agent_id

    async def stop_agent_sessions(self: SessionManager, agent_id: str) -> list[str]:
        """Stop every live session that has ``agent_id`` loaded (before deleting the agent)."""
        ids = [live.journal.id for live in self.running(agent_id)]
        for session_id in ids:
            with contextlib.suppress(NotFound):  # stopped by someone else meanwhile
                await self.stop(session_id, reason="agent_deleted")
        return ids
