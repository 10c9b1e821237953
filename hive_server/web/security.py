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

``Guard`` holds what the checks need, computed once from the settings; ``wrap`` puts the
checks, in one pass, and the error mapping of ``web/errors.py`` around each route's handler
(the app has no aiohttp middleware; nothing is parsed twice, and a ``Host`` value once found
allowed is remembered). The most common request, a GET or HEAD from a ``Host`` already found
allowed with ``Authorization: Bearer <token>`` written exactly so, is admitted after two
header lookups and one constant-time comparison (``_reads_with_token``): every check it skips
would pass.
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Iterable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

from hive_server import keys
from hive_server.errors import Unauthorized
from hive_server.errors.backend import SessionElsewhere
from hive_server.errors.requests import HostNotAllowed, OriginNotAllowed
from hive_server.errors.sessions import SessionNotLive
from hive_server.settings import LOOPBACK_HOSTS, Settings
from hive_server.web.errors import error_answer

if TYPE_CHECKING:
    from hive_server.web.metrics import RequestCounter

TOKEN_COOKIE = "hive_token"
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
READS = frozenset({"GET", "HEAD"})
PREFLIGHT_HEADERS = {
    "Access-Control-Allow-Methods": "GET, POST, PUT, PATCH, DELETE",
    "Access-Control-Allow-Headers": "Authorization, X-Hive-Token, Content-Type, Last-Event-ID",
    "Access-Control-Max-Age": "600",
}
HOOKS = "/hooks/"
HOST_CACHE_SIZE = 64  # Host values remembered as allowed (their ports may vary)


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
    auth = request.headers.get(hdrs.AUTHORIZATION, "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return (request.headers.get("X-Hive-Token") or request.cookies.get(TOKEN_COOKIE)
            or request.query.get("token"))


def _token_matches(supplied: str | None, token: bytes) -> bool:
    if supplied is None:
        return False
    # header bytes that are not UTF-8 arrive as surrogates; they never match, never raise
    return hmac.compare_digest(supplied.encode("utf-8", "surrogatepass"), token)


def token_ok(settings: Settings, supplied: str | None) -> bool:
    return _token_matches(supplied, settings.token.encode())


def _needs_token(path: str) -> bool:
    return path.startswith("/api/") or path == "/metrics"


def _rides_cookie(request: web.Request) -> bool:
    """Whether the credentials are ambient (the cookie, or none): no token header, and no
    ``?token=`` that ``request_token`` would take (the cookie wins over the query)."""
    headers = request.headers
    if headers.get(hdrs.AUTHORIZATION, "")[:7].lower() == "bearer " or "X-Hive-Token" in headers:
        return False
    return TOKEN_COOKIE in request.cookies or "token" not in request.query


def _local_port(request: web.Request) -> int | None:
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    return sockname[1] if isinstance(sockname, tuple) else None


class Guard:
    """This module's checks for one app (see the module docstring)."""

    def __init__(self, settings: Settings, counter: RequestCounter | None = None):
        self.counter = counter  # each final answer, by route and status (web/metrics.py)
        self.hosts = allowed_hosts(settings)
        self.origins = frozenset(settings.allowed_origins)
        self.token = settings.token.encode()
        self.auth_required = settings.auth_required
        self._bearer = _bearer(settings.token)  # the Authorization value _reads_with_token takes
        self._good_hosts: set[str] = set()

    def guarded(self, defs: Iterable[web.AbstractRouteDef]) -> list[web.RouteDef]:
        """``defs`` with each handler behind ``wrap``."""
        out = []
        for route in defs:
            if not isinstance(route, web.RouteDef):
                raise TypeError(f"only handler routes can be guarded: {route!r}")
            out.append(web.RouteDef(route.method, route.path, self.wrap(route.handler),
                                    route.kwargs))
        return out

    def wrap(self, handler: Handler) -> Handler:
        """``handler`` behind the checks, the error mapping and the count of its answer.
        Each route's handler is wrapped when it is added (and ``web/unmatched.py`` takes what
        no route does): an aiohttp middleware would do the same with a layer more on every
        request, about a sixth of a session GET's server CPU (docs/benchmarks.md)."""

        counter = self.counter
        label: list[str] = []  # the route's, read from its first request (one route a wrapper)

        @functools.wraps(handler)
        async def guarded(request: web.Request) -> web.StreamResponse:
            try:
                if (self._reads_with_token(request) or request.path.startswith(HOOKS)
                        or self._admit(request)):
                    response = await handler(request)
                else:
                    response = self._preflight(request)
            except Exception as exc:  # the request boundary (web/errors.py)
                if isinstance(exc, SessionNotLive) and keys.REDIS_NODE in request.app:
                    exc = await _elsewhere(request, exc)
                response = error_answer(request, exc)
            if counter is not None:
                if not label:
                    label.append(counter.label(request))
                counter.add(label[0], request.method, response.status)
            if hdrs.ORIGIN in request.headers and not response.prepared:  # a stream did it
                self.add_cors(request, response)
            return response

        return guarded

    def _reads_with_token(self, request: web.Request) -> bool:
        """A GET or HEAD whose ``Host`` was found allowed before and whose ``Authorization`` is
        ``Bearer <token>`` exactly (or no token is required): ``_admit`` would pass it, so it
        is not asked. False sends the request through the full checks."""
        if request.method not in READS:
            return False
        headers = request.headers
        if headers.get(hdrs.HOST) not in self._good_hosts:
            return False
        if not self.auth_required:
            return True
        auth, bearer = headers.get(hdrs.AUTHORIZATION), self._bearer
        # compare_digest takes ASCII strings only; anything else goes the full way
        return (auth is not None and bearer is not None and auth.isascii()
                and hmac.compare_digest(auth, bearer))

    def _admit(self, request: web.Request) -> bool:
        """Raise for a refused request; False for a CORS preflight to answer here."""
        if not self._host_ok(request.host):
            raise HostNotAllowed()
        method = request.method
        if method == "OPTIONS" and hdrs.ACCESS_CONTROL_REQUEST_METHOD in request.headers:
            return False
        if method in STATE_CHANGING and _rides_cookie(request):
            self._check_origin(request)
        if (self.auth_required and _needs_token(request.path)
                and not _token_matches(request_token(request), self.token)):
            raise Unauthorized("missing or invalid token")
        return True

    def _host_ok(self, host: str) -> bool:
        if host in self._good_hosts:
            return True
        if _host_name(host) not in self.hosts:
            return False
        if len(self._good_hosts) < HOST_CACHE_SIZE:
            self._good_hosts.add(host)
        return True

    def _check_origin(self, request: web.Request) -> None:
        """A state-changing request riding the cookie comes from our own or an allowed
        origin."""
        origin = request.headers.get("Origin")
        if origin is None and TOKEN_COOKIE in request.cookies:
            raise OriginNotAllowed("a request using the cookie must carry Origin")
        if origin is not None and not self.origin_allowed(request, origin):
            raise OriginNotAllowed("Origin not allowed")

    def origin_allowed(self, request: web.Request, origin: str) -> bool:
        """``origin`` is listed in ``allowed_origins`` or is this server's own origin."""
        return origin in self.origins or self._own_origin(request, origin)

    def _own_origin(self, request: web.Request, origin: str) -> bool:
        """``http://<allowed host>[:<port this connection came in on>]``, exactly as a browser
        writes it (the port from the socket, not from the Host header)."""
        try:
            parts = urlsplit(origin)
            port = 80 if parts.port is None else parts.port
        except ValueError:
            return False
        host = parts.hostname or ""
        if parts.scheme != "http" or host not in self.hosts:
            return False
        netloc = f"[{host}]" if ":" in host else host
        canonical = f"http://{netloc}" if port == 80 else f"http://{netloc}:{port}"
        return origin == canonical and port == _local_port(request)

    def _preflight(self, request: web.Request) -> web.Response:
        """Answer an ``OPTIONS`` preflight from an allowed origin (its ACAO is added by
        ``add_cors`` like every response); refuse any other."""
        if not self.origin_allowed(request, request.headers.get("Origin", "")):
            raise OriginNotAllowed("CORS preflight from an origin not allowed")
        return web.Response(status=204, headers=PREFLIGHT_HEADERS)

    def add_cors(self, request: web.Request, response: web.StreamResponse) -> None:
        """A response to an allowed origin (errors too) says so, so the page can read it:
        ``wrap`` adds it to what a handler returns; a handler that streams (prepares its own
        response) calls it first. (An ``on_response_prepare`` hook would cost every request a
        coroutine or two, about 4 µs of a session GET.)"""
        origin = request.headers.get(hdrs.ORIGIN)
        if (origin is None or request.path.startswith(HOOKS)
                or not self.origin_allowed(request, origin)):
            return
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Credentials"] = "true"
        if "Origin" not in response.headers.getall("Vary", ()):
            response.headers.add("Vary", "Origin")


def _bearer(token: str) -> str | None:
    """``Bearer <token>``, or None when ``request_token`` would not read the token back from
    it (spaces around it are stripped) or it is not ASCII (``compare_digest`` refuses it)."""
    return f"Bearer {token}" if token.isascii() and token == token.strip() else None


async def _elsewhere(request: web.Request, exc: SessionNotLive) -> Exception:
    """With ``--redis``: a session that is not live here may be run by another node: then
    409 ``session_elsewhere`` naming it, instead of 404 ``session_not_live``."""
    session_id = request.match_info.get("session_id")
    if session_id is None:
        return exc
    try:
        owner = await request.app[keys.SESSIONS].owner_elsewhere(session_id)
    except Exception:  # Redis unreachable: the original answer stands
        return exc
    return exc if owner is None else SessionElsewhere(session_id, owner)
