"""One frozen model per answer, one encoder on the wire, and a document that says both."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, RootModel, ValidationError

from hive_server.models import agent_views, budget, held, responses, usage, workspace
from hive_server.models.agent_views import Response, TriggerCard
from tests.conftest import create_session
from tests.trigger_support import write_triggers_agent

MODULES = (agent_views, responses, usage, held, budget, workspace)


def response_models() -> list[type[BaseModel]]:
    """Every answer model: the ``Response`` classes and the root models of the answer modules."""
    found = [m for module in MODULES for m in vars(module).values()
             if isinstance(m, type) and issubclass(m, Response | RootModel)
             and m.__module__ == module.__name__ and "[" not in m.__name__]
    return sorted(set(found), key=lambda m: m.__name__)


def test_every_answer_model_is_frozen():
    names = [m.__name__ for m in response_models()]
    assert {"LiveSessionView", "ColdSessionView", "HistoryRow", "TriggerCard", "ColonyView",
            "ValidAgentView", "SessionStats", "Discover", "SessionAnswer"} <= set(names)
    assert [m.__name__ for m in response_models() if not m.model_config.get("frozen")] == []
    card = TriggerCard(id="t", trigger_id="t", name="t", source="api", error=None)
    with pytest.raises(ValidationError):
        card.active = True  # type: ignore[misc]


async def test_an_unusable_folder_trigger_has_every_card_key(make_client, settings):
    write_triggers_agent(settings.agents_dir, "mixed", [
        {"id": "typo", "trigger_type": "timer", "trigger_config": {"interval_minuts": 5}}])
    client = await make_client(settings)
    await create_session(client, session_id="s", agent_id="mixed")
    resp = await client.get("/api/sessions/s/triggers")
    [card] = (await resp.json())["triggers"]
    assert "interval_minuts" in card.pop("error")
    assert card == {
        "id": "typo", "trigger_id": "typo", "name": "typo", "trigger_type": None,
        "trigger_config": None, "task": None, "active": False, "next_fire_in": None,
        "next_fire_at": None, "fire_count": 0, "last_fired_at": None, "source": "folder",
        "enabled": False, "last_outcome": None, "last_outcome_at": None, "last_error": None,
        "last_error_at": None}
    assert list(card) == [k for k in TriggerCard.model_fields if k != "error"]


async def test_errors_are_compact_utf8_json_from_the_one_encoder(client):
    resp = await client.get("/api/sessions/caf\u00e9")
    assert resp.status == 400 and resp.content_type == "application/json"
    assert await resp.read() == ('{"error":"invalid session id: \'caf\u00e9\'",'
                                 '"code":"invalid_session_id"}').encode()
    resp = await client.post("/api/sessions", json={"bogus": 1})
    body = await resp.json()
    assert resp.status == 422 and body["code"] == "validation_error" and body["details"]


async def spec_of(client: Any) -> dict[str, Any]:
    resp = await client.get("/api/openapi.json")
    assert resp.status == 200
    return await resp.json()


async def test_every_json_answer_is_documented_by_its_model(client):
    spec = await spec_of(client)
    untyped = [(path, method, status)
               for path, ops in spec["paths"].items() for method, op in ops.items()
               for status, answer in op["responses"].items()
               for kind, content in answer.get("content", {}).items()
               if kind == "application/json" and "$ref" not in content["schema"]]
    assert untyped == []
    error = spec["components"]["schemas"]["Error"]
    assert error["required"] == ["error", "code"] and error["additionalProperties"] is True
    assert spec["components"]["schemas"]["OpenApiDocument"]["properties"]["openapi"][
        "const"] == "3.1.0"


async def test_a_body_documented_optional_may_be_left_out_and_only_those(make_client, settings):
    write_triggers_agent(settings.agents_dir, "clock", [
        {"id": "tick", "trigger_type": "timer", "trigger_config": {"interval_minutes": 5},
         "task": "tick"}])
    client = await make_client(settings)
    spec = await spec_of(client)
    optional = sorted((method, path) for path, ops in spec["paths"].items()
                      for method, op in ops.items()
                      if op.get("requestBody", {"required": True})["required"] is False)
    assert optional == [("post", "/api/queen/{queen_id}/session"),
                        ("post", "/api/queen/{queen_id}/session/new"),
                        ("post", "/api/sessions"),
                        ("post", "/api/sessions/{session_id}/triggers/{trigger_id}/run")]
    empty = {"data": b"", "headers": {"Content-Type": "application/json"}}
    await create_session(client, session_id="s", agent_id="clock")
    assert (await client.post("/api/sessions", **empty)).status == 201
    assert (await client.post("/api/queen/default/session", **empty)).status == 200
    assert (await client.post("/api/sessions/s/triggers/tick/run", **empty)).status == 202
    resp = await client.post("/api/sessions/s/chat", **empty)  # a required body: refused
    assert resp.status == 400 and (await resp.json())["code"] == "malformed_json"
    resp = await client.patch("/api/sessions/s/triggers/tick", **empty)
    assert resp.status == 400 and (await resp.json())["code"] == "malformed_json"


async def test_a_metadata_patch_answers_the_agent_as_the_list_shows_it(make_client, settings):
    write_triggers_agent(settings.agents_dir, "notes", [])
    client = await make_client(settings)
    await create_session(client, session_id="s", agent_id="notes")
    await create_session(client, session_id="t", agent_id="notes")
    resp = await client.patch("/api/agents/metadata", json={"agent_id": "notes", "tags": ["x"]})
    assert resp.status == 200
    patched = await resp.json()
    listed = {a["agent_id"]: a for a in (await (await client.get("/api/agents")).json())["agents"]}
    assert patched == listed["notes"]  # was: usage counts 0 in the patch's answer
    assert (patched["session_count"], patched["is_loaded"], patched["tags"]) == (2, True, ["x"])
