"""GET /api/health: each distinct answer is built once by the Health model and remembered;
an answer never goes stale when the counts move."""

from __future__ import annotations

import asyncio

from hive_server import keys
from hive_server.core import stats
from hive_server.models.responses import Health
from tests.conftest import make_settings
from tests.redis_server import redis_test
from tests.test_metrics import scrape


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


async def test_with_files_the_node_fields_say_file_and_own_the_live_sessions(client):
    assert (await client.post("/api/sessions", json={"session_id": "one"})).status == 201
    health = Health.model_validate_json(await health_bytes(client))
    assert (health.backend, health.node_id, health.lease) == ("file", None, None)
    assert health.sessions_owned == health.sessions == 1


@redis_test
async def test_on_redis_the_answer_names_the_node_and_follows_its_leases(
        make_client, tmp_path, redis_url, redis_client):
    client = await make_client(make_settings(tmp_path, redis=redis_url, node_id="n1",
                                             lease_seconds=30))
    keeper = client.app[keys.REDIS_NODE].keeper
    first = Health.model_validate_json(await health_bytes(client))
    assert (first.backend, first.node_id) == ("redis", "n1")
    assert first.lease is not None and first.lease.ttl_ms == 30_000
    assert first.lease.lost == stats.LEASES_LOST.value

    assert await keeper.acquire("held") is not None
    await keeper.tick()  # one renew round of this node: the median has an observation
    held = Health.model_validate_json(await health_bytes(client))
    assert held.sessions_owned == first.sessions_owned + 1
    assert held.lease is not None and 0 < held.lease.renew_p50_ms <= 1000

    await redis_client.delete("hive:{held}:lease")  # lapsed: the next round gives it up
    assert await keeper.tick() == ["held"]
    lost = Health.model_validate_json(await health_bytes(client))
    assert lost.sessions_owned == first.sessions_owned
    assert lost.lease is not None and lost.lease.lost == first.lease.lost + 1


@redis_test
async def test_a_takeover_moves_the_session_in_both_nodes_health_and_metrics(
        make_client, tmp_path, redis_url):
    """Two nodes in one process: n1 stops renewing (as a node cut off from Redis), n2's
    takeover round resumes the session. The leases lapse on wall time: polled."""
    def node(name: str):
        return make_settings(tmp_path / name, redis=redis_url, node_id=name, lease_seconds=1,
                             agents_dir=tmp_path / "agents", queens_dir=tmp_path / "queens")

    first, second = await make_client(node("n1")), await make_client(node("n2"))
    assert (await first.post("/api/sessions", json={"session_id": "s"})).status == 201
    takeovers = (await scrape(second))["hive_takeovers"][("hive_takeovers_total",)]
    before = [Health.model_validate_json(await health_bytes(c)) for c in (first, second)]
    assert [(h.node_id, h.sessions_owned) for h in before] == [("n1", 1), ("n2", 0)]

    await first.app[keys.REDIS_NODE].keeper.close()
    deadline = asyncio.get_running_loop().time() + 10
    while Health.model_validate_json(await health_bytes(second)).sessions == 0:
        # the lease is owned (sessions_owned 1) from its acquire, live once resumed
        assert asyncio.get_running_loop().time() < deadline, "no takeover within 10 s"
        await asyncio.sleep(0.05)
    after = Health.model_validate_json(await health_bytes(second))
    assert (after.sessions, after.sessions_owned) == (1, 1)
    got = await scrape(second)
    assert got["hive_takeovers"][("hive_takeovers_total",)] == takeovers + 1
    assert got["hive_sessions_owned"] == {("hive_sessions_owned",): 1}
