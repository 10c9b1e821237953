"""GET /api/health: each distinct answer is built once by the Health model and remembered;
an answer never goes stale when the counts move."""

from __future__ import annotations

from hive_server.models.responses import Health


async def health_bytes(client) -> bytes:
    resp = await client.get("/api/health")
    assert resp.status == 200 and resp.content_type == "application/json"
    return await resp.read()


async def test_health_follows_the_live_sessions_and_answers_the_model_bytes(client):
    before = await health_bytes(client)
    assert (await client.post("/api/sessions", json={"session_id": "one"})).status == 201
    during = await health_bytes(client)
    assert (await client.delete("/api/sessions/one")).status == 200
    after = await health_bytes(client)

    counts = [Health.model_validate_json(body).sessions for body in (before, during, after)]
    assert counts == [0, 1, 0]
    assert after == before  # the same values answer the same bytes
    for body in (before, during):
        assert body == Health.model_validate_json(body).model_dump_json().encode()
