"""Local-API security (DESIGN §11): Host allow-list, Origin check, CORS, per-launch token.

- ``Host`` must name this server (the allow-list): DNS rebinding.
- A state-changing request that rides the cookie (no token in ``Authorization: Bearer`` or
  ``X-Hive-Token``, none in the query) must carry an ``Origin`` equal to the server's own
  origin (``http``, an allowed host, the port the connection came in on) or one in
  ``allowed_origins``; without ``Origin`` it is refused when it carries the cookie. A token
  in a header cannot be sent cross-site without a preflight, so it needs no Origin check.
- CORS preflights are answered for those same origins only; their responses carry
  ``Access-Control-Allow-Origin``, ``-Credentials`` and ``Vary: Origin``.

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
PREFLIGHT_HEADERS = {
    "Access-Control-Allow-Methods": "GET, POST, PUT, PATCH, DELETE",
    "Access-Control-Allow-Headers": "Authorization, X-Hive-Token, Content-Type, Last-Event-ID",
    "Access-Control-Max-Age": "600",
}


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


def _check_origin(request: web.Request) -> None:
    """A state-changing request riding the cookie comes from our own or an allowed origin."""
    if request.method not in STATE_CHANGING or not _rides_cookie(request):
        return
    origin = request.headers.get("Origin")
    if origin is None and TOKEN_COOKIE in request.cookies:
        raise Forbidden("a request using the cookie must carry Origin",
                        code="origin_not_allowed")
    if origin is not None and not origin_allowed(request, origin):
        raise Forbidden("Origin not allowed", code="origin_not_allowed")


def _check_token(request: web.Request, settings: Settings) -> None:
    path = request.path
    needs_token = settings.auth_required and (path.startswith("/api/") or path == "/metrics")
    if needs_token and not token_ok(settings, request_token(request)):
        raise Unauthorized("missing or invalid token", code="unauthorized")


def _rides_cookie(request: web.Request) -> bool:
    """Whether the credentials are ambient (the cookie, or none): no token header, and no
    ``?token=`` that ``request_token`` would take (the cookie wins over the query)."""
    headers = request.headers
    if headers.get("Authorization", "")[:7].lower() == "bearer " or "X-Hive-Token" in headers:
        return False
    return TOKEN_COOKIE in request.cookies or "token" not in request.query


def origin_allowed(request: web.Request, origin: str) -> bool:
    """``origin`` is listed in ``allowed_origins`` or is this server's own origin."""
    return origin in request.app[keys.ALLOWED_ORIGINS] or _own_origin(request, origin)


def _own_origin(request: web.Request, origin: str) -> bool:
    """``http://<allowed host>[:<port this connection came in on>]``, exactly as a browser
    writes it (the port from the socket, not from the Host header)."""
    try:
        parts = urlsplit(origin)
        port = 80 if parts.port is None else parts.port
    except ValueError:
        return False
    host = parts.hostname or ""
    if parts.scheme != "http" or host not in request.app[keys.ALLOWED_HOSTS]:
        return False
    netloc = f"[{host}]" if ":" in host else host
    canonical = f"http://{netloc}" if port == 80 else f"http://{netloc}:{port}"
    return origin == canonical and port == _local_port(request)


def _local_port(request: web.Request) -> int | None:
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    return sockname[1] if isinstance(sockname, tuple) else None


def _preflight(request: web.Request) -> web.Response:
    """Answer an ``OPTIONS`` preflight from an allowed origin (its ACAO is added by
    ``cors_headers`` like on every response); refuse any other."""
    if not origin_allowed(request, request.headers.get("Origin", "")):
        raise Forbidden("CORS preflight from an origin not allowed", code="origin_not_allowed")
    return web.Response(status=204, headers=PREFLIGHT_HEADERS)


@web.middleware
async def security_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith("/hooks/"):
        return await handler(request)
    if _host_name(request.host) not in request.app[keys.ALLOWED_HOSTS]:
        raise Forbidden("Host header not allowed", code="host_not_allowed")
    if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
        return _preflight(request)
    _check_origin(request)
    _check_token(request, request.app[keys.SETTINGS])
    return await handler(request)


async def cors_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: a response to an allowed origin (errors and streams too)
    says so, so the page can read it."""
    origin = request.headers.get("Origin")
    if origin is None or request.path.startswith("/hooks/") or not origin_allowed(request, origin):
        return
    response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Access-Control-Allow-Credentials"] = "true"
    if "Origin" not in response.headers.getall("Vary", ()):
        response.headers.add("Vary", "Origin")
