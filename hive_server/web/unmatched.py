"""The last route of the app: a request no other route takes.

The Guard's checks wrap each route's handler (``Guard.guarded``), not an aiohttp middleware, so
a request the router cannot match comes here, behind the same checks, instead of to aiohttp's
own 404/405 handler: it answers what the router would (405 with ``Allow`` when the path takes
other methods, else 404), which the Guard maps to the JSON error of an API path, and the
request counts name it ``unmatched``.
"""

from __future__ import annotations

from typing import NoReturn

from aiohttp import web

PATH = "/{unmatched_path:.*}"
CANONICAL = "/{unmatched_path}"


async def unmatched(request: web.Request) -> NoReturn:
    """404, or 405 naming the methods the other routes of this path take."""
    this = request.match_info.route.resource
    allowed: set[str] = set()
    for resource in request.app.router.resources():
        if resource is not this:
            allowed |= (await resource.resolve(request))[1]
    if allowed:
        raise web.HTTPMethodNotAllowed(request.method, allowed)
    raise web.HTTPNotFound()
