"""Protocol details: 405 with ``Allow``, integer parameters as plain ASCII digits only, empty
session ids refused, a malformed HTTP request logged as one WARNING line."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import pytest

from tests.conftest import create_session, make_settings
from tests.trigger_support import cards, post_trigger, webhook, write_triggers_agent

NOT_PLAIN_DIGITS = ["+5", " 5", "5 ", "5_0", "\u0665", "\uff15", "-0", "0x5", "5.0"]


async def test_a_405_names_the_allowed_methods(client):
    resp = await client.put("/api/sessions")
    assert resp.status == 405
    assert (await resp.json())["code"] == "method_not_allowed"
    assert {"GET", "POST"} <= {m.strip() for m in resp.headers["Allow"].split(",")}
    resp = await client.post("/api/sessions/s/events")
    assert resp.status == 405 and "GET" in resp.headers["Allow"]


async def test_what_no_route_takes_gets_the_checks_then_the_routers_answer(make_client, tmp_path):
    """web/unmatched.py: the last route answers as aiohttp's router would, behind the Guard."""
    dev = "http://localhost:5173"
    client = await make_client(make_settings(tmp_path, allowed_origins=(dev,)))
    resp = await client.get("/api/nope")
    assert (resp.status, await resp.json()) == (404, {"error": "Not Found", "code": "not_found"})
    resp = await client.get("/api/nope", headers={"Authorization": "Bearer wrong"})
    assert resp.status == 401  # the checks come first
    resp = await client.post("/", headers={"Origin": dev})
    assert (resp.status, resp.headers["Allow"]) == (405, "GET,HEAD")
    assert await resp.text() == "405: Method Not Allowed"  # a page, not the API: aiohttp's
    resp = await client.options("/api/sessions", headers={
        "Origin": dev, "Access-Control-Request-Method": "POST"})
    assert (resp.status, resp.headers["Access-Control-Allow-Origin"]) == (204, dev)


@pytest.mark.parametrize("raw", NOT_PLAIN_DIGITS)
async def test_integer_query_parameters_take_plain_ascii_digits_only(client, api, raw):
    await api.create_session(session_id="s")
    for path, name in [("/api/sessions/s/events", "after_seq"),
                       ("/api/sessions/s/events/history", "before_seq"),
                       ("/api/sessions/s/events/history", "limit")]:
        resp = await client.get(path, params={name: raw})
        assert resp.status == 400, (path, name, raw, resp.status)
        assert (await resp.json())["code"] == "invalid_query"


@pytest.mark.parametrize("raw", ["+5", "5_0", "\u0665", "0x5"])
async def test_last_event_id_takes_plain_ascii_digits_only(client, api, raw):
    await api.create_session(session_id="s")
    resp = await client.get("/api/sessions/s/events", headers={"Last-Event-ID": raw})
    assert resp.status == 400
    assert (await resp.json())["code"] == "invalid_last_event_id"


async def test_plain_digits_still_resume(client, api):
    await api.create_session(session_id="s")
    resp = await client.get("/api/sessions/s/events/history", params={"before_seq": "0005"})
    assert resp.status == 200
    resp = await client.get("/api/sessions/s/events", headers={"Last-Event-ID": "1"})
    assert resp.status == 200
    resp.close()


@pytest.mark.parametrize("body", [{"session_id": ""}, {"queen_resume_from": ""},
                                  {"session_id": "", "queen_resume_from": ""}])
async def test_an_empty_session_id_is_400_never_a_new_session(client, settings, body):
    resp = await client.post("/api/sessions", json=body)
    assert resp.status == 400
    assert (await resp.json())["code"] == "invalid_session_id"
    sessions = settings.home / "sessions"
    assert not sessions.exists() or list(sessions.iterdir()) == []


async def test_selecting_an_empty_session_id_of_a_queen_is_400(client, settings):
    resp = await client.post("/api/queen/default/session/select", json={"session_id": ""})
    assert resp.status == 400
    assert (await resp.json())["code"] == "invalid_session_id"


async def test_a_malformed_request_is_one_warning_line(client, caplog):
    caplog.set_level(logging.DEBUG, logger="aiohttp.server")
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(b"GET /api/health HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n")
    await writer.drain()
    status_line = await reader.readline()
    writer.close()
    await writer.wait_closed()
    assert status_line.split()[1] == b"400"
    records = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert len(records) == 1
    (record,) = records
    assert record.levelno == logging.WARNING and record.exc_info is None
    assert "bad HTTP request" in record.getMessage() and "\n" not in record.getMessage()


# -- webhooks whose secret is not configured -----------------------------------------------------

UNSET = webhook("unset", signature="standard", secret_env="NOT_SET_ANYWHERE")
SET = webhook("set", signature="github", secret_env="GH_SECRET")


async def hook_client(make_client, tmp_path):
    settings = make_settings(tmp_path, env={"GH_SECRET": "s3cret"})
    write_triggers_agent(settings.agents_dir, "hooks", [UNSET, SET])
    return await make_client(settings)


async def deliver(client, trigger: str) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as http, http.post(
            client.make_url(f"/hooks/hooks/{trigger}"), data=b"{}",
            headers={"webhook-id": "m1", "webhook-timestamp": "1",
                     "webhook-signature": "v1,AAAA"}) as resp:
        return resp.status, await resp.json()


async def test_an_unset_secret_shows_in_the_card_of_a_loaded_trigger(make_client, tmp_path):
    client = await hook_client(make_client, tmp_path)
    await create_session(client, session_id="s", agent_id="hooks")
    found = await cards(client, "s")
    assert "NOT_SET_ANYWHERE" in found["unset"]["error"]
    assert "secret_not_configured" in found["unset"]["error"]
    assert found["set"]["error"] is None


async def test_an_unset_secret_shows_in_the_card_of_a_created_trigger(make_client, tmp_path):
    client = await hook_client(make_client, tmp_path)
    await create_session(client, session_id="s")
    created = await post_trigger(client, "s", webhook("api-hook", signature="github",
                                                      secret_env="ALSO_NOT_SET"))
    assert "ALSO_NOT_SET" in created["error"]
    assert "ALSO_NOT_SET" in (await cards(client, "s"))["api-hook"]["error"]


@pytest.mark.parametrize("live", [True, False], ids=["live-session", "no-session"])
async def test_deliveries_to_a_trigger_without_its_secret_are_503(make_client, tmp_path, live):
    client = await hook_client(make_client, tmp_path)
    if live:
        await create_session(client, session_id="s", agent_id="hooks")
    status, answer = await deliver(client, "unset")
    assert status == 503 and answer["code"] == "secret_not_configured"
    status, answer = await deliver(client, "set")  # a configured secret: a bad signature
    assert status == 401
