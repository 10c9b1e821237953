"""``GET /api/openapi.json``: an OpenAPI 3.1 document built from the live route table.

Every registered route is listed (so the document cannot miss one); handlers declare their
JSON body model and success status with ``@doc(...)``, and the body schemas come from the same
pydantic models that validate the requests.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from hive_server import __version__
from hive_server.web.body import json_response

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
routes = web.RouteTableDef()


@dataclasses.dataclass(frozen=True, slots=True)
class RouteDoc:
    body: type[BaseModel] | None = None
    status: int = 200
    stream: bool = False


_DOCS: dict[Handler, RouteDoc] = {}


def doc(body: type[BaseModel] | None = None, *, status: int = 200,
        stream: bool = False) -> Callable[[Handler], Handler]:
    """Declare a handler's request body model and success status for the document."""

    def register(handler: Handler) -> Handler:
        _DOCS[handler] = RouteDoc(body, status, stream)
        return handler

    return register


ERROR_SCHEMA = {"type": "object", "required": ["error", "code"], "properties": {
    "error": {"type": "string"}, "code": {"type": "string"}}}


def build_document(app: web.Application) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {"Error": ERROR_SCHEMA}
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("formatter") or info.get("path")
        if route.method == "HEAD" or not path or not path.startswith(("/api/", "/hooks/")):
            continue
        paths.setdefault(path, {})[route.method.lower()] = _operation(route, path, schemas)
    return {
        "openapi": "3.1.0",
        "info": {"title": "hive_server", "version": __version__},
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": schemas, "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"},
            "header": {"type": "apiKey", "in": "header", "name": "X-Hive-Token"},
            "query": {"type": "apiKey", "in": "query", "name": "token"},
            "cookie": {"type": "apiKey", "in": "cookie", "name": "hive_token"}}},
    }


def _operation(route: web.AbstractRoute, path: str, schemas: dict[str, Any]) -> dict[str, Any]:
    handler = route.handler
    meta = _DOCS.get(handler, RouteDoc())
    summary = (handler.__doc__ or handler.__name__.replace("_", " ")).strip().splitlines()[0]
    success: dict[str, Any] = {"description": "success"}
    if meta.stream:
        success["content"] = {"text/event-stream": {"schema": {"type": "string"}}}
    else:
        success["content"] = {"application/json": {"schema": {"type": "object"}}}
    operation: dict[str, Any] = {
        "operationId": handler.__name__,
        "summary": summary,
        "parameters": [{"name": name, "in": "path", "required": True,
                        "schema": {"type": "string"}}
                       for name in re.findall(r"{(\w+)}", path)],
        "responses": {str(meta.status): success, "4XX": {
            "description": "error", "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/Error"}}}}},
    }
    operation["security"] = ([] if path.startswith("/hooks/") else
                             [{"bearer": []}, {"header": []}, {"query": []}, {"cookie": []}])
    if meta.body is not None:
        name = meta.body.__name__
        schemas[name] = meta.body.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schemas[name].pop("$defs", {}))
        operation["requestBody"] = {"required": name != "CreateSessionBody", "content": {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}}
    return operation


@routes.get("/api/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 document of every route."""
    return json_response(build_document(request.app))

