"""Hive's queen routes against the real app: open (get-or-create), new, select, profiles."""

from __future__ import annotations

from pathlib import Path

import pytest

from hive_server import keys
from tests.agent_fixtures import agents_tree
from tests.conftest import create_session
from tests.queen_support import read_log, write_queen


@pytest.fixture
async def client(make_client, settings):
    write_queen(settings.queens_dir)  # "warden"
    write_queen(settings.queens_dir, "scout", "name: Scout\ntitle: the one who looks ahead\n")
    agents_tree(settings.agents_dir)
    return await make_client(settings)


async def post(client, path: str, status: int = 200, **body) -> dict:
    resp = await client.post(path, json=body)
    assert resp.status == status, await resp.text()
    return await resp.json()


def check_result(result: dict, status: str) -> None:
    assert isinstance(result["session_id"], str) and result["session_id"].startswith("session_")
    assert result["queen_id"] == "warden" and result["status"] == status


async def test_open_creates_then_returns_the_live_session_then_resumes_it(client, settings):
    first = await post(client, "/api/queen/warden/session", initial_phase="independent")
    check_result(first, "created")
    again = await post(client, "/api/queen/warden/session")
    check_result(again, "live")
    assert again["session_id"] == first["session_id"]
    await client.delete(f"/api/sessions/{first['session_id']}")
    resumed = await post(client, "/api/queen/warden/session")
    check_result(resumed, "resumed")
    assert resumed["session_id"] == first["session_id"]
    types = [e["type"] for e in read_log(settings.home, first["session_id"])]
    assert types.count("session_started") == 2  # the same session, started twice


async def test_open_skips_colony_sessions_and_other_queens(client):
    await create_session(client, session_id="colony-s", queen_name="warden", agent_id="notes")
    await create_session(client, session_id="scout-s", queen_name="scout")
    result = await post(client, "/api/queen/warden/session")
    check_result(result, "created")
    assert result["session_id"] not in ("colony-s", "scout-s")
    live = await (await client.get(f"/api/sessions/{result['session_id']}")).json()
    assert live["queen_id"] == "warden" and live["colony_id"] is None


async def test_open_prefers_the_session_opened_last(client):
    old = await post(client, "/api/queen/warden/session/new")
    new = await post(client, "/api/queen/warden/session/new")
    assert old["session_id"] != new["session_id"]
    assert (await post(client, "/api/queen/warden/session"))["session_id"] == new["session_id"]


async def test_open_resumes_her_newest_cold_session(client):
    older = await post(client, "/api/queen/warden/session/new")
    newer = await post(client, "/api/queen/warden/session/new")
    for made in (older, newer):
        await client.delete(f"/api/sessions/{made['session_id']}")
    result = await post(client, "/api/queen/warden/session")
    check_result(result, "resumed")
    assert result["session_id"] == newer["session_id"]


async def test_open_delivers_an_initial_prompt_and_tolerates_hive_keys(client, settings):
    result = await post(client, "/api/queen/warden/session", initial_prompt="hello queen",
                        initial_phase="independent", crm_setup=True, park_others=False)
    check_result(result, "created")
    again = await post(client, "/api/queen/warden/session", initial_prompt="second")
    check_result(again, "live")
    inputs = [e["data"] for e in read_log(settings.home, result["session_id"])
              if e["type"] == "client_input_received"]
    assert [d.get("content") or d.get("message") for d in inputs] == ["hello queen", "second"]


async def test_new_always_creates_and_keeps_the_others_live(client):
    one = await post(client, "/api/queen/warden/session/new", initial_phase="independent")
    two = await post(client, "/api/queen/warden/session/new")
    check_result(one, "created")
    check_result(two, "created")
    live = {s["session_id"] for s in (await (await client.get("/api/sessions")).json())["sessions"]}
    assert {one["session_id"], two["session_id"]} <= live
    detail = await (await client.get(f"/api/sessions/{two['session_id']}")).json()
    assert detail["queen_phase"] == "independent"


async def test_select_answers_live_resumed_or_colony(client):
    made = await post(client, "/api/queen/warden/session/new")
    sid = made["session_id"]
    check_result(await post(client, "/api/queen/warden/session/select", session_id=sid), "live")
    await client.delete(f"/api/sessions/{sid}")
    resumed = await post(client, "/api/queen/warden/session/select", session_id=sid)
    check_result(resumed, "resumed")
    assert (await client.get(f"/api/sessions/{sid}")).status == 200
    await create_session(client, session_id="col", queen_name="warden", agent_id="notes")
    colony = await post(client, "/api/queen/warden/session/select", session_id="col")
    assert colony == {"session_id": "col", "queen_id": "warden", "status": "colony",
                      "colony_id": "notes"}
    await client.delete("/api/sessions/col")
    cold = await post(client, "/api/queen/warden/session/select", session_id="col")
    assert cold["status"] == "colony" and cold["colony_id"] == "notes"
    assert (await client.get("/api/sessions/col")).status == 200
    assert (await (await client.get("/api/sessions/col")).json())["cold"] is True  # left as is


@pytest.mark.parametrize(("path", "body", "status", "code"), [
    ("/api/queen/nobody/session", {}, 404, "queen_not_found"),
    ("/api/queen/nobody/session/new", {}, 404, "queen_not_found"),
    ("/api/queen/nobody/session/select", {"session_id": "x"}, 404, "queen_not_found"),
    ("/api/queen/Bad%20Id/session", {}, 400, "invalid_queen_id"),
    ("/api/queen/warden/session/select", {"session_id": "ghost"}, 404, "session_not_found"),
    ("/api/queen/warden/session/select", {"session_id": "..%2Fx"}, 400, "invalid_session_id"),
    ("/api/queen/warden/session/select", {"session_id": "a/b"}, 400, "invalid_session_id"),
    ("/api/queen/warden/session/select", {}, 422, "validation_error"),
    ("/api/queen/warden/session", {"initial_phase": "dancing"}, 422, "validation_error"),
    ("/api/queen/warden/session/new", {"initial_prompt": "  "}, 400, "empty_message"),
])
async def test_bad_queen_session_requests(client, path, body, status, code):
    resp = await client.post(path, json=body)
    assert resp.status == status, await resp.text()
    assert (await resp.json())["code"] == code


async def test_a_session_of_another_queen_is_not_selectable(client):
    await create_session(client, session_id="theirs", queen_name="scout")
    resp = await client.post("/api/queen/warden/session/select", json={"session_id": "theirs"})
    assert resp.status == 404 and (await resp.json())["code"] == "session_not_found"
    await client.delete("/api/sessions/theirs")
    resp = await client.post("/api/queen/warden/session/select", json={"session_id": "theirs"})
    assert resp.status == 404
    assert not client.app[keys.SESSIONS].live()  # and it was not resumed


async def test_open_without_a_body_and_with_a_legacy_phase(client):
    resp = await client.post("/api/queen/warden/session")
    assert resp.status == 200 and (await resp.json())["status"] == "created"
    result = await post(client, "/api/queen/warden/session/new", initial_phase="working")
    assert result["status"] == "created"


async def test_profiles_list_queens_and_one_profile(client):
    body = await (await client.get("/api/queen/profiles")).json()
    queens = body["queens"]
    assert [q["id"] for q in queens] == ["scout", "warden"]
    for queen in queens:
        assert set(queen) == {"id", "name", "title", "has_avatar", "custom"}
        assert queen["custom"] is True  # none is one of Hive's built-in queens
        assert isinstance(queen["name"], str) and isinstance(queen["title"], str)
        assert queen["has_avatar"] is False
    assert [p["id"] for p in body["profiles"]] == ["scout", "warden"]  # ours, kept
    profile = await (await client.get("/api/queen/warden/profile")).json()
    assert profile["id"] == "warden" and profile["name"] == "Warden"
    assert profile["title"] == "keeper of the gates"
    assert isinstance(profile["summary"], str) and "watchful" in profile["summary"]
    assert profile["core_traits"] == ["watchful", "terse"]  # our keys stay
    assert profile["skills"] == "counting visitors" and profile["skill_list"] == [
        "counting visitors"]
    resp = await client.get("/api/queen/nobody/profile")
    assert resp.status == 404 and (await resp.json())["code"] == "queen_not_found"
    assert (await client.get("/api/queen/Bad%20Id/profile")).status == 400


async def test_a_profile_with_its_own_summary_keeps_it(client, settings):
    write_queen(Path(settings.queens_dir), "sage", "name: Sage\nsummary: Knows things.\n")
    await client.app[keys.QUEENS].reload()
    profile = await (await client.get("/api/queen/sage/profile")).json()
    assert profile["summary"] == "Knows things." and profile["title"] == ""
