"""The Guard's short way for a GET or HEAD with ``Authorization: Bearer <token>`` from a Host
already found allowed (web/security.py ``_reads_with_token``) answers as the full checks do:
each request below follows a first good one, so its Host is remembered when it comes."""

from __future__ import annotations

import pytest

from tests.conftest import TOKEN, make_settings


@pytest.fixture
async def warm(make_client, tmp_path):
    """A client without default headers whose Host the server has already allowed."""
    client = await make_client(make_settings(tmp_path), headers={})
    assert (await client.get("/api/health", headers={"Authorization": f"Bearer {TOKEN}"})
            ).status == 200
    return client


@pytest.mark.parametrize(("authorization", "status"), [
    (f"Bearer {TOKEN}", 200),
    (f"bearer {TOKEN}", 200),  # the scheme in any case, as the full checks read it
    (f"BEARER  {TOKEN}", 200),  # spaces around the token are stripped
    ("Bearer wrong", 401),
    (f"Bearer {TOKEN}0", 401),
    (f"Bearer {TOKEN[:-1]}", 401),
    (f"Basic {TOKEN}", 401),
    ("", 401),
])
@pytest.mark.parametrize("method", ["GET", "HEAD"])
async def test_authorization_answers_as_the_full_checks(warm, authorization, status, method):
    resp = await warm.request(method, "/api/health", headers={"Authorization": authorization})
    assert resp.status == status


async def test_a_wrong_bearer_still_falls_back_to_the_other_ways(warm):
    resp = await warm.get("/api/health", headers={"Authorization": "Bearer wrong",
                                                  "X-Hive-Token": TOKEN})
    assert resp.status == 401  # a bearer header is the token presented, as before
    resp = await warm.get("/api/health", headers={"Authorization": "Basic x",
                                                  "X-Hive-Token": TOKEN})
    assert resp.status == 200


async def test_a_host_not_allowed_is_refused_after_an_allowed_one(warm):
    resp = await warm.get("/api/health", headers={"Authorization": f"Bearer {TOKEN}",
                                                  "Host": "evil.example:8787"})
    assert resp.status == 403
    assert (await resp.json())["code"] == "host_not_allowed"


async def test_state_changing_requests_keep_the_origin_check(warm):
    headers = {"Authorization": f"Bearer {TOKEN}", "Cookie": f"hive_token={TOKEN}",
               "Origin": "http://evil.example"}
    # a bearer token needs no Origin check (tests/test_origins.py): the POST is let in
    assert (await warm.post("/api/sessions", json={}, headers=headers)).status == 201
    resp = await warm.post("/api/sessions", json={}, headers={
        "Cookie": f"hive_token={TOKEN}", "Origin": "http://evil.example"})
    assert resp.status == 403


async def test_a_token_with_a_leading_space_is_never_read_from_a_bearer(make_client, tmp_path):
    token = " leading-space-token-0123456789"
    client = await make_client(make_settings(tmp_path, token=token), headers={})
    for _ in range(2):  # the second comes from a remembered Host
        resp = await client.get("/api/health", headers={"Authorization": f"Bearer {token}"})
        assert resp.status == 401  # the full checks strip the token read: it never matches
    assert (await client.get("/api/health", params={"token": token})).status == 200
