"""Spend limits across nodes (issue 14): with ``--redis`` the server-wide and per-agent daily
limits count what every node spent today (``services/budget/ledger_redis.py``). Two apps in
one process on one real Redis, the fake Messages API; the ledgers' rounds are driven with
``flush`` (no sleeps)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hive_server import keys
from tests.agent_fixtures import write_agent
from tests.conftest import ClientFactory, create_session, make_settings
from tests.fakes.fake_anthropic import FakeAnthropic, text_turn
from tests.queen_support import chat, claude, of_type, open_stream
from tests.redis_server import redis_test
from tests.test_budget import end_of_turn

LIMIT = 100_000
SPEND = 48_000  # each node's one call: alone (and with the other's) below LIMIT with the
# next call's estimate (about 4,100 tokens), both together not


async def server_view(client: Any) -> list[dict[str, Any]]:
    resp = await client.get("/api/usage")
    assert resp.status == 200, await resp.text()
    return (await resp.json())["budget"]["limits"]


@redis_test
@pytest.mark.parametrize("level", ["server", "agent"])
async def test_a_daily_limit_counts_the_spend_of_every_node(
        make_client: ClientFactory, tmp_path: Path, redis_url: str, fake: FakeAnthropic,
        fake_url: str, level: str) -> None:
    limit = {"tokens": LIMIT}
    write_agent(tmp_path / "agents", "pricey", {"name": "Pricey"} | (
        {"budget": limit} if level == "agent" else {}))
    daily = {"daily_budget_tokens": LIMIT} if level == "server" else {}
    fake.script(text_turn("n1 spent", input_tokens=SPEND), text_turn("n2 spent",
                                                                     input_tokens=SPEND))
    nodes, streams = [], []
    for name in ("n1", "n2"):
        settings = make_settings(tmp_path / name, redis=redis_url, node_id=name,
                                 agents_dir=tmp_path / "agents", queens_dir=tmp_path / "queens",
                                 **daily)
        client = await make_client(settings, llm=claude(fake_url))
        await create_session(client, session_id=name, agent_id="pricey")
        streams.append(await open_stream(client, name))
        await chat(client, name, "spend")  # each node's call fits (the other's spend or not)
        assert of_type(await end_of_turn(streams[-1]), "execution_completed")
        nodes.append(client)
    for client in (*nodes, nodes[0]):  # n1 sends; n2 sends and reads both; n1 reads both
        await client.app[keys.BUDGETS].ledger.flush()
    views = [[v for v in await server_view(client) if v["level"] == level] for client in nodes]
    assert views[0] == views[1] and views[0][0]["spent"] >= 2 * SPEND
    for client, name, stream in zip(nodes, ("n1", "n2"), streams, strict=True):
        await chat(client, name, "more")
        [failed] = of_type(await end_of_turn(stream), "execution_failed")
        assert failed["data"]["error_type"] == "budget_exceeded"
        assert failed["data"]["level"] == level and failed["data"]["limit"] == LIMIT
        assert failed["data"]["spent"] == views[0][0]["spent"]
