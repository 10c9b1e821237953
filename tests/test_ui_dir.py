"""``--ui-dir``: a built single-page app served from ``/`` on the API's origin, behind the
same token, never anything outside its folder."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from hive_server.cli import main
from hive_server.settings import SettingsError, load_settings
from tests.conftest import TOKEN, make_settings

INDEX = "<!doctype html><title>hive ui</title><div id=root></div>"
SECRET = "TOP-SECRET-OUTSIDE-THE-UI"
TOKEN_HEADER = {"X-Hive-Token": TOKEN}


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    """A Vite-like build, with a secret beside it and links that lead out of it."""
    root = tmp_path / "dist"
    (root / "assets").mkdir(parents=True)
    (root / "logos").mkdir()
    (root / "index.html").write_text(INDEX)
    (root / "assets" / "index-3f2a1b.js").write_text("console.log('app')")
    (root / "assets" / "index-3f2a1b.css").write_text("body{}")
    (root / "assets" / "inter-9c1d.woff2").write_bytes(b"wOF2")
    (root / "favicon.png").write_bytes(b"\x89PNG\r\n")
    (root / "logos" / "hive.svg").write_text("<svg/>")
    (root / ".env").write_text(SECRET)
    (tmp_path / "secret.txt").write_text(SECRET)
    (root / "leak.txt").symlink_to(tmp_path / "secret.txt")
    (root / "outside").symlink_to(tmp_path)
    (root / "alias.js").symlink_to(root / "assets" / "index-3f2a1b.js")  # a link inside is fine
    return root


@pytest.fixture
async def ui_client(make_client, tmp_path, dist):
    return await make_client(make_settings(tmp_path, ui_dir=dist), headers=TOKEN_HEADER)


@pytest.mark.parametrize(("path", "content_type", "cache"), [
    ("/assets/index-3f2a1b.js", "text/javascript", "immutable"),
    ("/assets/index-3f2a1b.css", "text/css", "immutable"),
    ("/assets/inter-9c1d.woff2", "font/woff2", "immutable"),
    ("/favicon.png", "image/png", "no-cache"),
    ("/logos/hive.svg", "image/svg+xml", "no-cache"),
    ("/alias.js", "text/javascript", "no-cache"),
])
async def test_files_are_served_with_their_type(ui_client, dist, path, content_type, cache):
    resp = await ui_client.get(path)
    assert resp.status == 200
    assert resp.content_type == content_type
    assert cache in resp.headers["Cache-Control"]
    real = (dist / path.lstrip("/")).resolve()
    assert await resp.read() == real.read_bytes()


@pytest.mark.parametrize("path", ["/", "/index.html", "/queen/hive_keeper", "/colony/x",
                                  "/colony/x/session/abc?tab=2", "/apix", "/hooksy/a"])
async def test_pages_get_index_html(ui_client, path):
    resp = await ui_client.get(path)
    assert resp.status == 200
    assert resp.content_type == "text/html"
    assert resp.headers["Cache-Control"] == "no-cache"
    assert await resp.text() == INDEX


async def test_token_in_the_url_sets_the_cookie_and_leaves_the_address_bar(make_client,
                                                                           tmp_path, dist):
    client = await make_client(make_settings(tmp_path, ui_dir=dist), headers={})
    resp = await client.get(f"/?token={TOKEN}", allow_redirects=False)
    assert resp.status == 303
    assert resp.headers["Location"] == "/"
    cookie = resp.cookies["hive_token"]
    assert cookie.value == TOKEN and cookie["httponly"] and cookie["samesite"] == "Strict"
    page = await client.get("/")  # the client's jar now holds the cookie, like a browser
    assert page.status == 200 and await page.text() == INDEX
    assert (await client.get("/assets/index-3f2a1b.js")).status == 200
    assert (await client.get("/api/health")).status == 200


async def raw_get(client, target: str) -> tuple[int, str, str]:
    """Send ``target`` byte for byte (aiohttp's client would normalise ``..`` away)."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    try:
        writer.write(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Hive-Token: {TOKEN}\r\n"
                     "Connection: close\r\n\r\n".encode())
        async with asyncio.timeout(5):
            raw = await reader.read()
    finally:
        writer.close()
    head, _, body = raw.decode("latin-1").partition("\r\n\r\n")
    return int(head.split()[1]), head, body


@pytest.mark.parametrize(("url", "location"), [
    (f"/colony/x?token={TOKEN}&tab=2", "/colony/x?tab=2"),
    (f"//evil.example/x?token={TOKEN}", "/evil.example/x"),
    (f"/%5Cevil.example?token={TOKEN}", "/%5Cevil.example"),
    (f"/\\evil.example?token={TOKEN}", "/%5Cevil.example"),
])
async def test_the_redirect_keeps_the_page_and_stays_on_this_origin(ui_client, url, location):
    status, head, _ = await raw_get(ui_client, url)
    assert status == 303
    assert f"\r\nLocation: {location}\r\n" in head


@pytest.mark.parametrize("path", ["/", "/colony/x", "/assets/index-3f2a1b.js", "/favicon.png",
                                  "/?token=wrong", f"/?token={TOKEN[:-1]}"])
async def test_without_the_token_pages_and_assets_are_401(make_client, tmp_path, dist, path):
    client = await make_client(make_settings(tmp_path, ui_dir=dist), headers={})
    resp = await client.get(path, allow_redirects=False)
    assert resp.status == 401
    assert resp.content_type == "text/html"
    assert "printed at start-up" in await resp.text()
    assert "hive_token" not in resp.cookies


async def test_no_auth_mode_serves_without_a_token(make_client, tmp_path, dist):
    client = await make_client(make_settings(tmp_path, ui_dir=dist, no_auth=True), headers={})
    assert await (await client.get("/colony/x")).text() == INDEX
    assert (await client.get("/?token=x", allow_redirects=False)).headers["Location"] == "/"


async def test_the_host_check_applies_to_the_ui(ui_client):
    resp = await ui_client.get("/", headers={"Host": "evil.example"})
    assert resp.status == 403
    assert (await resp.json())["code"] == "host_not_allowed"


@pytest.mark.parametrize("target", [
    "/../secret.txt", "/assets/../../secret.txt", "/%2e%2e/secret.txt", "/%2E%2E/%2e%2e/secret.txt",
    "/..%2fsecret.txt", "/assets/..%2F..%2Fsecret.txt", "/%2Fetc%2Fpasswd", "//etc/passwd",
    "/leak.txt", "/outside/secret.txt", "/.env", "/assets/%00.js", "/" + "a/" * 3000,
])
async def test_traversal_never_leaves_the_folder(ui_client, target):
    status, _, body = await raw_get(ui_client, target)
    assert SECRET not in body and "root:" not in body
    assert (status, body) == (200, INDEX)


async def test_api_and_hooks_answer_as_without_a_ui(ui_client, make_client, tmp_path):
    plain = await make_client(make_settings(tmp_path / "plain"))
    for method, path in (("GET", "/api/unknown"), ("GET", "/api"), ("GET", "/api/"),
                         ("GET", "/hooks/a/b"), ("GET", "/hooks/x"), ("PUT", "/api/health"),
                         ("POST", "/hooks/nope/nope")):
        with_ui = await ui_client.request(method, path)
        without = await plain.request(method, path)
        assert with_ui.status == without.status, path
        assert with_ui.status in (401, 404, 405), path
        assert with_ui.content_type == "application/json", path
        assert await with_ui.json() == await without.json(), path
    resp = await ui_client.get("/api/unknown")
    assert resp.status == 404 and (await resp.json())["code"] == "not_found"


def test_ui_dir_is_validated(tmp_path, dist):
    assert make_settings(tmp_path, ui_dir=dist).ui_dir == dist.resolve()
    (tmp_path / "empty").mkdir()
    (tmp_path / "file").write_text("x")
    for bad in (tmp_path / "missing", tmp_path / "file", tmp_path / "empty"):
        with pytest.raises(ValidationError):
            make_settings(tmp_path, ui_dir=bad)


def test_ui_dir_from_config_and_env(tmp_path, dist):
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text(f'ui_dir = "{dist}"\n')
    assert load_settings({"home": str(home)}, {}).ui_dir == dist
    env = {"HIVE_HOME": str(home), "HIVE_UI_DIR": str(tmp_path / "missing")}
    with pytest.raises(SettingsError, match=r"HIVE_UI_DIR: ui_dir = .*is not a directory"):
        load_settings({}, env)


@pytest.mark.parametrize("make_bad", ["missing", "file", "no_index"])
def test_cli_bad_ui_dir_exits_2_with_one_line(tmp_path, capsys, monkeypatch, make_bad):
    for name in os.environ:  # the shell's HIVE_* must not decide this
        if name.startswith("HIVE_"):
            monkeypatch.delenv(name)
    bad = tmp_path / make_bad
    if make_bad == "file":
        bad.write_text("x")
    elif make_bad == "no_index":
        bad.mkdir()
    code = main(["serve", "--home", str(tmp_path / "home"), "--ui-dir", str(bad)])
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "ui_dir" in err and str(bad) in err
    assert not (tmp_path / "home" / "server.json").exists()
