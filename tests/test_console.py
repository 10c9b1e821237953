"""The built-in console's serving (without ``--ui-dir``): ``/?token=`` sets the cookie and
redirects, every page and file carries the CSP, nosniff and no-referrer headers, the files
hold no inline script or style and name no other origin, the API keeps its JSON errors."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from hive_server.web.console import CSP, STATIC_DIR
from tests.conftest import TOKEN, make_settings

FILES = sorted(p.name for p in STATIC_DIR.iterdir() if p.is_file())


@pytest.fixture
async def anonymous(make_client, tmp_path):
    return await make_client(make_settings(tmp_path), headers={})


def test_the_policy_allows_only_self():
    sources = {word for part in CSP.split(";") for word in part.split()[1:]}
    assert sources == {"'self'", "'none'"}
    assert CSP.startswith("default-src 'self';")


def assert_console_headers(resp) -> None:
    assert resp.headers["Content-Security-Policy"] == CSP
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Referrer-Policy"] == "no-referrer"


async def test_token_url_sets_the_cookie_and_leaves_the_address_bar(anonymous):
    resp = await anonymous.get(f"/?token={TOKEN}", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/"
    cookie = resp.cookies["hive_token"]
    assert cookie.value == TOKEN and cookie["httponly"] and cookie["samesite"] == "Strict"
    assert_console_headers(resp)
    page = await anonymous.get("/")  # the cookie rides along now
    assert page.status == 200 and page.content_type == "text/html"
    assert '<script type="module" src="/app.js">' in await page.text()
    assert_console_headers(page)


async def test_wrong_or_missing_token_gets_the_login_page(anonymous):
    for path in ("/?token=wrong", "/", "/app.js"):
        resp = await anonymous.get(path, allow_redirects=False)
        assert resp.status == 401, path
        assert "hive_token" not in resp.cookies
        assert "URL printed at start-up" in await resp.text()
        assert_console_headers(resp)


@pytest.mark.parametrize("name", FILES)
async def test_every_file_is_served_with_its_type_and_headers(client, name):
    resp = await client.get("/" + name)
    assert resp.status == 200
    want = {".js": "text/javascript", ".css": "text/css", ".html": "text/html",
            ".svg": "image/svg+xml"}[Path(name).suffix]
    assert resp.content_type == want
    assert resp.headers["Cache-Control"] == "no-cache"
    assert_console_headers(resp)
    assert await resp.read() == (STATIC_DIR / name).read_bytes()


async def test_api_and_unknown_pages(client):
    resp = await client.get("/api/nope")
    assert resp.status == 404 and (await resp.json())["code"] == "not_found"
    assert "Content-Security-Policy" not in resp.headers
    page = await client.get("/s/anything")  # the console routes by #hash; any page is it
    assert page.status == 200 and page.content_type == "text/html"


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.seen.append((tag, dict(attrs)))


def test_no_inline_code_and_no_other_origin():
    tags = Tags()
    tags.feed((STATIC_DIR / "index.html").read_text())
    assert all(attrs.get("src") for tag, attrs in tags.seen if tag == "script")
    assert not [tag for tag, _ in tags.seen if tag == "style"]
    assert not [attrs for _, attrs in tags.seen
                if "style" in attrs or any(k.startswith("on") for k in attrs)]
    for name in FILES:
        text = (STATIC_DIR / name).read_text()
        urls = re.findall(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.I)
        assert urls in ([], ["http://www.w3.org"]), (name, urls)  # the SVG namespace only
        assert "innerHTML" not in text and "eval(" not in text, name


def test_every_module_import_names_a_shipped_file():
    for name in FILES:
        if name.endswith(".js"):
            text = (STATIC_DIR / name).read_text()
            for target in re.findall(r'from "\./([^"]+)"', text):
                assert (STATIC_DIR / target).is_file(), (name, target)
