"""Read a JSON request body into a pydantic model: 415 / 413 / 400 / 422, never 500."""

from __future__ import annotations

from typing import TypeVar

import orjson
from aiohttp import web
from pydantic import BaseModel, ValidationError

from hive_server import keys
from hive_server.errors import UnsupportedMediaType, ValidationFailed
from hive_server.errors.requests import (
    BodyTooLarge,
    EmptyMessage,
    InvalidQuery,
    MalformedJson,
    MessageTooLarge,
)
from hive_server.models.agent_views import Response
from hive_server.models.api import OptionalBody
from hive_server.models.validation import describe_validation_error

M = TypeVar("M", bound=BaseModel)


async def read_limited(request: web.Request, limit: int) -> bytes:
    """The raw body, refusing more than ``limit`` bytes without reading them all."""
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLarge(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def parse_json(request: web.Request, model: type[M]) -> M:
    """Parse the body as ``model``. An empty body is ``{}`` for an ``OptionalBody`` model."""
    data = await read_object(request, allow_empty=issubclass(model, OptionalBody))
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed(describe_validation_error(exc),
                               extra={"details": _details(exc)}) from None


async def read_object(request: web.Request, *, allow_empty: bool = False) -> dict:
    """The body as a JSON object: 415 / 413 / 400 / 422 (not an object)."""
    limit = request.app[keys.SETTINGS].max_body_bytes
    raw = await read_limited(request, limit)
    if not raw.strip() and allow_empty:
        return {}
    if request.content_type != "application/json":
        raise UnsupportedMediaType("body must be application/json")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise MalformedJson(exc) from None
    if not isinstance(data, dict):
        raise ValidationFailed("body must be a JSON object")
    return data


def _details(exc: ValidationError) -> list[dict[str, str]]:
    return [{"loc": ".".join(str(p) for p in e["loc"]), "msg": e["msg"]}
            for e in exc.errors(include_url=False)]


MAX_DIGITS = 20  # more than any seq, offset or count can reach


def plain_int(raw: str) -> int | None:
    """``raw`` as an integer when it is 1 to 20 plain ASCII digits and nothing else (no sign,
    space, ``_`` or other script's digits, all of which ``int()`` accepts); else None."""
    if 0 < len(raw) <= MAX_DIGITS and raw.isascii() and raw.isdigit():
        return int(raw)
    return None


def int_query(request: web.Request, name: str, default: int | None, *, minimum: int = 0,
              maximum: int | None = None) -> int | None:
    """An integer query parameter: plain ASCII digits (400 ``invalid_query`` otherwise)."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    value = plain_int(raw)
    if value is None:
        raise InvalidQuery(f"{name} must be an integer (ASCII digits only)")
    if value < minimum or (maximum is not None and value > maximum):
        raise InvalidQuery(f"{name} out of range")
    return value


QUERY_EXEMPT = frozenset({"token"})  # the per-launch token may ride the query string


def parse_query(request: web.Request, model: type[M]) -> M:
    """The query string as ``model`` (its config forbids extra keys): 400 ``invalid_query``
    naming an unknown, repeated or invalid parameter. An empty value counts as absent."""
    values: dict[str, str] = {}
    for name, value in request.query.items():
        if name in QUERY_EXEMPT or value == "":
            continue
        if name in values:
            raise InvalidQuery(f"query parameter {name!r} is repeated", parameter=name)
        values[name] = value
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        error = exc.errors()[0]
        name = str(error["loc"][0]) if error["loc"] else ""
        message = (f"unknown query parameter {name!r}" if error["type"] == "extra_forbidden"
                   else f"query parameter {name!r}: {error['msg']}")
        raise InvalidQuery(message, parameter=name) from None


def json_response(payload: object, status: int = 200) -> web.Response:
    """Every JSON answer on the wire, errors included, is encoded here: a response model
    (``models/responses.py``, ``agent_views.py``) serialised by itself, anything else by
    orjson (the same serializer as the log); both write compact UTF-8 JSON."""
    return web.Response(body=json_bytes(payload), status=status, content_type="application/json")


def json_bytes(payload: object) -> bytes:
    """The bytes ``json_response`` answers for ``payload`` (a model's own serializer writes
    them directly: ``model_dump_json`` would decode them to a str first)."""
    if isinstance(payload, Response):
        return payload.wire_bytes()
    if isinstance(payload, BaseModel):
        return payload.__pydantic_serializer__.to_json(payload)
    return orjson.dumps(payload)


def check_message(text: str, limit: int, what: str = "message") -> None:
    """A message for the queen: not blank (400), at most ``limit`` characters (413)."""
    if not text.strip():
        raise EmptyMessage(what)
    if len(text) > limit:
        raise MessageTooLarge(what, limit)
