"""Map domain errors (and aiohttp's own HTTP errors) to ``{"error", "code"}`` JSON."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.log import server_logger
from aiohttp.typedefs import Handler

from hive_server import errors
from hive_server.core.descriptors import out_of_descriptors
from hive_server.errors.sessions import ResourceExhausted
from hive_server.models.responses import ErrorBody
from hive_server.web.body import json_response

log = logging.getLogger(__name__)


class ServerLog(logging.LoggerAdapter):
    """aiohttp's server logger (``handler_args={"logger": ...}``), except that a request the
    HTTP parser refuses (bad header, line too long, bad chunking) is one WARNING line: it is
    the client's fault, answered 400, and its traceback says nothing about the server."""

    def exception(self, msg: object, *args: object, exc_info: Any = True,
                  **kwargs: Any) -> None:
        if isinstance(exc_info, HttpProcessingError):
            where = str(msg) % args if args else str(msg)
            detail = " ".join(str(exc_info.message).split())
            self.logger.warning("bad HTTP request (%s): %s %s", where, exc_info.code, detail)
            return
        self.logger.exception(msg, *args, exc_info=exc_info, **kwargs)


SERVER_LOG = ServerLog(server_logger)

STATUS = {
    errors.InvalidInput: 400,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.PayloadTooLarge: 413,
    errors.UnsupportedMediaType: 415,
    errors.ValidationFailed: 422,
    errors.Busy: 429,
    errors.Unavailable: 503,
}

HTTP_CODES = {
    404: "not_found", 405: "method_not_allowed", 413: "payload_too_large",
    400: "bad_request", 415: "unsupported_media_type",
}


def status_for(exc: errors.HiveError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def error_response(status: int, message: str, code: str, **extra: object) -> web.Response:
    return json_response(ErrorBody(error=message, code=code, **extra), status=status)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except Exception as exc:  # the request boundary
        return error_answer(request, exc)


def error_answer(request: web.Request, exc: Exception) -> web.StreamResponse:
    """The JSON answer to ``exc``, raised on the request path (called in an ``except``
    block); an HTTP exception that is no API error (a redirect, a page's 404) is re-raised."""
    if isinstance(exc, errors.HiveError):
        return error_response(status_for(exc), exc.message, exc.code, **exc.extra)
    if isinstance(exc, web.HTTPException):
        if exc.status < 400 or not _is_api(request):
            raise exc
        code = HTTP_CODES.get(exc.status, "http_error")
        response = error_response(exc.status, exc.reason or code, code)
        if "Allow" in exc.headers:  # a 405 names the methods the path takes
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    if out_of_descriptors(exc):  # EMFILE/ENFILE anywhere on the request path: not a bug
        log.warning("out of file descriptors in %s %s: %s", request.method, request.path, exc)
        return error_answer(request, ResourceExhausted())
    # a bug answers JSON, with its traceback logged
    log.error("unhandled error in %s %s", request.method, request.path, exc_info=exc)
    return error_response(500, "internal server error", "internal_error")


def _is_api(request: web.Request) -> bool:
    return request.path.startswith(("/api/", "/hooks/")) or request.path == "/api"
