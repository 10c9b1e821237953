"""Colony and agent routes: load/unload, colonies, discover, delete, metadata,
README."""

from __future__ import annotations

from aiohttp import web

from hive_server import keys
from hive_server.models.agent_views import (
    AgentDeleted,
    AgentList,
    ColonyList,
    ColonyLoaded,
    ColonyUnloaded,
    Discover,
    ValidAgentView,
)
from hive_server.models.api import AgentMetadataBody, DeleteAgentBody, LoadColonyBody
from hive_server.models.responses import DataTables
from hive_server.services.sessions.agents import remove_agent, update_agent_metadata
from hive_server.services.sessions.history import agent_overview
from hive_server.web.body import json_response, parse_json
from hive_server.web.openapi import doc
from hive_server.web.paths import live_session
from hive_server.web.views import agent_view, discover_view

routes = web.RouteTableDef()


@routes.post("/api/sessions/{session_id}/colony")
@doc(LoadColonyBody, status=201, response=ColonyLoaded)
async def load_colony(request: web.Request) -> web.Response:
    """Load an agent folder into the session as its colony."""
    live = live_session(request)  # 404 before the body is read
    body = await parse_json(request, LoadColonyBody)
    colony = await request.app[keys.SESSIONS].load_colony(live.journal.id, body.agent_id,
                                                          body.agent_path)
    return json_response(ColonyLoaded(session_id=live.journal.id, colony=colony.view()),
                         status=201)


@routes.delete("/api/sessions/{session_id}/colony")
@doc(response=ColonyUnloaded)
async def unload_colony(request: web.Request) -> web.Response:
    """Unload the session's colony (running workers are cancelled)."""
    session_id = request.match_info["session_id"]
    agent_id = await request.app[keys.SESSIONS].unload_colony(session_id)
    return json_response(ColonyUnloaded(session_id=session_id, agent_id=agent_id,
                                        unloaded=True))


@routes.get("/api/sessions/{session_id}/colonies")
@doc(response=ColonyList)
async def colonies(request: web.Request) -> web.Response:
    """The colony loaded in the session, if any."""
    live = live_session(request)
    loaded = [live.colony.view()] if live.colony is not None else []
    return json_response(ColonyList(session_id=live.journal.id, colonies=loaded))


@routes.get("/api/discover")
@doc(response=Discover)
async def discover(request: web.Request) -> web.Response:
    """The valid agents by category, the categories at the top level (Hive's shape)."""
    overview = await agent_overview(request.app[keys.SESSIONS])
    return json_response(discover_view(overview, request.app[keys.QUEENS].default().name))


@routes.get("/api/colonies/{colony_id}/data/tables")
@doc(response=DataTables)
async def colony_tables(request: web.Request) -> web.Response:
    """Hive's colony data panel: this server keeps no data tables for a colony (empty list)."""
    request.app[keys.CATALOG].get(request.match_info["colony_id"])  # 404 for an unknown agent
    return json_response(DataTables(tables=[]))


@routes.get("/api/agents")
@doc(response=AgentList)
async def list_agents(request: web.Request) -> web.Response:
    """Every agent folder, valid or not (an invalid one with its ``error``), sorted by id."""
    overview = await agent_overview(request.app[keys.SESSIONS])
    return json_response(AgentList(agents=[agent_view(item.entry, item.loaded, item.usage)
                                           for item in overview]))


@routes.get("/api/agents/{agent_id}/readme")
@doc(media="text/markdown")
async def agent_readme(request: web.Request) -> web.Response:
    """The agent folder's README.md, as text (404 ``readme_not_found`` without one)."""
    text = request.app[keys.CATALOG].readme(request.match_info["agent_id"])
    return web.Response(text=text, content_type="text/markdown", charset="utf-8")


@routes.delete("/api/agents")
@doc(DeleteAgentBody, response=AgentDeleted)
async def delete_agent(request: web.Request) -> web.Response:
    """Stop the sessions using an agent and delete its folder."""
    body = await parse_json(request, DeleteAgentBody)
    return json_response(await remove_agent(request.app[keys.SESSIONS], body.agent_id,
                                            body.agent_path))


@routes.patch("/api/agents/metadata")
@doc(AgentMetadataBody, response=ValidAgentView)
async def patch_metadata(request: web.Request) -> web.Response:
    """Update an agent's name, description, goal, icon, tags or category."""
    body = await parse_json(request, AgentMetadataBody)
    fields = body.model_dump(exclude_unset=True, exclude={"agent_id", "agent_path"})
    agent = await update_agent_metadata(request.app[keys.SESSIONS], body.agent_id,
                                        body.agent_path, fields)
    return json_response(agent_view(agent.entry, agent.loaded, agent.usage))

