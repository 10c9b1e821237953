"""Local-API security and input validation: every bad request gets a JSON 4xx, never a 5xx."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import TOKEN, create_session, make_settings


async def test_token_required_on_api(client):
    resp = await client.get("/api/health", headers={"Authorization": ""})
    assert resp.status == 401
    assert (await resp.json())["code"] == "unauthorized"
    resp = await client.get("/api/health", headers={"Authorization": "Bearer wrong"})
    assert resp.status == 401
    assert (await resp.json())["code"] == "unauthorized"


@pytest.mark.parametrize("how", ["bearer", "header", "query", "cookie"])
async def test_token_accepted_four_ways(make_client, tmp_path, how):
    client = await make_client(make_settings(tmp_path), headers={})
    headers: dict[str, str] = {}
    url = "/api/health"
    if how == "bearer":
        headers["Authorization"] = f"Bearer {TOKEN}"
    elif how == "header":
        headers["X-Hive-Token"] = TOKEN
    elif how == "query":
        url += f"?token={TOKEN}"
    else:
        landing = await client.get(f"/?token={TOKEN}")
        assert landing.status == 200
    resp = await client.get(url, headers=headers)
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["status"] == "ok" and body["provider"] == "offline"


NEAR_MISSES = {"empty": "", "prefix": TOKEN[:-1], "longer": TOKEN + "0", "suffix": TOKEN[1:],
               "upper": TOKEN.upper(), "twice": TOKEN * 2}


def carrying(how: str, token: str) -> tuple[str, dict[str, str]]:
    """The URL and headers that present ``token`` the way ``how`` names."""
    if how == "query":
        return f"/api/health?token={token}", {}
    header = {"bearer": ("Authorization", f"Bearer {token}"), "header": ("X-Hive-Token", token),
              "cookie": ("Cookie", f"hive_token={token}")}[how]
    return "/api/health", dict([header])


@pytest.mark.parametrize("how", ["bearer", "header", "query", "cookie"])
async def test_a_token_that_is_almost_right_is_401_every_way(make_client, tmp_path, how):
    client = await make_client(make_settings(tmp_path), headers={})
    for name, token in NEAR_MISSES.items():
        url, headers = carrying(how, token)
        resp = await client.get(url, headers=headers)
        assert resp.status == 401, name
        assert (await resp.json())["code"] == "unauthorized", name
    url, headers = carrying(how, TOKEN)  # the same way with the real token gets in
    assert (await client.get(url, headers=headers)).status == 200


async def test_no_auth_mode_skips_token(make_client, tmp_path):
    client = await make_client(make_settings(tmp_path, no_auth=True), headers={})
    assert (await client.get("/api/health")).status == 200


async def test_foreign_host_header_is_refused(client):
    resp = await client.get("/api/health", headers={"Host": "evil.example:8787"})
    assert resp.status == 403
    assert (await resp.json())["code"] == "host_not_allowed"
    ok = await client.get("/api/health", headers={"Host": "localhost:8787"})
    assert ok.status == 200


COOKIE = {"Cookie": f"hive_token={TOKEN}"}


async def test_foreign_origin_refused_on_state_change_only(make_client, tmp_path):
    # The Origin rule applies to requests riding the cookie (header tokens: tests/test_origins.py)
    client = await make_client(make_settings(tmp_path), headers=COOKIE)
    evil = {"Origin": "http://evil.example"}
    resp = await client.post("/api/sessions", json={}, headers=evil)
    assert resp.status == 403
    assert (await resp.json())["code"] == "origin_not_allowed"
    assert (await client.get("/api/sessions", headers=evil)).status == 200
    own = {"Origin": f"http://localhost:{client.port}"}
    assert (await client.post("/api/sessions", json={}, headers=own)).status == 201
    assert (await client.post("/api/sessions", json={}, headers={"Origin": "null"})).status == 403


async def test_unknown_api_path_is_json_404(client):
    resp = await client.get("/api/does/not/exist")
    assert resp.status == 404
    assert resp.content_type == "application/json"
    assert (await resp.json())["code"] == "not_found"
    resp = await client.put("/api/health")
    assert resp.status == 405
    assert resp.content_type == "application/json"


async def test_body_errors(client):
    resp = await client.post("/api/sessions", data=b"session_id=x",
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert resp.status == 415
    resp = await client.post("/api/sessions", data=b"{not json",
                             headers={"Content-Type": "application/json"})
    assert resp.status == 400
    assert (await resp.json())["code"] == "malformed_json"
    resp = await client.post("/api/sessions", json={"session_id": 5})
    assert resp.status == 422
    resp = await client.post("/api/sessions", json={"no_such_field": 1})
    assert resp.status == 422
    assert "details" in await resp.json()
    resp = await client.post("/api/sessions", json=[1, 2])
    assert resp.status == 422
    big = b'{"session_id": "' + b"a" * (2 * 1024 * 1024) + b'"}'
    resp = await client.post("/api/sessions", data=big,
                             headers={"Content-Type": "application/json"})
    assert resp.status == 413
    sessions = await (await client.get("/api/sessions/history")).json()
    assert sessions["sessions"] == []


async def test_bad_query_values_are_400(client):
    await create_session(client, session_id="q")
    for url, code in (("/api/sessions/q/events/history?limit=abc", "invalid_query"),
                      ("/api/sessions/q/events/history?limit=10001", "invalid_query"),
                      ("/api/sessions/q/events/history?before_seq=-1", "invalid_query"),
                      ("/api/sessions/q/events/history?before_seq=0", "invalid_query"),
                      ("/api/sessions/q/events?after_seq=x", "invalid_query"),
                      ("/api/sessions/q/events?after_seq=-5", "invalid_query"),
                      ("/api/sessions/q/events?types=nonsense", "invalid_types")):
        resp = await client.get(url)
        assert resp.status == 400, url
        assert (await resp.json())["code"] == code, url
    for value in ("abc", "-1"):
        resp = await client.get("/api/sessions/q/events", headers={"Last-Event-ID": value})
        assert resp.status == 400
        assert (await resp.json())["code"] == "invalid_last_event_id"


async def raw_status(client, head: bytes) -> int:
    """Send hand-written request head bytes (aiohttp's client would not send these)."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    try:
        writer.write(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                     + head + b"\r\n")
        status_line = await asyncio.wait_for(reader.readline(), 5)
    finally:
        writer.close()
    return int(status_line.split()[1])


@pytest.mark.parametrize("head", [
    b"X-Hive-Token: \xff\xfe\r\n",
    b"Authorization: Bearer \xff\r\n",
    b"Cookie: hive_token=\xc3\r\n",
])
async def test_token_that_is_not_utf8_is_401_not_500(client, head):
    assert await raw_status(client, head) == 401


async def test_malformed_origin_is_403_not_500(make_client, tmp_path):
    client = await make_client(make_settings(tmp_path), headers=COOKIE)
    for origin in ("http://[::1", "http://[evil", "//:99999999", "\u00ff",
                   f"http://127.0.0.1:{client.port}/path", f"HTTP://127.0.0.1:{client.port}"):
        resp = await client.post("/api/sessions", json={}, headers={"Origin": origin})
        assert resp.status == 403, origin
        assert (await resp.json())["code"] == "origin_not_allowed"
