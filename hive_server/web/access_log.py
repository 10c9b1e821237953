"""The access log (aiohttp's ``access_log_class``): quiet by default, one line per request
with ``--access-log``.

By default a request gets a line only when it is slow (``slow_request_seconds`` or more: a
WARNING; a stream such as SSE is never slow, its time is its lifetime) or answered 5xx (a
WARNING), and, at ``--log-level debug``, when answered 4xx. With
``access_log`` on, every other request gets an INFO line too. A line never carries the query
string (``?token=`` may hold the API token):
``127.0.0.1 "GET /api/sessions/abc HTTP/1.1" 200 715 0.003s``.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp.abc import AbstractAccessLogger
from aiohttp.log import access_logger
from aiohttp.web import BaseRequest, Response, StreamResponse

from hive_server.settings import Settings


class AccessLog(AbstractAccessLogger):
    """See the module docstring; ``every`` and ``slow`` are set by ``access_log_class``."""

    every = False
    slow = 1.0

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        status = response.status
        if status >= 500 or (time >= self.slow and isinstance(response, Response)):
            level = logging.WARNING
        elif self.every:
            level = logging.INFO
        elif status >= 400:
            level = logging.DEBUG
        else:
            return
        if self.logger.isEnabledFor(level):
            version = request.version
            self.logger.log(level, '%s "%s %s HTTP/%d.%d" %d %d %.3fs', request.remote or "-",
                            request.method, request.path, version.major, version.minor,
                            status, response.body_length, time)


def runner_options(settings: Settings) -> dict[str, Any]:
    """``web.AppRunner`` keywords for the access log under ``settings``."""
    policy = type("AccessLog", (AccessLog,), {"every": settings.access_log,
                                              "slow": settings.slow_request_seconds})
    return {"access_log_class": policy, "access_log": access_logger}
