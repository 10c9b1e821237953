"""GET /api/openapi.json lists every route, with the body schemas that validate requests."""

from __future__ import annotations


async def test_document_lists_every_api_and_hook_route(client):
    resp = await client.get("/api/openapi.json")
    assert resp.status == 200
    spec = await resp.json()
    assert spec["openapi"] == "3.1.0"
    listed = {(path, method) for path, ops in spec["paths"].items() for method in ops}
    registered = set()
    for route in client.app.router.routes():
        info = route.resource.get_info()
        path = info.get("formatter") or info.get("path")
        if route.method != "HEAD" and path.startswith(("/api/", "/hooks/")):
            registered.add((path, route.method.lower()))
    assert registered == listed
    assert ("/api/sessions/{session_id}/chat", "post") in listed


async def test_bodies_reference_their_models(client):
    spec = await (await client.get("/api/openapi.json")).json()
    chat = spec["paths"]["/api/sessions/{session_id}/chat"]["post"]
    ref = chat["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert schema["required"] == ["message"]
    assert "202" in chat["responses"]
    hook = spec["paths"]["/hooks/{agent_id}/{trigger_id}"]["post"]
    assert hook["security"] == []
    trigger = spec["paths"]["/api/sessions/{session_id}/triggers"]["post"]
    assert "requestBody" in trigger and "201" in trigger["responses"]
