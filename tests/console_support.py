"""Headless Chromium (Debian's, never a downloaded one) driving the built-in console through
Python ``playwright``, and the guards every console test keeps: no request leaves loopback,
no error on the page."""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from playwright.async_api import Browser, ConsoleMessage, Page, Request, Route

# playwright is imported by ``launcher()``, not here: every pytest worker collects the browser
# test's module, and one runs it
HAS_PLAYWRIGHT = importlib.util.find_spec("playwright") is not None

LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
LOCAL_SCHEMES = {"blob", "data", "about"}


def chromium_path() -> str | None:
    """``HIVE_CHROMIUM``, else Debian's ``chromium`` on PATH, else /usr/bin/chromium."""
    wanted = os.environ.get("HIVE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    return wanted if Path(wanted).is_file() and os.access(wanted, os.X_OK) else None


def skip_reason() -> str | None:
    """Why the browser tests cannot run here (they are skipped, never passed, then)."""
    if not HAS_PLAYWRIGHT:
        return ("Python playwright is not installed: ./scripts/setup installs it with the dev "
                "dependencies")
    if chromium_path() is None:
        return ("Chromium is not installed: `apt-get install chromium` (./scripts/setup does "
                "it when run as root), or set HIVE_CHROMIUM to a Chromium binary")
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def loopback(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in LOCAL_SCHEMES or (parts.hostname or "") in LOOPBACK


@dataclass
class Guard:
    """What the page did that it must not: requests off loopback, errors."""

    outside: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    tolerated: list[str] = field(default_factory=list)
    server_down: bool = False  # while the test has stopped the server on purpose

    async def on_outside(self, route: Route) -> None:
        self.outside.append(route.request.url)
        await route.abort()

    def on_request(self, request: Request) -> None:
        if not loopback(request.url):
            self.outside.append(request.url)

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type not in ("error", "assert"):
            return
        text = message.text
        refused = "ERR_CONNECTION_REFUSED" in text or "ERR_EMPTY_RESPONSE" in text
        if self.server_down and refused:
            self.tolerated.append(text)  # the page probing a server the test stopped
        else:
            where = message.location.get("url", "")
            self.errors.append(f"console {message.type}: {text} ({where})")

    def on_page_error(self, error: Exception) -> None:
        self.errors.append(f"page error: {error}")


async def open_page(browser: Browser, guard: Guard, width: int = 1280,
                    height: int = 800) -> Page:
    context = await browser.new_context(viewport={"width": width, "height": height},
                                        accept_downloads=True)
    await context.route(lambda url: not loopback(url), guard.on_outside)
    page = await context.new_page()
    page.on("request", guard.on_request)
    page.on("console", guard.on_console)
    page.on("pageerror", guard.on_page_error)
    page.set_default_timeout(10_000)
    return page


def launcher():
    """``async with launcher() as p: browser = await launch(p)``."""
    from playwright.async_api import async_playwright

    return async_playwright()


async def launch(playwright) -> Browser:
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    return await playwright.chromium.launch(executable_path=chromium_path(), headless=True)

