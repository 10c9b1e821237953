"""Local-API security (DESIGN §11): Host allow-list, Origin check, per-launch token.

``/hooks/*`` is exempt from the token and Host checks: webhooks prove themselves by
signature instead (checked by the webhook handler).
"""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Handler

from hive_server import keys
from hive_server.errors import Forbidden, Unauthorized
from hive_server.settings import LOOPBACK_HOSTS, Settings

TOKEN_COOKIE = "hive_token"
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def allowed_hosts(settings: Settings) -> frozenset[str]:
    hosts = {h.strip("[]").lower() for h in LOOPBACK_HOSTS}
    hosts.update(h.strip("[]").lower() for h in settings.allowed_hosts)
    if settings.host not in ("0.0.0.0", "::"):
        hosts.add(settings.host.strip("[]").lower())
    return frozenset(hosts)


def _host_name(value: str) -> str:
    """The host part of a ``Host`` header (``netloc``); "" when it cannot be parsed."""
    try:
        return (urlsplit(f"//{value}").hostname or "").lower()
    except ValueError:
        return ""


def _origin_host(origin: str) -> str:
    try:
        return _host_name(urlsplit(origin).netloc)
    except ValueError:
        return ""


def request_token(request: web.Request) -> str | None:
    auth = request.headers.get("Authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return (request.headers.get("X-Hive-Token") or request.cookies.get(TOKEN_COOKIE)
            or request.query.get("token"))


def token_ok(settings: Settings, supplied: str | None) -> bool:
    if supplied is None:
        return False
    # header bytes that are not UTF-8 arrive as surrogates; they never match, never raise
    return hmac.compare_digest(supplied.encode("utf-8", "surrogatepass"),
                               settings.token.encode())


def check_request(request: web.Request, settings: Settings, hosts: frozenset[str]) -> None:
    """Raise Forbidden/Unauthorized unless the request passes Host, Origin and token checks."""
    if _host_name(request.host) not in hosts:
        raise Forbidden("Host header not allowed", code="host_not_allowed")
    origin = request.headers.get("Origin")
    if origin is not None and request.method in STATE_CHANGING and not _origin_ok(origin, hosts):
        raise Forbidden("Origin not allowed", code="origin_not_allowed")
    needs_token = settings.auth_required and request.path.startswith("/api/")
    if needs_token and not token_ok(settings, request_token(request)):
        raise Unauthorized("missing or invalid token", code="unauthorized")


def _origin_ok(origin: str, hosts: frozenset[str]) -> bool:
    return origin != "null" and _origin_host(origin) in hosts


@web.middleware
async def security_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith("/hooks/"):
        return await handler(request)
    settings = request.app[keys.SETTINGS]
    check_request(request, settings, request.app[keys.ALLOWED_HOSTS])
    return await handler(request)
