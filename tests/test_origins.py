"""Origins (DESIGN §11): a request riding the cookie must come from the server's own origin
(scheme, host and port) or an allowed one; a token in a header needs no Origin; CORS
preflights are answered for allowed origins only."""

from __future__ import annotations

import os

import pytest
from pydantic import ValidationError

from hive_server import keys
from hive_server.cli import main
from hive_server.settings import Settings, load_settings
from tests.conftest import TOKEN, make_settings

COOKIE = {"Cookie": f"hive_token={TOKEN}"}
DEV = "http://localhost:5173"  # a Vite dev server on another port


@pytest.fixture
async def cookie_client(make_client, tmp_path):
    """A browser that opened the start-up URL: it holds the cookie and sends no token header."""
    return await make_client(make_settings(tmp_path, allowed_origins=(DEV,)), headers=COOKIE)


async def post(client, headers: dict[str, str], url: str = "/api/sessions"):
    return await client.post(url, json={}, headers=headers)


async def test_cookie_post_from_another_port_of_localhost_is_403(cookie_client):
    other = cookie_client.port + 1 if cookie_client.port < 65535 else cookie_client.port - 1
    for host in ("localhost", "127.0.0.1"):
        resp = await post(cookie_client, {"Origin": f"http://{host}:{other}"})
        assert resp.status == 403, host
        assert (await resp.json())["code"] == "origin_not_allowed"
    assert (await (await cookie_client.get("/api/sessions")).json())["sessions"] == []


async def test_cookie_post_from_the_own_origin_passes(cookie_client):
    port = cookie_client.port
    for origin in (f"http://127.0.0.1:{port}", f"http://localhost:{port}"):
        resp = await post(cookie_client, {"Origin": origin})
        assert resp.status == 201, origin


async def test_own_origin_port_is_the_socket_port_not_the_host_header(cookie_client):
    spoofed = {"Host": "localhost:9", "Origin": "http://localhost:9"}
    resp = await post(cookie_client, spoofed)
    assert resp.status == 403
    real = {"Host": "localhost:9", "Origin": f"http://localhost:{cookie_client.port}"}
    assert (await post(cookie_client, real)).status == 201


async def test_own_origin_must_be_plain_http(cookie_client):
    port = cookie_client.port
    for origin in (f"https://127.0.0.1:{port}", f"http://evil.example:{port}",
                   f"http://127.0.0.1:{port}/", "null"):
        assert (await post(cookie_client, {"Origin": origin})).status == 403, origin


async def test_cookie_post_without_origin_is_403(cookie_client):
    resp = await post(cookie_client, {})
    assert resp.status == 403
    assert (await resp.json())["code"] == "origin_not_allowed"


async def test_query_token_does_not_lift_the_origin_rule_when_the_cookie_is_used(cookie_client):
    # request_token prefers the cookie over ?token=, so the request still rides the cookie
    resp = await post(cookie_client, {"Origin": "http://evil.example"},
                      url="/api/sessions?token=whatever")
    assert resp.status == 403


@pytest.mark.parametrize("header", [("Authorization", f"Bearer {TOKEN}"),
                                    ("X-Hive-Token", TOKEN)])
async def test_header_token_post_with_a_foreign_origin_passes(make_client, tmp_path, header):
    client = await make_client(make_settings(tmp_path), headers=dict([header]))
    for origin in ("http://evil.example", "http://localhost:1", None):
        headers = {} if origin is None else {"Origin": origin}
        resp = await post(client, headers)
        assert resp.status == 201, origin
        assert "Access-Control-Allow-Origin" not in resp.headers


async def test_query_token_post_needs_no_origin(make_client, tmp_path):
    client = await make_client(make_settings(tmp_path), headers={})
    resp = await post(client, {"Origin": "http://evil.example"}, url=f"/api/sessions?token={TOKEN}")
    assert resp.status == 201


async def test_no_auth_mode_checks_an_origin_when_one_is_sent(make_client, tmp_path):
    client = await make_client(make_settings(tmp_path, no_auth=True), headers={})
    assert (await post(client, {})).status == 201  # curl: no Origin, no cookie
    other = {"Origin": f"http://localhost:{client.port + 1}"}
    assert (await post(client, other)).status == 403


async def test_allowed_origin_passes_and_can_read_the_answer(cookie_client):
    resp = await post(cookie_client, {"Origin": DEV})
    assert resp.status == 201
    assert resp.headers["Access-Control-Allow-Origin"] == DEV
    assert resp.headers["Access-Control-Allow-Credentials"] == "true"
    assert "Origin" in resp.headers.getall("Vary")
    refused = await post(cookie_client, {"Origin": "http://localhost:5174"})
    assert refused.status == 403
    assert "Access-Control-Allow-Origin" not in refused.headers


async def test_errors_to_an_allowed_origin_carry_cors_headers(make_client, tmp_path):
    client = await make_client(make_settings(tmp_path, allowed_origins=(DEV,)), headers={})
    resp = await client.get("/api/health", headers={"Origin": DEV})
    assert resp.status == 401
    assert resp.headers["Access-Control-Allow-Origin"] == DEV


def preflight_headers(origin: str) -> dict[str, str]:
    return {"Origin": origin, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, x-hive-token"}


async def test_preflight_from_an_allowed_origin_is_answered(make_client, tmp_path):
    client = await make_client(make_settings(tmp_path, allowed_origins=(DEV,)), headers={})
    resp = await client.options("/api/sessions", headers=preflight_headers(DEV))
    assert resp.status == 204
    assert resp.headers["Access-Control-Allow-Origin"] == DEV
    assert resp.headers["Access-Control-Allow-Credentials"] == "true"
    assert "POST" in resp.headers["Access-Control-Allow-Methods"]
    allowed = {h.strip().lower() for h in resp.headers["Access-Control-Allow-Headers"].split(",")}
    assert allowed == {"authorization", "x-hive-token", "content-type", "last-event-id"}
    assert int(resp.headers["Access-Control-Max-Age"]) > 0


async def test_preflight_from_any_other_origin_is_403(make_client, tmp_path):
    client = await make_client(make_settings(tmp_path, allowed_origins=(DEV,)), headers={})
    for origin in ("http://evil.example", f"http://localhost:{client.port + 1}", "null"):
        resp = await client.options("/api/sessions", headers=preflight_headers(origin))
        assert resp.status == 403, origin
        assert (await resp.json())["code"] == "origin_not_allowed"
        assert "Access-Control-Allow-Origin" not in resp.headers
    resp = await client.options("/api/sessions", headers={
        **preflight_headers(DEV), "Host": "evil.example"})
    assert resp.status == 403
    assert (await resp.json())["code"] == "host_not_allowed"


@pytest.mark.parametrize(("given", "kept"), [
    ("http://LocalHost:5173", "http://localhost:5173"),
    ("https://hive.example:443", "https://hive.example"),
    ("http://hive.example:80/", "http://hive.example"),
    ("http://[::1]:3000", "http://[::1]:3000"),
])
def test_allowed_origins_are_normalised(tmp_path, given, kept):
    assert make_settings(tmp_path, allowed_origins=(given,)).allowed_origins == (kept,)


@pytest.mark.parametrize("bad", ["localhost:5173", "ftp://x.example", "http://x.example/app",
                                 "http://x.example?q=1", "http://user@x.example", "http://",
                                 "http://x.example:99999", "http://evil example", "*"])
def test_an_invalid_allowed_origin_is_refused(tmp_path, bad):
    with pytest.raises(ValidationError):
        make_settings(tmp_path, allowed_origins=(bad,))


def test_allowed_origins_from_config_and_flags(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text('allowed_origins = ["http://localhost:5173"]\n')
    settings = load_settings({"home": str(home)}, {})
    assert settings.allowed_origins == ("http://localhost:5173",)
    flags = {"home": str(home), "allowed_origins": ["http://a.example", "http://b.example:81"]}
    assert load_settings(flags, {}).allowed_origins == ("http://a.example",
                                                        "http://b.example:81")
    assert Settings(home=home).allowed_origins == ()


def test_cli_bad_allow_origin_exits_2_with_one_line(tmp_path, capsys, monkeypatch):
    for name in os.environ:  # the shell's HIVE_* must not decide this
        if name.startswith("HIVE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HIVE_HOME", str(tmp_path / "home"))
    code = main(["serve", "--allow-origin", "http://localhost:5173",
                 "--allow-origin", "localhost:5173"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "allowed_origins" in err and "localhost:5173" in err


async def test_streams_and_downloads_to_an_allowed_origin_carry_cors_headers(cookie_client):
    """The answers a handler prepares itself (an SSE stream, an export, a workspace file)."""
    created = await post(cookie_client, {"Origin": DEV})
    session_id = (await created.json())["session_id"]
    home = cookie_client.app[keys.SETTINGS].home
    (home / "sessions" / session_id / "workspace" / "notes.txt").write_text("bees\n")
    for url in (f"/api/sessions/{session_id}/events", f"/api/sessions/{session_id}/export",
                f"/api/sessions/{session_id}/files/notes.txt"):
        for origin, allowed in ((DEV, True), ("http://localhost:5174", False)):
            async with cookie_client.get(url, headers={"Origin": origin}) as resp:
                assert resp.status == 200, (url, resp.status)
                assert (resp.headers.get("Access-Control-Allow-Origin") == DEV) is allowed, url
                assert ("Origin" in resp.headers.getall("Vary", ())) is allowed, url
