"""GET /api/openapi.json lists every route, with the body schemas that validate requests."""

from __future__ import annotations

import pytest

# The public API as docs/api.md describes it:
# (method, path) -> (body model, success status, response model; None for SSE and text).
# Written out by hand on purpose: the document is built from the live route table, so only a
# list kept apart from it notices a route that appears, disappears or changes its answer.
API: dict[tuple[str, str], tuple[str | None, str, str | None]] = {
    ("get", "/api/health"): (None, "200", "Health"),
    ("get", "/api/openapi.json"): (None, "200", "OpenApiDocument"),
    ("get", "/api/queen/profiles"): (None, "200", "QueenProfiles"),
    ("post", "/api/sessions"): ("CreateSessionBody", "201", "LiveSessionView"),
    ("get", "/api/sessions"): (None, "200", "LiveSessions"),
    ("get", "/api/sessions/history"): (None, "200", "SessionHistory"),
    ("delete", "/api/sessions/history/{session_id}"): (None, "200", "SessionDeleted"),
    ("get", "/api/sessions/{session_id}"): (None, "200", "SessionAnswer"),
    ("patch", "/api/sessions/{session_id}"): ("RenameSessionBody", "200", "SessionRenamed"),
    ("delete", "/api/sessions/{session_id}"): (None, "200", "SessionStopped"),
    ("get", "/api/sessions/{session_id}/events"): (None, "200", None),
    ("get", "/api/sessions/{session_id}/events/history"): (None, "200", "EventPage"),
    ("post", "/api/sessions/{session_id}/chat"): ("ChatBody", "202", "ChatAccepted"),
    ("post", "/api/sessions/{session_id}/cancel"): (None, "200", "Cancelled"),
    ("post", "/api/sessions/{session_id}/colony"): ("LoadColonyBody", "201", "ColonyLoaded"),
    ("delete", "/api/sessions/{session_id}/colony"): (None, "200", "ColonyUnloaded"),
    ("get", "/api/sessions/{session_id}/colonies"): (None, "200", "ColonyList"),
    ("get", "/api/sessions/{session_id}/stats"): (None, "200", "SessionStats"),
    ("get", "/api/sessions/{session_id}/export"): (None, "200", None),  # markdown, text, ...
    ("get", "/api/usage"): (None, "200", "UsageSummary"),
    ("get", "/api/discover"): (None, "200", "Discover"),
    ("delete", "/api/agents"): ("DeleteAgentBody", "200", "AgentDeleted"),
    ("patch", "/api/agents/metadata"): ("AgentMetadataBody", "200", "ValidAgentView"),
    ("get", "/api/agents/{agent_id}/readme"): (None, "200", None),  # text/markdown
    ("get", "/api/sessions/{session_id}/triggers"): (None, "200", "TriggerList"),
    ("get", "/api/sessions/{session_id}/entry-points"): (None, "200", "EntryPoints"),
    ("post", "/api/sessions/{session_id}/triggers"): ("TriggerSpec", "201", "TriggerCard"),
    ("patch", "/api/sessions/{session_id}/triggers/{trigger_id}"):
        ("PatchTriggerBody", "200", "TriggerCard"),
    ("delete", "/api/sessions/{session_id}/triggers/{trigger_id}"): (None, "200", "TriggerDeleted"),
    ("post", "/api/sessions/{session_id}/triggers/{trigger_id}/activate"):
        (None, "200", "TriggerCard"),
    ("post", "/api/sessions/{session_id}/triggers/{trigger_id}/deactivate"):
        (None, "200", "TriggerCard"),
    ("post", "/api/sessions/{session_id}/triggers/{trigger_id}/run"):
        ("RunTriggerBody", "202", "TriggerRun"),
    ("post", "/hooks/{agent_id}/{trigger_id}"): (None, "202", "WebhookReceipt"),
    # why a trigger did not fire; the workspace; the queen's queue (issue 11 items 8-9)
    ("get", "/api/sessions/{session_id}/triggers/{trigger_id}"): (None, "200", "TriggerCard"),
    ("get", "/api/webhooks/held"): (None, "200", "HeldWebhooks"),
    ("get", "/api/sessions/{session_id}/files"): (None, "200", "WorkspaceListing"),
    ("get", "/api/sessions/{session_id}/files/{path}"): (None, "200", None),  # octet-stream
    ("delete", "/api/sessions/{session_id}/queue"): (None, "200", "QueueDropped"),
    # Hive's UI: boot, the queen page, the chat side panels
    ("get", "/api/config/llm"): (None, "200", "LlmConfig"),
    ("get", "/api/agents"): (None, "200", "AgentList"),
    ("get", "/api/colonies/{colony_id}/sessions"): (None, "200", "SessionHistory"),
    ("get", "/api/queen/{queen_id}/profile"): (None, "200", "QueenProfileView"),
    ("post", "/api/queen/{queen_id}/session"): ("QueenSessionBody", "200", "QueenSession"),
    ("post", "/api/queen/{queen_id}/session/new"): ("QueenSessionBody", "200", "QueenSession"),
    ("post", "/api/queen/{queen_id}/session/select"):
        ("SelectQueenSessionBody", "200", "QueenSession"),
    ("post", "/api/sessions/{session_id}/cancel-queen"): (None, "200", "Cancelled"),
    ("post", "/api/sessions/{session_id}/presence"): (None, "200", "Presence"),
    ("get", "/api/sessions/{session_id}/tasks"): (None, "200", "TaskList"),
    ("get", "/api/sessions/{session_id}/workers"): (None, "200", "WorkerList"),
    # Hive's UI: the queen's state and the state feeds
    ("get", "/api/sessions/{session_id}/snapshot"): (None, "200", "SessionSnapshot"),
    ("get", "/api/sessions/live"): (None, "200", None),
    ("get", "/api/events/global"): (None, "200", None),
    ("get", "/api/events/schema"): (None, "200", "EventSchemas"),
    ("get", "/api/config/models"): (None, "200", "ModelList"),
    ("get", "/api/colonies/{colony_id}/data/tables"): (None, "200", "DataTables"),
}


@pytest.fixture
async def spec(client) -> dict:
    resp = await client.get("/api/openapi.json")
    assert resp.status == 200
    return await resp.json()


def operations(spec: dict) -> dict[tuple[str, str], dict]:
    return {(method, path): op for path, ops in spec["paths"].items()
            for method, op in ops.items()}


async def test_document_lists_exactly_the_public_routes(spec):
    assert spec["openapi"] == "3.1.0"
    assert sorted(operations(spec)) == sorted(API)


# Other successful answers of a route, besides its success status (status -> response model).
ALSO = {("get", "/api/sessions/{session_id}"): {"202": "SessionLoading"},
        ("post", "/hooks/{agent_id}/{trigger_id}"): {"200": "WebhookReceipt"}}


def ref_name(content: dict) -> str | None:
    ref = content.get("application/json", {}).get("schema", {}).get("$ref")
    return ref.rsplit("/", 1)[1] if ref else None


async def test_every_route_names_its_body_model_and_success_status(spec):
    for key, op in operations(spec).items():
        model = ref_name(op.get("requestBody", {}).get("content", {}))
        success = sorted(code for code in op["responses"] if code not in ("4XX", "5XX"))
        body, status, response = API[key]
        assert (model, success) == (body, sorted([status, *ALSO.get(key, {})])), key
        assert ref_name(op["responses"][status]["content"]) == response, key
        for code, also in ALSO.get(key, {}).items():
            assert ref_name(op["responses"][code]["content"]) == also, key
        for name in filter(None, (model, response, *ALSO.get(key, {}).values())):
            assert name in spec["components"]["schemas"], key
        params = [p["name"] for p in op["parameters"] if p["in"] == "path"]
        assert params == [part[1:-1] for part in key[1].split("/") if part.startswith("{")]


async def test_bodies_reference_their_models(spec):
    chat = spec["paths"]["/api/sessions/{session_id}/chat"]["post"]
    ref = chat["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert schema["required"] == ["message"]
    assert chat["requestBody"]["required"] is True
    create = spec["paths"]["/api/sessions"]["post"]
    assert create["requestBody"]["required"] is False  # POST /api/sessions with no body is fine
    assert spec["paths"]["/hooks/{agent_id}/{trigger_id}"]["post"]["security"] == []
    assert chat["security"] == [{"bearer": []}, {"header": []}, {"query": []}, {"cookie": []}]


async def test_a_body_that_breaks_the_documented_schema_is_refused(client, spec):
    chat = spec["components"]["schemas"]["ChatBody"]
    assert chat["properties"]["message"]["type"] == "string"
    resp = await client.post("/api/sessions", json={"session_id": "s"})
    assert resp.status == 201
    resp = await client.post("/api/sessions/s/chat", json={"message": 5})
    assert resp.status == 422 and (await resp.json())["code"] == "validation_error"


async def test_the_readme_is_a_markdown_string_and_a_title_is_not_blank(spec):
    readme = spec["paths"]["/api/agents/{agent_id}/readme"]["get"]["responses"]["200"]
    assert readme["content"] == {"text/markdown": {"schema": {"type": "string"}}}
    title = spec["components"]["schemas"]["RenameSessionBody"]["properties"]["title"]
    assert (title["minLength"], title["maxLength"]) == (1, 200) and title["pattern"]
    assert spec["components"]["schemas"]["RenameSessionBody"]["additionalProperties"] is False
