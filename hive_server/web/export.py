"""``GET /api/sessions/{id}/export?format=markdown|text|html|jsonl``: a session's transcript
(live or cold) streamed as a download, chunk by chunk (``services/sessions/export.py``)."""

from __future__ import annotations

import contextlib

from aiohttp import web

from hive_server import keys
from hive_server.models.api import ExportQuery
from hive_server.services.sessions.export import open_export
from hive_server.web.openapi import doc

routes = web.RouteTableDef()
# An HTML export is a page of its own: nothing may run or load in it (inline CSS only).
EXPORT_CSP = ("default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; "
              "form-action 'none'; frame-ancestors 'none'")


@routes.get("/api/sessions/{session_id}/export")
@doc(query=ExportQuery, media=("text/markdown", "text/plain", "text/html",
                               "application/x-ndjson"))
async def export(request: web.Request) -> web.StreamResponse:
    """The session's transcript as a download (Markdown by default)."""
    found = await open_export(request.app[keys.SESSIONS], request.match_info["session_id"],
                              request.query.get("format", "markdown"))
    response = web.StreamResponse(headers={
        "Content-Disposition": f'attachment; filename="{found.filename}"',
        "Content-Security-Policy": EXPORT_CSP, "X-Content-Type-Options": "nosniff"})
    response.content_type, response.charset = found.media_type, "utf-8"
    response.enable_chunked_encoding()
    request.app[keys.GUARD].add_cors(request, response)
    await response.prepare(request)
    async with contextlib.aclosing(found.chunks) as chunks:
        async for chunk in chunks:
            await response.write(chunk)
    await response.write_eof()
    return response
