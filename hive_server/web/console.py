"""The built-in console: ``hive_server/static/`` served at ``/`` when no ``--ui-dir`` is given.

The same serving as ``--ui-dir`` (``ui.py``: ``?token=`` sets the cookie and redirects, the
token rule, nothing outside the folder), plus headers for a page that runs only its own code:
a CSP allowing nothing but ``'self'`` (no inline script or style, no other origin), no MIME
sniffing, no referrer.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from hive_server.web.ui import ui_routes

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")
CONSOLE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def console_routes() -> list[web.RouteDef]:
    """``/`` and every other page outside ``/api`` and ``/hooks``: the console."""
    return ui_routes(STATIC_DIR, CONSOLE_HEADERS)
