"""GET /api/sessions/{id}/stats: turns, tool calls, tokens, cost, latency, workers and trigger
fires, from the session's events, for live, stopped and resumed sessions; the totals kept in
meta.json. The hand-computed figures are in tests/session_log.py."""

from __future__ import annotations

import dataclasses

import pytest

from hive_server.llm.base import Usage
from hive_server.llm.pricing import cost_usd
from hive_server.models.usage import Histogram, UsageTotals
from hive_server.services.journal.accounting import _record, merge, percentile
from tests.conftest import create_session
from tests.fakes import text_turn
from tests.queen_support import chat, claude, of_type, open_stream, read_log, until
from tests.session_log import COST, SESSION, read_meta, write_session

HAND = {"turns": 4, "tool_calls": 3, "tool_errors": 0,
        "tokens": {"input": 2560, "output": 320, "cache_read": 1000, "cache_write": 200},
        "cost_usd": COST, "unpriced_turns": 1,
        "workers": {"started": 2, "completed": 1, "failed": 1, "running": 0},
        "trigger_fires": {"daily": 2}}


def without_latency(usage: dict) -> dict:
    return {k: v for k, v in usage.items() if k not in ("llm_latency_ms", "ttft_ms")}


def test_the_price_table_prices_cache_reads_and_writes_and_the_offline_model_at_zero():
    usage = Usage(1500, 100, cached_tokens=1000, cache_creation_tokens=200)
    assert cost_usd("claude-sonnet-4-5", usage) == pytest.approx(0.00345, abs=1e-12)
    assert cost_usd("claude-opus-4-5-20251101", Usage(1_000_000, 1_000_000)) == 30.0
    assert cost_usd("claude-3-haiku-20240307", Usage(1_000_000, 0)) == 0.25
    assert cost_usd("offline-1", Usage(5000, 700)) == 0.0
    assert cost_usd("mystery-model", Usage(10, 10)) is None


def test_latency_percentiles_come_from_mergeable_histograms():
    one, two = UsageTotals(), UsageTotals()
    for value in (800.0, 5.0):
        _record(one.latency, value)
    _record(two.latency, 1200.0)
    merged = merge([one, two]).latency
    assert merged.count == 3 and (merged.min_ms, merged.max_ms) == (5.0, 1200.0)
    assert 800.0 <= percentile(merged, 0.5) <= 800.0 * 1.05  # one bucket is 5% wide
    assert percentile(merged, 0.95) == 1200.0  # clamped to the exact maximum
    assert percentile(Histogram(), 0.5) is None


async def test_a_cold_session_is_counted_from_its_log_against_hand_computed_figures(
        make_client, settings):
    write_session(settings.home)
    client = await make_client(settings)
    stats = await (await client.get(f"/api/sessions/{SESSION}/stats")).json()
    assert stats["live"] is False and stats["queen"] is None and stats["uptime_seconds"] is None
    assert stats["last_seq"] == 25 and stats["colony_id"] == "notes"
    assert without_latency(stats["usage"]) == HAND
    assert stats["workers"] == HAND["workers"]
    latency, ttft = stats["usage"]["llm_latency_ms"], stats["usage"]["ttft_ms"]
    assert latency["count"] == 3 and latency["p95"] == 1200.0
    assert 800.0 <= latency["p50"] <= 840.0
    assert ttft["count"] == 3 and ttft["p95"] == 300.0 and 120.0 <= ttft["p50"] <= 126.0


async def test_cold_totals_in_meta_are_used_and_only_later_events_are_read(make_client, settings):
    stored = UsageTotals(through_seq=15, turns=100, input_tokens=7, cost_usd=1.5,
                         trigger_fires={"old": 3}).model_dump()
    write_session(settings.home, usage=stored)
    client = await make_client(settings)
    usage = (await (await client.get(f"/api/sessions/{SESSION}/stats")).json())["usage"]
    # after seq 15: the unpriced turn (10 in / 10 out), two fires, one failed worker
    assert usage["turns"] == 101 and usage["tokens"]["input"] == 17
    assert usage["cost_usd"] == 1.5 and usage["unpriced_turns"] == 1
    assert usage["trigger_fires"] == {"daily": 2, "old": 3}
    assert usage["workers"] == {"started": 1, "completed": 0, "failed": 1, "running": 0}


async def test_totals_in_meta_through_the_last_seq_are_the_answer(make_client, settings):
    stored = UsageTotals(through_seq=25, turns=7, cost_usd=0.25).model_dump()
    write_session(settings.home, usage=stored)
    client = await make_client(settings)
    usage = (await (await client.get(f"/api/sessions/{SESSION}/stats")).json())["usage"]
    assert usage["turns"] == 7 and usage["cost_usd"] == 0.25  # the log has 4 turns


async def test_stats_of_an_unknown_session_is_404(client):
    resp = await client.get("/api/sessions/nope/stats")
    assert resp.status == 404 and (await resp.json())["code"] == "session_not_found"


def log_usage(events: list[dict]) -> dict:
    turns = of_type(events, "llm_turn_complete")
    return {"turns": len(turns),
            "input": sum(e["data"]["input_tokens"] for e in turns),
            "output": sum(e["data"]["output_tokens"] for e in turns),
            "tool_calls": len(of_type(events, "tool_call_started"))}


async def test_a_live_session_counts_its_turns_and_keeps_the_totals_in_meta(client, api, settings):
    await api.create_session(session_id="s")
    await api.chat("s", "call:get_time {}")
    await api.wait_for("s", "execution_completed")
    stats = await (await client.get("/api/sessions/s/stats")).json()
    expected = log_usage(read_log(settings.home, "s"))
    usage = stats["usage"]
    assert stats["live"] is True and stats["queen"]["executions"] == 1
    assert expected["turns"] == 2 and expected["tool_calls"] == 1
    assert expected["input"] > 0  # the offline model counts tokens
    assert (usage["turns"], usage["tokens"]["input"], usage["tokens"]["output"],
            usage["tool_calls"]) == (expected["turns"], expected["input"], expected["output"],
                                     expected["tool_calls"])
    assert usage["cost_usd"] == 0.0 and usage["unpriced_turns"] == 0
    assert usage["llm_latency_ms"]["count"] == expected["turns"]
    assert usage["llm_latency_ms"]["p50"] is not None

    assert (await client.delete("/api/sessions/s")).status == 200
    meta = read_meta(settings.home / "sessions" / "s")
    assert meta["usage"]["turns"] == expected["turns"]
    assert meta["usage"]["through_seq"] == read_log(settings.home, "s")[-1]["seq"]
    cold = await (await client.get("/api/sessions/s/stats")).json()
    assert cold["live"] is False and cold["usage"] == usage


async def test_a_resumed_session_counts_its_earlier_runs_from_the_log(make_client, settings):
    write_session(settings.home, bad_line=False)  # its meta.json holds no totals
    client = await make_client(settings)
    await create_session(client, queen_resume_from=SESSION)
    stats = await (await client.get(f"/api/sessions/{SESSION}/stats")).json()
    assert stats["live"] is True
    assert {k: stats["usage"][k] for k in ("turns", "tokens", "cost_usd", "trigger_fires")} == {
        k: HAND[k] for k in ("turns", "tokens", "cost_usd", "trigger_fires")}
    stream = await open_stream(client, SESSION)
    await chat(client, SESSION, "hello again")
    await until(stream, "execution_completed")
    usage = (await (await client.get(f"/api/sessions/{SESSION}/stats")).json())["usage"]
    assert usage["turns"] == 5 and usage["cost_usd"] == COST
    assert (await client.delete(f"/api/sessions/{SESSION}")).status == 200
    stored = read_meta(settings.home / "sessions" / SESSION)["usage"]
    assert stored["turns"] == 5 and stored["cost_usd"] == COST


async def test_claude_turns_are_priced_with_their_cache_reads_and_writes(
        fake, fake_url, make_client, settings):
    """Through the real SDK: the API's input_tokens leave the cached ones out. Turn 1: 25 +
    1000 read + 200 written in, 40 out; turn 2: 100 in, 10 out. claude-sonnet-5-5 ($3 / $15):
    25*3e-6 + 1000*3e-7 + 200*3.75e-6 + 40*15e-6 + 100*3e-6 + 10*15e-6 = 0.002175."""
    client = await make_client(settings, llm=claude(fake_url))
    fake.script(dataclasses.replace(text_turn("From the cache.", output_tokens=40),
                                    cache_read_tokens=1000, cache_write_tokens=200),
                text_turn("Fresh.", input_tokens=100, output_tokens=10))
    await create_session(client, session_id="s", model="claude-sonnet-5-5")
    stream = await open_stream(client, "s")
    for message in ("one", "two"):
        await chat(client, "s", message)
        await until(stream, "execution_completed")
    usage = (await (await client.get("/api/sessions/s/stats")).json())["usage"]
    assert usage["tokens"] == {"input": 1325, "output": 50, "cache_read": 1000,
                               "cache_write": 200}
    assert usage["cost_usd"] == pytest.approx(0.002175, abs=1e-12)
    assert usage["turns"] == 2 and usage["unpriced_turns"] == 0
    assert usage["ttft_ms"]["count"] == 2 and usage["llm_latency_ms"]["count"] == 2
    assert usage["ttft_ms"]["p95"] <= usage["llm_latency_ms"]["p95"]
