"""GET /metrics: the Prometheus text format behind the API token, with the families that a
chat, a webhook delivery and a timer fire move."""

from __future__ import annotations

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from hive_server import keys
from hive_server.core import stats
from hive_server.core.redis_forward import CommandLoop
from hive_server.core.stats import Histogram
from tests.conftest import AUTH, make_settings
from tests.queen_support import until
from tests.redis_server import redis_test
from tests.trigger_support import next_fired, timer, webhook, write_triggers_agent


@pytest.fixture
def settings(tmp_path):
    settings = make_settings(tmp_path, durability="fsync")
    write_triggers_agent(settings.agents_dir, "hooks", [webhook("open", signature="none")])
    return settings


async def scrape(client) -> dict[str, dict[tuple, float]]:
    """family name -> {labels as sorted (name, value) pairs, plus the sample name: value}."""
    resp = await client.get("/metrics")
    assert resp.status == 200, await resp.text()
    assert resp.content_type == "text/plain"
    families: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(await resp.text()):
        samples = families.setdefault(family.name, {})
        for sample in family.samples:
            samples[(sample.name, *sorted(sample.labels.items()))] = sample.value
    return families


async def test_metrics_need_the_token(client):
    async with aiohttp.ClientSession() as http:
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            async with http.get(client.make_url("/metrics"), headers=headers) as resp:
                assert resp.status == 401
                assert (await resp.json())["code"] == "unauthorized"
        async with http.get(client.make_url("/metrics"), headers=AUTH) as resp:
            assert resp.status == 200
            assert "hive_http_requests_total" in await resp.text()


async def test_a_chat_a_webhook_and_a_timer_show_in_the_metrics(client, api, fake_clock):
    appended, fsyncs = stats.EVENTS_APPENDED.value, sum(stats.FSYNC_SECONDS.counts)
    await api.create_session(session_id="s", agent_id="hooks")
    stream = await api.events("s")
    await api.chat("s", "hello")
    await until(stream, "execution_completed")
    async with aiohttp.ClientSession() as http:
        async with http.post(client.make_url("/hooks/hooks/open"), data=b"{}") as resp:
            assert resp.status == 202
        async with http.post(client.make_url("/hooks/hooks/nothing"), data=b"{}") as resp:
            assert resp.status == 404
    await api.add_trigger("s", timer("tick", interval_minutes=1))
    await fake_clock.advance(60)
    await next_fired(stream)
    got = await scrape(client)
    stream.close()

    requests = got["hive_http_requests"]
    chat_key = ("hive_http_requests_total", ("method", "POST"),
                ("route", "/api/sessions/{session_id}/chat"), ("status", "202"))
    assert requests[chat_key] == 1
    assert requests[("hive_http_requests_total", ("method", "POST"),
                     ("route", "/hooks/{agent_id}/{trigger_id}"), ("status", "202"))] == 1
    assert got["hive_webhook_deliveries"] == {
        ("hive_webhook_deliveries_total", ("outcome", "accepted")): 1,
        ("hive_webhook_deliveries_total", ("outcome", "duplicate")): 0,
        ("hive_webhook_deliveries_total", ("outcome", "refused")): 1}
    assert got["hive_events_appended"][("hive_events_appended_total",)] > appended
    fsync_count = got["hive_eventlog_fsync_seconds"][("hive_eventlog_fsync_seconds_count",)]
    assert fsync_count > fsyncs
    assert got["hive_live_sessions"] == {("hive_live_sessions",): 1}
    assert got["hive_sessions_owned"] == {("hive_sessions_owned",): 1}  # files: the live ones
    assert got["hive_takeovers"] == {("hive_takeovers_total",): stats.TAKEOVERS.value}
    assert got["hive_leases_lost"] == {("hive_leases_lost_total",): stats.LEASES_LOST.value}
    for name in ("hive_lease_renew_seconds", "hive_forward_seconds"):
        assert (f"{name}_bucket", ("le", "+Inf")) in got[name]
    assert got["hive_sse_subscribers"] == {("hive_sse_subscribers",): 1}
    assert ("hive_sse_dropped_total",) in got["hive_sse_dropped"]
    assert got["hive_trigger_fires"] == {("hive_trigger_fires_total",): 1}
    lag = got["hive_trigger_fire_lag_seconds"]
    assert lag[("hive_trigger_fire_lag_seconds_count",)] == 1
    assert lag[("hive_trigger_fire_lag_seconds_bucket", ("le", "+Inf"))] == 1
    turns = got["hive_llm_turns"]
    assert turns[("hive_llm_turns_total", ("outcome", "ok"))] >= 2  # the chat and the fire
    tokens = got["hive_llm_tokens"]
    assert tokens[("hive_llm_tokens_total", ("kind", "output_tokens"))] > 0
    assert tokens[("hive_llm_tokens_total", ("kind", "input_tokens"))] > 0
    seconds = got["hive_llm_turn_seconds"]
    assert seconds[("hive_llm_turn_seconds_count",)] == turns[("hive_llm_turns_total",
                                                                ("outcome", "ok"))]


async def test_a_request_no_route_matched_is_counted_as_unmatched(client):
    assert (await client.get("/api/no/such/thing")).status == 404
    requests = (await scrape(client))["hive_http_requests"]
    assert requests[("hive_http_requests_total", ("method", "GET"), ("route", "unmatched"),
                     ("status", "404"))] == 1


async def test_answers_refused_by_the_security_checks_are_counted(client):
    """The token, host and origin checks and the request counts are one middleware: a
    refusal is counted with its final status, like any other answer."""
    assert (await client.get("/api/sessions", headers={"Authorization": "Bearer no"})).status \
        == 401
    assert (await client.get("/api/sessions", headers={"Host": "evil.example"})).status == 403
    requests = (await scrape(client))["hive_http_requests"]
    route = ("route", "/api/sessions")
    assert requests[("hive_http_requests_total", ("method", "GET"), route, ("status", "401"))] \
        == 1
    assert requests[("hive_http_requests_total", ("method", "GET"), route, ("status", "403"))] \
        == 1


def test_a_histogram_quantile_is_interpolated_within_its_bucket_as_prometheus_does():
    histogram = Histogram((1.0, 2.0, 4.0))
    assert histogram.quantile(0.5) is None  # nothing observed
    for value in (0.5, 1.5, 1.5, 3.0):
        histogram.observe(value)
    assert histogram.quantile(0.25) == 1.0  # rank 1: all of the first bucket
    assert histogram.quantile(0.5) == 1.5  # rank 2: half of the second bucket (1 to 2)
    assert histogram.quantile(0.875) == 3.0  # rank 3.5: half of the third (2 to 4)
    histogram.observe(9.0)
    histogram.observe(9.0)
    assert histogram.quantile(0.99) == 4.0  # above every bound: the largest bound


def sample(got: dict[str, dict[tuple, float]], family: str, name: str) -> float:
    return got[family][(name,)]


@redis_test
async def test_on_redis_the_node_families_follow_its_leases_and_forwards(
        make_client, tmp_path, redis_url, redis_client):
    client = await make_client(make_settings(tmp_path, redis=redis_url, node_id="n1"))
    node = client.app[keys.REDIS_NODE]
    before = await scrape(client)
    renews = "hive_lease_renew_seconds_count"
    forwards = "hive_forward_seconds_count"

    assert await node.keeper.acquire("held") is not None
    await node.keeper.tick()

    async def handle(command):
        return 7

    owner = CommandLoop(redis_client, "held", "n1", handle)
    owner.start()
    try:
        assert await node.forwarder.forward("held", {"kind": "chat"}, timeout=10) == 7
    finally:
        await owner.stop()
    during = await scrape(client)
    await redis_client.delete("hive:{held}:lease")  # lapsed: the next round gives it up
    assert await node.keeper.tick() == ["held"]
    after = await scrape(client)

    owned = [sample(got, "hive_sessions_owned", "hive_sessions_owned")
             for got in (before, during, after)]
    assert owned == [owned[0], owned[0] + 1, owned[0]]
    assert sample(during, "hive_lease_renew_seconds", renews) >= \
        sample(before, "hive_lease_renew_seconds", renews) + 1
    assert sample(during, "hive_forward_seconds", forwards) == \
        sample(before, "hive_forward_seconds", forwards) + 1
    lost = [sample(got, "hive_leases_lost", "hive_leases_lost_total") for got in (during, after)]
    assert lost[1] == lost[0] + 1
    assert sample(after, "hive_takeovers", "hive_takeovers_total") == stats.TAKEOVERS.value
