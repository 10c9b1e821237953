"""A session's workspace (live or cold): ``GET /api/sessions/{id}/files`` lists it,
``GET /api/sessions/{id}/files/{path}`` downloads one file (always as an attachment of type
``application/octet-stream``, never rendered by the browser on this origin)."""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import web

from hive_server import keys
from hive_server.models.workspace import WorkspaceListing
from hive_server.services.sessions.workspace_files import list_workspace, open_workspace_file
from hive_server.web.body import json_response
from hive_server.web.openapi import doc

routes = web.RouteTableDef()


@routes.get("/api/sessions/{session_id}/files")
@doc(response=WorkspaceListing)
async def list_files(request: web.Request) -> web.Response:
    """The files and folders of the session's workspace (symlinks listed, not followed)."""
    return json_response(await list_workspace(request.app[keys.SESSIONS],
                                              request.match_info["session_id"]))


@routes.get("/api/sessions/{session_id}/files/{path:.+}")
@doc(media="application/octet-stream")
async def download_file(request: web.Request) -> web.StreamResponse:
    """Download one file of the session's workspace."""
    opened = await open_workspace_file(request.app[keys.SESSIONS],
                                       request.match_info["session_id"],
                                       request.match_info["path"])
    response = web.StreamResponse(headers={
        "Content-Type": "application/octet-stream", "X-Content-Type-Options": "nosniff",
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(opened.name, safe='')}",
    })
    response.content_length = opened.size
    request.app[keys.GUARD].add_cors(request, response)
    await response.prepare(request)
    async for chunk in opened.chunks():
        await response.write(chunk)
    await response.write_eof()
    return response
