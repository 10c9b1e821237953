"""GET /api/usage: the accounting summed over the sessions that the history list's filters
select (live and cold), against the hand-computed figures of tests/session_log.py."""

from __future__ import annotations

import pytest

from hive_server.models.usage import UsageTotals
from tests.conftest import create_session
from tests.queen_support import chat, open_stream, read_log, until
from tests.session_log import COST, write_session


async def usage(client, **params: str) -> dict:
    resp = await client.get("/api/usage", params=params)
    assert resp.status == 200, await resp.text()
    return await resp.json()


@pytest.fixture
async def sessions(make_client, settings):
    """cold1 (agent notes, queen warden, from its log), cold2 (agent mail, queen keeper,
    its totals in meta), both on disk before the server starts, and a live session "s" with
    one offline turn: the server's client and the live session's log."""
    write_session(settings.home, "cold1")
    stored = UsageTotals(through_seq=25, turns=10, input_tokens=1000, cost_usd=0.5,
                         trigger_fires={"hourly": 4}).model_dump()
    write_session(settings.home, "cold2", agent_id="mail", queen_id="keeper",
                  title="Mail digest", created_at="2026-11-28T08:00:00+00:00", usage=stored)
    client = await make_client(settings)
    await create_session(client, session_id="s")
    stream = await open_stream(client, "s")
    await chat(client, "s", "hello")
    await until(stream, "execution_completed")
    return client, read_log(settings.home, "s")


async def test_usage_sums_every_session_live_and_cold(sessions):
    client, log = sessions
    live_in = sum(e["data"]["input_tokens"] for e in log
                  if e["type"] == "llm_turn_complete")
    body = await usage(client)
    total = body["usage"]
    assert body["sessions"] == 3
    assert total["turns"] == 4 + 10 + 1
    assert total["tokens"]["input"] == 2560 + 1000 + live_in
    assert total["cost_usd"] == pytest.approx(COST + 0.5, abs=1e-9)
    assert total["trigger_fires"] == {"daily": 2, "hourly": 4}
    assert total["workers"] == {"started": 2, "completed": 1, "failed": 1, "running": 0}
    assert total["llm_latency_ms"]["count"] == 3 + 1


@pytest.mark.parametrize(("params", "expected"), [
    ({"agent_id": "notes"}, {"sessions": 1, "turns": 4}),
    ({"agent_id": "mail"}, {"sessions": 1, "turns": 10}),
    ({"queen_id": "keeper"}, {"sessions": 1, "turns": 10}),
    ({"q": "digest"}, {"sessions": 1, "turns": 10}),
    ({"status": "stopped"}, {"sessions": 2, "turns": 14}),
    ({"status": "stopped", "agent_id": "notes"}, {"sessions": 1, "turns": 4}),
    ({"created_before": "2026-11-28T12:00:00Z"}, {"sessions": 1, "turns": 10}),
    ({"agent_id": "nobody"}, {"sessions": 0, "turns": 0}),
])
async def test_usage_takes_the_history_filters(sessions, params, expected):
    client, _ = sessions
    body = await usage(client, **params)
    assert {"sessions": body["sessions"], "turns": body["usage"]["turns"]} == expected
    listed = await (await client.get("/api/sessions/history", params=params)).json()
    assert listed["total"] == expected["sessions"]  # the same filters select the same sessions


async def test_no_session_sums_to_zero_and_null_percentiles(client):
    body = await usage(client)
    assert body["sessions"] == 0 and body["usage"]["cost_usd"] == 0.0
    assert body["usage"]["llm_latency_ms"] == {"count": 0, "p50": None, "p95": None}


@pytest.mark.parametrize("query", ["limit=5", "nope=1", "status=asleep",
                                   "created_after=yesterday"])
async def test_a_bad_or_unknown_parameter_is_400(client, query):
    resp = await client.get(f"/api/usage?{query}")
    assert resp.status == 400 and (await resp.json())["code"] == "invalid_query"
