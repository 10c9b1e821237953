"""Spend limits, resuming (issue 17): webhook deliveries into a parked session are held and
handed over by each trigger's misfire rule; an agent's budget raised in its agent.json resumes
the sessions it parked once the catalog reloads."""

from __future__ import annotations

import json

from hive_server import keys
from hive_server.services.triggers.hold import RELEASING_FILE
from tests.agent_fixtures import write_agent
from tests.conftest import create_session, make_settings
from tests.queen_support import chat, of_type, open_stream, read_log, until, until_any
from tests.test_webhooks_api import ENV, HOOKS, deliver, standard
from tests.trigger_support import card, post_trigger, timer, write_triggers_agent


async def park(client, stream, session_id: str = "s") -> dict:
    """Chat into a session whose limit cannot fit a call: the failure that parks it."""
    await chat(client, session_id, "hello")
    events = await until_any(stream, "execution_completed", "execution_failed")
    [failed] = of_type(events, "execution_failed")
    assert failed["data"]["error_type"] == "budget_exceeded"
    return failed


async def test_webhook_deliveries_into_a_parked_session_are_held_then_handed_over(
        make_client, tmp_path, fake_clock):
    settings = make_settings(tmp_path, env=ENV)
    write_triggers_agent(settings.agents_dir, "hooks", HOOKS)
    client = await make_client(settings, clock=fake_clock)
    await create_session(client, session_id="s", agent_id="hooks")
    stream = await open_stream(client, "s")
    resp = await client.patch("/api/sessions/s", json={"budget": {"tokens": 1}})
    assert resp.status == 200
    await park(client, stream)
    for n in range(2):
        status, _ = await deliver(client, "open", json.dumps({"n": n}).encode())
        assert status == 202
    status, _ = await deliver(client, "quiet", headers=standard(fake_clock, "msg_q"))
    assert status == 202
    held = await until(stream, "trigger_held")
    while len(of_type(held, "trigger_held")) < 3:
        held += await until(stream, "trigger_held")
    assert [e["data"]["held"] for e in of_type(held, "trigger_held")] == [1, 2, 3]
    assert of_type(read_log(settings.home, "s"), "trigger_fired") == []
    assert (await card(client, "s", "open"))["last_outcome"] == "held"
    resp = await client.patch("/api/sessions/s", json={"budget": None})
    assert (await resp.json())["budget"]["status"] == "ok"
    events = await until(stream, "execution_completed")
    missed = {e["data"]["trigger_id"]: e["data"] for e in of_type(events, "trigger_missed")}
    assert (missed["open"]["missed"], missed["open"]["policy"]) == (2, "fire_once")
    assert (missed["quiet"]["missed"], missed["quiet"]["policy"]) == (1, "skip")
    [fired] = of_type(events, "trigger_fired")
    assert fired["data"]["trigger_id"] == "open" and fired["data"]["missed"] == 2
    assert fired["data"]["payload"] == {"n": 1}  # the latest held delivery's
    assert (await card(client, "s", "quiet"))["last_outcome"] == "skipped"


async def test_an_agent_budget_raised_in_agent_json_resumes_its_sessions(make_client,
                                                                          tmp_path):
    settings = make_settings(tmp_path)
    write_agent(settings.agents_dir, "pricey", {"name": "Pricey", "budget": {"tokens": 10}})
    client = await make_client(settings)
    await create_session(client, session_id="s", agent_id="pricey")
    stream = await open_stream(client, "s")
    failed = await park(client, stream)
    assert (failed["data"]["level"], failed["data"]["limit"]) == ("agent", 10)
    write_agent(settings.agents_dir, "pricey", {"name": "Pricey",
                                                 "budget": {"tokens": 1_000_000}})
    await client.app[keys.CATALOG].reload()
    await until(stream, "budget_resumed")
    await chat(client, "s", "go on")
    assert of_type(await until_any(stream, "execution_completed", "execution_failed"),
                   "execution_completed")
    usage = await (await client.get("/api/usage")).json()
    [agent] = usage["budget"]["limits"]
    assert (agent["level"], agent["scope"], agent["limit"]) == ("agent", "pricey", 1_000_000)
    assert agent["spent"] > 0


async def test_a_hand_over_a_crash_cut_short_is_finished_at_the_next_start(make_client,
                                                                         tmp_path, fake_clock):
    settings = make_settings(tmp_path)
    client = await make_client(settings, clock=fake_clock)
    await create_session(client, session_id="s")
    await post_trigger(client, "s", timer("tick", interval_minutes=60))
    await client.close()
    record = {"trigger_id": "tick", "at": 1, "manual": False, "tick": None, "missed": 0,
              "payload": {"left": "over"}}  # renamed aside, then the process died
    (settings.home / "sessions" / "s" / RELEASING_FILE).write_text(json.dumps(record) + "\n")
    client = await make_client(settings, clock=fake_clock)
    stream = await open_stream(client, "s")
    events = await until(stream, "execution_completed")
    [fired] = of_type(events, "trigger_fired")
    assert (fired["data"]["missed"], fired["data"]["payload"]) == (1, {"left": "over"})
    assert not (settings.home / "sessions" / "s" / RELEASING_FILE).exists()
