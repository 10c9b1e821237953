"""The published contract is as strict as the server: what GET /api/openapi.json allows is
accepted, and the answers fit their documented response models."""

from __future__ import annotations

import re
from pathlib import Path

import jsonschema_rs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hive_server.errors import InvalidInput
from hive_server.models.agent import is_agent_id
from hive_server.models.contract import PATH_PARAMETERS
from hive_server.models.queen import is_queen_id
from hive_server.models.session import RESERVED_IDS, is_safe_id
from hive_server.models.triggers import SAFE_ID_RE, TimerConfig, TriggerSpec, WebhookConfig
from hive_server.services.sessions.workspace_files import check_path
from tests.conftest import create_session, make_settings

ACCEPTS = {"session_id": lambda v: is_safe_id(v) and v not in RESERVED_IDS,
           "agent_id": is_agent_id, "colony_id": is_agent_id, "queen_id": is_queen_id,
           "trigger_id": lambda v: SAFE_ID_RE.fullmatch(v) is not None,
           "path": lambda v: _inside(Path("/nonexistent/workspace"), v)}


def _inside(root: Path, path: str) -> bool:
    try:
        check_path(root, path)
    except InvalidInput:
        return False
    return True


@pytest.fixture
async def spec(client) -> dict:
    resp = await client.get("/api/openapi.json")
    assert resp.status == 200
    return await resp.json()


def component(spec: dict, name: str) -> dict:
    return spec["components"]["schemas"][name]


def validator(spec: dict, name: str) -> jsonschema_rs.Validator:
    """A validator of one component, its $refs resolved inside the document."""
    return jsonschema_rs.validator_for({**spec, "$ref": f"#/components/schemas/{name}"})


def path_schemas(spec: dict) -> dict[str, dict]:
    found: dict[str, dict] = {}
    for ops in spec["paths"].values():
        for op in ops.values():
            for param in op["parameters"]:
                if param["in"] == "path":
                    assert found.setdefault(param["name"], param["schema"]) == param["schema"]
    return found


async def test_every_path_parameter_has_a_pattern(spec):
    schemas = path_schemas(spec)
    assert sorted(schemas) == sorted(ACCEPTS)
    for name, schema in schemas.items():
        assert schema["type"] == "string" and schema["pattern"].startswith("^"), name


async def test_the_document_uses_the_contracts_path_schemas(spec):
    assert path_schemas(spec) == PATH_PARAMETERS


def allowed(schema: dict) -> st.SearchStrategy[str]:
    """The values a path parameter's schema allows: its pattern, up to its maxLength."""
    limit = schema.get("maxLength", 10**6)
    return st.from_regex(schema["pattern"], fullmatch=True).filter(lambda v: len(v) <= limit)


# built once: building one from its regex in every example was a fifth of the test's time
ALLOWED = {name: allowed(schema) for name, schema in PATH_PARAMETERS.items()}


@settings(max_examples=120, deadline=None)
@given(st.data())
def test_a_path_parameter_the_pattern_allows_is_one_the_server_accepts(data):
    # the server's checks (is_safe_id, is_agent_id, ...) accept every value the document allows
    name = data.draw(st.sampled_from(sorted(PATH_PARAMETERS)))
    schema = PATH_PARAMETERS[name]
    value = data.draw(ALLOWED[name])
    if value in schema.get("not", {}).get("enum", []):
        return
    assert ACCEPTS[name](value), (name, value)


@pytest.mark.parametrize("value", ["a..b", "..", ".a", "-a", "a/b", "", "a b", "é"])
async def test_a_session_id_the_server_refuses_is_outside_the_pattern(spec, value):
    schema = path_schemas(spec)["session_id"]
    assert not is_safe_id(value)
    assert re.search(schema["pattern"], value) is None


async def test_agent_id_or_agent_path_is_one_of_them(spec):
    for name in ("LoadColonyBody", "DeleteAgentBody", "AgentMetadataBody"):
        check = validator(spec, name)
        assert check.is_valid({"agent_id": "notes"}), name
        assert check.is_valid({"agent_path": "agents/notes"}), name
        assert not check.is_valid({}), name
        assert not check.is_valid({"agent_id": "notes", "agent_path": "agents/notes"}), name
        assert not check.is_valid({"agent_id": "Notes!"}), name
    create = validator(spec, "CreateSessionBody")
    assert create.is_valid({}) and create.is_valid({"colony_id": "notes"})
    assert not create.is_valid({"colony_id": "notes", "agent_path": "agents/notes"})
    assert not create.is_valid({"session_id": "a", "queen_resume_from": "b"})
    assert not create.is_valid({"session_id": "live"})


async def test_the_agent_path_pattern_names_this_servers_agents_folder(spec, settings):
    check = validator(spec, "LoadColonyBody")
    absolute = str(settings.agents_dir.resolve())
    assert check.is_valid({"agent_path": f"{absolute}/notes"})
    assert not check.is_valid({"agent_path": "/elsewhere/notes"})
    assert not check.is_valid({"agent_path": "agents/../notes"})


async def test_blank_messages_are_outside_the_schema_and_the_limit_is_the_setting(
        make_client, tmp_path):
    client = await make_client(make_settings(tmp_path, max_message_chars=50))
    spec = await (await client.get("/api/openapi.json")).json()
    chat = validator(spec, "ChatBody")
    assert chat.is_valid({"message": "hi"})
    for refused in ("", "   ", "\n\t", "x" * 51):
        assert not chat.is_valid({"message": refused}), refused
    prompt = component(spec, "CreateSessionBody")["properties"]["initial_prompt"]["anyOf"][0]
    assert (prompt["minLength"], prompt["maxLength"]) == (1, 50)
    assert "x-hive-limit" not in str(spec)


async def test_trigger_schemas_are_exact_and_discriminated_on_the_type(spec):
    check = validator(spec, "TriggerSpec")
    ok = [{"trigger_type": "timer", "trigger_config": {"cron": "0 9 * * 1-5",
                                                       "timezone": "Europe/Berlin"}},
          {"trigger_type": "timer", "trigger_config": {"interval_minutes": 5}},
          {"trigger_type": "timer", "trigger_config": {"cron": "@daily"}},
          {"trigger_type": "webhook", "trigger_config": {"signature": "none"}},
          {"trigger_type": "webhook", "trigger_config": {"signature": "github",
                                                         "secret_env": "GH_SECRET"}}]
    refused = [{"trigger_type": "timer", "trigger_config": {}},
               {"trigger_type": "timer", "trigger_config": {"cron": "0 9 * * *",
                                                            "interval_minutes": 5}},
               {"trigger_type": "timer", "trigger_config": {"cron": "0 0 30 2 *"}},
               {"trigger_type": "timer", "trigger_config": {"interval_minutes": 0}},
               {"trigger_type": "timer", "trigger_config": {"cron": "* * * * *",
                                                            "timezone": "Mars/Base"}},
               {"trigger_type": "timer", "trigger_config": {"cron": "* * * * *",
                                                            "timzone": "UTC"}},
               {"trigger_type": "webhook", "trigger_config": {"signature": "standard"}},
               {"trigger_type": "webhook", "trigger_config": {"interval_minutes": 5}},
               {"trigger_type": "timer", "trigger_config": {"signature": "none"}}]
    for body in ok:
        assert check.is_valid({**body, "task": "do it"}), body
        assert not check.is_valid(body) and not check.is_valid({**body, "task": " "}), body
        TriggerSpec.model_validate({"id": "t", **body})
    for body in refused:
        assert not check.is_valid(body), body
        with pytest.raises(ValueError):
            TriggerSpec.model_validate({"id": "t", **body})


@settings(max_examples=30, deadline=None)  # croniter's check is slow: about 0.05 s a cron
@given(st.from_regex(TimerConfig.model_json_schema()["oneOf"][0]["properties"]["cron"]
                     ["anyOf"][0]["pattern"], fullmatch=True),
       st.sampled_from(TimerConfig.model_json_schema()["oneOf"][0]["properties"]["timezone"]
                       ["enum"]))
def test_every_cron_and_zone_the_schema_allows_is_accepted(cron, zone):
    TimerConfig(cron=cron, timezone=zone)


def test_webhook_schema_matches_the_model():
    check = jsonschema_rs.validator_for(WebhookConfig.model_json_schema())
    assert check.is_valid({"signature": "none", "secret_env": None})
    assert not check.is_valid({"signature": "none", "secret_env": "1BAD"})


async def test_query_parameters_and_their_bounds(spec):
    history = spec["paths"]["/api/sessions/{session_id}/events/history"]["get"]
    [query] = [p for p in history["parameters"] if p["in"] == "query"]
    assert (query["style"], query["explode"]) == ("form", True)
    props = query["schema"]["properties"]
    assert (props["limit"]["minimum"], props["limit"]["maximum"]) == (1, 10_000)
    assert props["before_seq"]["minimum"] == 1 and props["before_offset"]["minimum"] == 0
    assert {"not": {"required": ["before_seq", "before_index"]}} in query["schema"]["allOf"]
    assert {"not": {"required": ["after_seq", "before_offset"]}} in query["schema"]["allOf"]
    assert props["after_seq"]["minimum"] == 0
    assert re.fullmatch(props["types"]["pattern"], "llm_text_delta,tool_call_started")
    events = spec["paths"]["/api/sessions/{session_id}/events"]["get"]
    params = {p["name"]: p["schema"] for p in events["parameters"] if p["in"] == "query"}
    assert params["after_seq"]["minimum"] == 0
    assert re.fullmatch(params["types"]["pattern"], "llm_text_delta,tool_call_started")
    assert not re.fullmatch(params["types"]["pattern"], "llm_text_delta,nope")


async def test_answers_fit_their_documented_response_models(client, spec):
    session = await create_session(client, session_id="s1")
    assert validator(spec, "LiveSessionView").is_valid(session)
    resp = await client.post("/api/sessions/s1/triggers", json={
        "id": "t1", "trigger_type": "timer", "trigger_config": {"interval_minutes": 5},
        "task": "tidy up"})
    assert resp.status == 201
    answers = {"TriggerCard": await resp.json()}
    for name, url in (("SessionAnswer", "/api/sessions/s1"), ("Health", "/api/health"),
                      ("EventPage", "/api/sessions/s1/events/history"),
                      ("SessionStats", "/api/sessions/s1/stats"),
                      ("SessionHistory", "/api/sessions/history"),
                      ("TriggerList", "/api/sessions/s1/triggers"),
                      ("LlmConfig", "/api/config/llm"), ("QueenProfiles", "/api/queen/profiles"),
                      ("QueenProfileView", "/api/queen/default/profile")):
        resp = await client.get(url)
        assert resp.status == 200, url
        answers[name] = await resp.json()
    for name, answer in answers.items():
        errors = [str(e) for e in validator(spec, name).iter_errors(answer)]
        assert not errors, (name, errors)
    assert answers["SessionAnswer"]["entry_points"][0]["trigger_id"] == "t1"
    responses = [op["responses"] for ops in spec["paths"].values() for op in ops.values()]
    refs = [r["200"]["content"]["application/json"]["schema"] for r in responses if "200" in r
            and "application/json" in r["200"]["content"]]
    assert all("$ref" in schema for schema in refs)  # every answer, the document too


async def test_every_session_id_in_a_body_carries_the_session_id_pattern(spec):
    # found by schemathesis: {"session_id": ""} for .../session/select was allowed, then 400
    select = component(spec, "SelectQueenSessionBody")["properties"]["session_id"]
    assert select["pattern"] == PATH_PARAMETERS["session_id"]["pattern"]
    assert not validator(spec, "SelectQueenSessionBody").is_valid({"session_id": ""})
    create = component(spec, "CreateSessionBody")["properties"]
    for name in ("session_id", "queen_resume_from"):
        assert create[name]["anyOf"][0]["pattern"] == select["pattern"], name
