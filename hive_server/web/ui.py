"""``--ui-dir``: a built single-page app served from ``/`` on the API's own origin.

- A file under the folder is served as is, with its content type. Files under ``assets/``
  (Vite's content-hashed output) are cached for a year; everything else, ``index.html``
  first, is ``no-cache`` so a rebuilt UI is picked up on the next load.
- Any other GET path outside ``/api`` and ``/hooks`` answers ``index.html``: the app routes it
  (``/queen/hive_keeper``, ``/colony/x``). ``/api/*`` and ``/hooks/*`` never reach this module.
- ``?token=`` on any page sets the ``hive_token`` cookie and redirects (303) to the same page
  without it, so the token leaves the address bar and the history.
- With auth on, every page **and asset** needs the token like the API does (cookie, header
  or query); without it a short HTML page says to open the URL printed at start-up (401).
  The assets hold no secret, but one rule for the whole origin leaves nothing to reason
  about, and the browser sends the cookie with them anyway.
- Nothing outside the folder is served: the path is resolved (symlinks followed) and must
  stay under the folder; dot-files and dot-folders are never served.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote, urlencode

from aiohttp import web

from hive_server import keys
from hive_server.web.security import TOKEN_COOKIE, request_token, token_ok

# Every path except /api, /api/..., /hooks, /hooks/... (those keep their JSON 404/405).
OUTSIDE_API = r"(?!(?:api|hooks)(?:/|$)).*"
IMMUTABLE = "public, max-age=31536000, immutable"
NO_CACHE = "no-cache"
# Types Python's table lacks or gets old (the fonts of a Vite build, source maps).
CONTENT_TYPES = {".js": "text/javascript", ".mjs": "text/javascript", ".woff2": "font/woff2",
                 ".woff": "font/woff", ".ttf": "font/ttf", ".otf": "font/otf",
                 ".map": "application/json"}
LOGIN_PAGE = """<!doctype html>
<meta charset="utf-8"><title>hive_server: token needed</title>
<p>This page needs the server's token.
Open the URL printed at start-up by <code>hive-server</code> (<code>http://.../?token=...</code>);
it is also in <code>$HIVE_HOME/server.json</code>.</p>
"""


def ui_routes(root: Path, headers: Mapping[str, str] | None = None) -> list[web.RouteDef]:
    """The route serving the app built in ``root`` (resolved, holding ``index.html``);
    ``headers`` are added to every answer (the built-in console's CSP)."""
    return [web.get("/{path:" + OUTSIDE_API + "}", UiFiles(root, headers).page)]


class UiFiles:
    """The files of one built UI."""

    def __init__(self, root: Path, headers: Mapping[str, str] | None = None) -> None:
        self.root = root
        self.index = root / "index.html"
        self.headers = dict(headers or {})

    async def page(self, request: web.Request) -> web.StreamResponse:
        response = await self._answer(request)
        response.headers.update(self.headers)
        return response

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        settings = request.app[keys.SETTINGS]
        if "token" in request.query:
            return _landing(request)
        if settings.auth_required and not token_ok(settings, request_token(request)):
            return _login_page()
        path = request.match_info["path"]
        found = await asyncio.to_thread(locate, self.root, path)
        if found is None:
            return web.FileResponse(self.index, headers={"Cache-Control": NO_CACHE,
                                                         "Content-Type": "text/html"})
        return web.FileResponse(found, headers=_file_headers(path, found))


def locate(root: Path, path: str) -> Path | None:
    """The regular file ``path`` names under ``root``; None when there is none, when it is a
    dot-file, or when it would leave ``root`` (``..``, a symlink out)."""
    parts = [part for part in path.split("/") if part]
    if not parts or any(part.startswith(".") for part in parts):
        return None
    try:
        found = root.joinpath(*parts).resolve(strict=True)
        inside = found.is_relative_to(root) and found.is_file()
    except (OSError, ValueError, RuntimeError):  # missing, NUL byte, too long, a link loop
        return None
    return found if inside else None


def _file_headers(path: str, found: Path) -> dict[str, str]:
    hashed = path.lstrip("/").startswith("assets/")  # the URL is what a browser caches
    headers = {"Cache-Control": IMMUTABLE if hashed else NO_CACHE}
    content_type = CONTENT_TYPES.get(found.suffix.lower())
    if content_type is not None:
        headers["Content-Type"] = content_type
    return headers


def _landing(request: web.Request) -> web.Response:
    """``?token=``: the cookie (when the token is right), then the same page without it."""
    settings = request.app[keys.SETTINGS]
    supplied = request.query["token"]
    if settings.auth_required and not token_ok(settings, supplied):
        return _login_page()
    rest = [(k, v) for k, v in request.query.items() if k != "token"]
    response = web.Response(status=303, headers={"Location": _same_site(request.path, rest),
                                                 "Cache-Control": "no-store"})
    if token_ok(settings, supplied):
        response.set_cookie(TOKEN_COOKIE, supplied, httponly=True, samesite="Strict")
    return response


def _same_site(path: str, query: list[tuple[str, str]]) -> str:
    """A Location on this origin: one leading slash and no backslash, so ``//evil`` or
    ``/\\evil`` cannot turn into another host."""
    location = "/" + quote(path.lstrip("/"), safe="/:@!$&'()*+,;=-._~")
    return f"{location}?{urlencode(query)}" if query else location


def _login_page() -> web.Response:
    return web.Response(status=401, text=LOGIN_PAGE, content_type="text/html",
                        headers={"Cache-Control": "no-store"})
