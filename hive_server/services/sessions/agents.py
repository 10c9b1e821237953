"""Changes to an agent folder that concern the sessions running it: deleting it (its sessions
stop first) and editing its metadata (the answer says whether a session runs it)."""

from __future__ import annotations

from collections.abc import Mapping

from hive_server.models.agent_views import AgentDeleted
from hive_server.services.sessions.history import AgentOverview, AgentUsage
from hive_server.services.sessions.manager import SessionManager


async def remove_agent(manager: SessionManager, agent_id: str | None,
                       agent_path: str | None) -> AgentDeleted:
    """Stop the live sessions running the agent named by ``agent_id`` or ``agent_path``, then
    delete its folder."""
    found = manager.catalog.lookup(agent_id, agent_path).agent_id
    stopped = await manager.stop_agent_sessions(found)
    await manager.catalog.delete(found)
    return AgentDeleted(agent_id=found, deleted=found, purged=True, stopped_sessions=stopped)


async def update_agent_metadata(manager: SessionManager, agent_id: str | None,
                                agent_path: str | None,
                                fields: Mapping[str, object]) -> AgentOverview:
    """Patch the agent's metadata (``AgentCatalog.update_metadata``): the agent as written, as
    the agent list shows it (whether a live session runs it, its sessions' usage)."""
    found = manager.catalog.lookup(agent_id, agent_path).agent_id
    entry = await manager.catalog.update_metadata(found, fields)
    usage = await manager.store.index.usage_by_agent()
    return AgentOverview(entry, bool(manager.running(found)), usage.get(found, AgentUsage()))
