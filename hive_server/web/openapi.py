"""``GET /api/openapi.json``: an OpenAPI 3.1 document built from the live route table.

Every registered route is listed (so the document cannot miss one); handlers declare their
request body, query string and response models and their success status with ``@doc(...)``.
The schemas come from the same pydantic models that validate the requests and serialise the
answers, made as strict as the server by ``models/contract.py`` (path parameter patterns,
``oneOf`` for alternatives, non-blank messages, exact trigger configs): a request the
document allows is never refused for its shape (only 404 / 409 for what does not exist or is
busy). Limits that are settings (``max_message_chars``) are filled in from this server's.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import orjson
from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import DEFAULT_REF_TEMPLATE, JsonSchemaMode

from hive_server import __version__, keys
from hive_server.models.api import OptionalBody
from hive_server.models.contract import (
    AGENTS_DIR_KEY,
    LIMIT_KEY,
    PATH_PARAMETERS,
    JsonSchema,
    agent_path,
)
from hive_server.models.responses import ErrorBody, OpenApiDocument
from hive_server.settings import Settings
from hive_server.web.body import json_response

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Model = type[BaseModel]
routes = web.RouteTableDef()
REF = "#/components/schemas/{model}"


@dataclasses.dataclass(frozen=True, slots=True)
class RouteDoc:
    body: Model | None = None
    status: int = 200
    stream: bool = False
    response: Model | None = None
    query: Model | None = None
    also: tuple[tuple[int, Model], ...] = ()
    media: str | tuple[str, ...] | None = None  # a text answer of this (these) media type(s)


_DOCS: dict[Handler, RouteDoc] = {}


def doc(body: Model | None = None, *, status: int = 200, stream: bool = False,
        response: Model | None = None, query: Model | None = None,
        also: dict[int, Model] | None = None,
        media: str | tuple[str, ...] | None = None) -> Callable[[Handler], Handler]:
    """Declare a handler's request body, query string and response models, its success
    status, ``also``: other successful answers (status -> model), and ``media``: the type of
    a text answer (a string in that media type, not JSON), or the types it may have."""

    def register(handler: Handler) -> Handler:
        _DOCS[handler] = RouteDoc(body, status, stream, response, query,
                                  tuple((also or {}).items()), media)
        return handler

    return register


ERROR = {"description": "error", "content": {"application/json": {
    "schema": {"$ref": REF.format(model="Error")}}}}
SECURITY = [{"bearer": []}, {"header": []}, {"query": []}, {"cookie": []}]


def build_document(app: web.Application) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {"Error": _json_schema(ErrorBody, "serialization",
                                                          DEFAULT_REF_TEMPLATE)}
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("formatter") or info.get("path")
        if route.method == "HEAD" or not path or not path.startswith(("/api/", "/hooks/")):
            continue
        paths.setdefault(path, {})[route.method.lower()] = _operation(route, path, schemas)
    _fill_settings(schemas, app[keys.SETTINGS])
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
    handler = getattr(route.handler, "__wrapped__", route.handler)  # behind Guard.wrap
    meta = _DOCS.get(handler, RouteDoc())
    summary = (handler.__doc__ or handler.__name__.replace("_", " ")).strip().splitlines()[0]
    responses = {str(meta.status): _success(meta.stream, meta.response, schemas, meta.media)}
    for status, model in meta.also:
        responses[str(status)] = _success(False, model, schemas)
    operation: dict[str, Any] = {
        "operationId": handler.__name__,
        "summary": summary,
        "parameters": [{"name": name, "in": "path", "required": True,
                        "schema": PATH_PARAMETERS.get(name, {"type": "string"})}
                       for name in re.findall(r"{(\w+)}", path)],
        "responses": {**responses, "4XX": ERROR, "5XX": ERROR},
        "security": [] if path.startswith("/hooks/") else SECURITY,
    }
    if meta.query is not None:
        operation["parameters"] += _query_parameters(meta.query)
    if meta.body is not None:
        name = _component(meta.body, schemas, "validation")
        schema = {"$ref": REF.format(model=name)}
        operation["requestBody"] = {"required": not issubclass(meta.body, OptionalBody),
                                    "content": {"application/json": {"schema": schema}}}
    return operation


def _success(stream: bool, model: Model | None, schemas: dict[str, Any],
             media: str | tuple[str, ...] | None = None) -> dict[str, Any]:
    if stream or media is not None:
        types = (media,) if isinstance(media, str) else media or ("text/event-stream",)
        return {"description": "success", "content": {
            kind: {"schema": {"type": "string"}} for kind in types}}
    schema = ({"$ref": REF.format(model=_component(model, schemas, "serialization"))}
              if model is not None else {"type": "object"})
    return {"description": "success", "content": {"application/json": {"schema": schema}}}


def _component(model: Model, schemas: dict[str, Any], mode: JsonSchemaMode) -> str:
    """Add ``model`` (and the models it uses) to the components; its name."""
    name = model.__name__
    if name not in schemas:
        schema = _json_schema(model, mode)
        schemas.update(schema.pop("$defs", {}))
        schemas[name] = schema
    return name


def _query_parameters(model: Model) -> list[dict[str, Any]]:
    """One parameter per field; a model with a rule across fields (``not``) is one exploded
    object parameter instead, so the rule stays in the document."""
    schema = _json_schema(model, "validation", DEFAULT_REF_TEMPLATE)
    properties = {name: _not_null(prop) for name, prop in schema["properties"].items()}
    rule = {key: schema[key] for key in ("not", "oneOf", "allOf") if key in schema}
    if rule:
        return [{"name": model.__name__, "in": "query", "style": "form", "explode": True,
                 "schema": {"type": "object", "additionalProperties": False,
                            "properties": properties, **rule}}]
    return [{"name": name, "in": "query", "required": False, "schema": prop}
            for name, prop in properties.items()]


def _json_schema(model: Model, mode: JsonSchemaMode, ref: str = REF) -> JsonSchema:
    """``model``'s JSON schema, a fresh copy each call (the document's build fills settings
    into it in place); pydantic's generation of it, tens of milliseconds for the larger
    models, runs once per process."""
    return orjson.loads(_json_schema_bytes(model, mode, ref))


@functools.cache
def _json_schema_bytes(model: Model, mode: JsonSchemaMode, ref: str) -> bytes:
    return orjson.dumps(model.model_json_schema(ref_template=ref, mode=mode))


def _not_null(schema: JsonSchema) -> JsonSchema:
    """A query value is never JSON null: the non-null branch of an optional field."""
    branches = [b for b in schema.get("anyOf", []) if b.get("type") != "null"]
    base = {k: v for k, v in schema.items() if k not in ("anyOf", "title", "default")}
    return {**base, **branches[0]} if len(branches) == 1 else base


def _fill_settings(schemas: dict[str, Any], settings: Settings) -> None:
    """This server's limits and agents folder in the schemas marked for them."""
    for node in _walk(schemas):
        if LIMIT_KEY in node:
            node["maxLength"] = getattr(settings, node.pop(LIMIT_KEY))
        if node.pop(AGENTS_DIR_KEY, False):
            root = settings.agents_dir.resolve()
            node["pattern"] = agent_path(("agents", root.name, str(root)))["pattern"]


def _walk(node: object) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in list(node.values()):
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


@routes.get("/api/openapi.json")
@doc(response=OpenApiDocument)
async def openapi(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 document of every route."""
    return json_response(OpenApiDocument.model_validate(build_document(request.app)))
