"""PATCH /api/sessions/{id} (a title, live or on disk) and GET /api/agents/{id}/readme."""

from __future__ import annotations

import json

import pytest

from tests.agent_fixtures import write_agent


async def rename(client, session_id: str, body: object):
    return await client.patch(f"/api/sessions/{session_id}", json=body)


def meta_on_disk(settings, session_id: str) -> dict:
    return json.loads((settings.home / "sessions" / session_id / "meta.json").read_text())


async def history_row(client, session_id: str) -> dict:
    rows = (await (await client.get("/api/sessions/history")).json())["sessions"]
    return next(row for row in rows if row["session_id"] == session_id)


async def test_a_live_session_is_renamed_and_shows_its_title(client, api, settings):
    await api.create_session(session_id="s1")
    resp = await rename(client, "s1", {"title": "  Weekly notes  "})
    assert resp.status == 200
    assert await resp.json() == {"session_id": "s1", "title": "Weekly notes", "live": True,
                                 "budget": None}
    assert (await (await client.get("/api/sessions/s1")).json())["title"] == "Weekly notes"
    listed = (await (await client.get("/api/sessions")).json())["sessions"]
    assert listed[0]["title"] == "Weekly notes"
    assert (await history_row(client, "s1"))["title"] == "Weekly notes"
    assert meta_on_disk(settings, "s1")["title"] == "Weekly notes"  # through the meta save


async def test_a_title_survives_stop_and_resume(client, api, settings):
    await api.create_session(session_id="s1")
    assert (await rename(client, "s1", {"title": "Kept"})).status == 200
    assert (await client.delete("/api/sessions/s1")).status == 200
    assert meta_on_disk(settings, "s1")["title"] == "Kept"
    resumed = await api.create_session(queen_resume_from="s1")
    assert resumed["title"] == "Kept"


async def test_a_cold_session_is_renamed_on_disk(client, api, settings):
    await api.create_session(session_id="s1")
    assert (await client.delete("/api/sessions/s1")).status == 200
    before = meta_on_disk(settings, "s1")
    resp = await rename(client, "s1", {"title": "Archived"})
    assert resp.status == 200
    assert await resp.json() == {"session_id": "s1", "title": "Archived", "live": False,
                                 "budget": None}
    after = meta_on_disk(settings, "s1")
    assert after["title"] == "Archived" and after["status"] == "stopped"
    assert {**after, "title": None, "updated_at": before["updated_at"]} == before
    cold = await (await client.get("/api/sessions/s1")).json()
    assert cold["cold"] is True and cold["title"] == "Archived"
    assert (await history_row(client, "s1"))["title"] == "Archived"
    folder = settings.home / "sessions" / "s1"
    assert not [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]


async def test_a_session_without_a_title_answers_null(client, api):
    await api.create_session(session_id="s1")
    assert (await (await client.get("/api/sessions/s1")).json())["title"] is None
    assert (await history_row(client, "s1"))["title"] is None


@pytest.mark.parametrize("title", ["", "   ", "\n\t"])
async def test_a_blank_title_is_400_empty_title(client, api, title):
    await api.create_session(session_id="s1")
    resp = await rename(client, "s1", {"title": title})
    assert resp.status == 400 and (await resp.json())["code"] == "empty_title"


@pytest.mark.parametrize("body", [{}, {"title": 5}, {"title": None}, {"title": "x" * 201},
                                  {"title": "ok", "name": "typo"}])
async def test_a_body_off_the_schema_is_422(client, api, body):
    await api.create_session(session_id="s1")
    resp = await rename(client, "s1", body)
    assert resp.status == 422 and (await resp.json())["code"] == "validation_error"


async def test_a_title_of_200_characters_is_taken(client, api):
    await api.create_session(session_id="s1")
    assert (await rename(client, "s1", {"title": "x" * 200})).status == 200


async def test_an_unknown_session_is_404(client, settings):
    resp = await rename(client, "nope", {"title": "t"})
    assert resp.status == 404 and (await resp.json())["code"] == "session_not_found"
    assert not (settings.home / "sessions" / "nope").exists()


async def test_a_bad_session_id_is_400(client):
    resp = await rename(client, "bad..id", {"title": "t"})
    assert resp.status == 400 and (await resp.json())["code"] == "invalid_session_id"


async def test_a_corrupt_meta_is_400_session_corrupt_and_kept(client, settings):
    folder = settings.home / "sessions" / "broken"
    folder.mkdir(parents=True)
    (folder / "meta.json").write_text("{not json")
    resp = await rename(client, "broken", {"title": "t"})
    assert resp.status == 400 and (await resp.json())["code"] == "session_corrupt"
    assert not (folder / "meta.json").exists()  # kept aside, never replaced
    assert [p.name for p in folder.iterdir() if p.name.startswith("meta.json.corrupt-")]


async def test_a_renamed_cold_session_can_be_resumed_and_deleted(client, api):
    await api.create_session(session_id="s1")
    await client.delete("/api/sessions/s1")
    assert (await rename(client, "s1", {"title": "t"})).status == 200
    assert (await api.create_session(queen_resume_from="s1"))["title"] == "t"
    assert (await client.delete("/api/sessions/history/s1")).status == 200


# -- README -----------------------------------------------------------------------------------
@pytest.fixture
async def agents_client(make_client, settings):
    write_agent(settings.agents_dir, "documented", {"name": "Documented"},
                readme="# Documented\n\n<script>alert(1)</script> é\n")
    write_agent(settings.agents_dir, "bare", {"name": "Bare"})
    return await make_client(settings)


async def test_an_agent_readme_is_served_as_markdown_text(agents_client):
    resp = await agents_client.get("/api/agents/documented/readme")
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "text/markdown; charset=utf-8"
    assert await resp.text() == "# Documented\n\n<script>alert(1)</script> é\n"


async def test_an_agent_without_a_readme_is_404_readme_not_found(agents_client):
    resp = await agents_client.get("/api/agents/bare/readme")
    assert resp.status == 404 and (await resp.json())["code"] == "readme_not_found"


async def test_an_unknown_agent_readme_is_404_agent_not_found(agents_client):
    resp = await agents_client.get("/api/agents/ghost/readme")
    assert resp.status == 404 and (await resp.json())["code"] == "agent_not_found"
