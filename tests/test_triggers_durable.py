"""Triggers across restarts and from agent folders, on one fake clock shared by both runs of
the server: misfire after an outage, no tick fired twice, invalid folder definitions, and the
state kept in ``<session>/triggers.json`` (never in the agent folder)."""

from __future__ import annotations

import itertools

import pytest

from hive_server import keys
from hive_server.core.clock import FakeClock
from tests import agent_fixtures
from tests.agent_fixtures import MEETING_TOOLS, Meeting, call_line, worker_line
from tests.conftest import create_session
from tests.queen_support import chat, of_type, open_stream, until
from tests.sse_reader import read_until
from tests.trigger_support import (
    card,
    cards,
    fired,
    ms,
    next_fired,
    post_trigger,
    saved_triggers,
    snapshot,
    timer,
    write_triggers_agent,
)

INTERVAL = 600


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def fire_once_before_the_outage(make_client, settings, clock, **config):
    """A session whose 10-minute timer fired once; the server is then stopped."""
    client = await make_client(settings, clock=clock)
    await create_session(client, session_id="s")
    stream = await open_stream(client, "s")
    await post_trigger(client, "s", timer("tick", interval_minutes=10, **config))
    await clock.advance(INTERVAL)
    event, _ = await next_fired(stream)
    assert event["data"]["fire_count"] == 1
    stream.close()
    await client.close()


def assert_ticks_increase(events: list[dict]) -> list[dict]:
    scheduled = [e["data"] for e in fired(events) if not e["data"]["manual"]]
    for before, after in itertools.pairwise(scheduled):
        assert after["tick"] > before["tick"] and after["fire_count"] > before["fire_count"]
    return scheduled


async def test_fire_once_reports_the_missed_ticks_and_fires_once(make_client, settings, clock):
    t0 = clock.time()
    await fire_once_before_the_outage(make_client, settings, clock)
    await clock.advance(3 * 3600 + 60)  # ticks t0+1200 ... t0+11400 pass while it is down
    client = await make_client(settings, clock=clock)
    stream = await open_stream(client, "s", after_seq=0)
    _, seen = await next_fired(stream)  # the fire before the restart
    catch_up, events = await next_fired(stream)
    (missed,) = of_type(events, "trigger_missed")
    assert missed["data"] == {
        "trigger_id": "tick", "missed": 18, "capped": False, "first_missed_at": ms(t0 + 1200),
        "last_missed_at": ms(t0 + 11400), "policy": "fire_once"}
    assert catch_up["data"]["tick"] == ms(t0 + 11400) and catch_up["data"]["missed"] == 18
    assert catch_up["data"]["fire_count"] == 2
    assert (await card(client, "s", "tick"))["next_fire_at"] == ms(t0 + 12000)
    await clock.advance(t0 + 12000 - clock.time())
    on_time, later = await next_fired(stream)
    assert on_time["data"]["tick"] == ms(t0 + 12000) and on_time["data"]["missed"] == 0
    assert len(assert_ticks_increase(seen + events + later)) == 3


async def test_skip_reports_the_missed_ticks_and_fires_nothing(make_client, settings, clock):
    t0 = clock.time()
    await fire_once_before_the_outage(make_client, settings, clock, misfire="skip")
    await clock.advance(2 * 3600)
    client = await make_client(settings, clock=clock)
    stream = await open_stream(client, "s", after_seq=0)
    await next_fired(stream)
    (missed,) = of_type(await until(stream, "trigger_missed"), "trigger_missed")
    assert missed["data"]["missed"] == 12 and missed["data"]["policy"] == "skip"
    assert missed["data"]["last_missed_at"] == ms(t0 + 7800)
    await client.close()

    client = await make_client(settings, clock=clock)  # the skip itself was stored
    stream = await open_stream(client, "s", after_seq=0)
    await clock.advance(t0 + 8400 - clock.time())
    events = []
    while len(fired(events)) < 2:
        events += (await next_fired(stream))[1]
    assert len(of_type(events, "trigger_missed")) == 1
    assert [e["data"]["tick"] for e in fired(events)] == [ms(t0 + 600), ms(t0 + 8400)]
    assert fired(events)[-1]["data"]["fire_count"] == 2
    assert (await card(client, "s", "tick"))["fire_count"] == 2


async def test_a_restart_never_fires_a_handled_tick_again(make_client, settings, clock):
    t0 = clock.time()
    await fire_once_before_the_outage(make_client, settings, clock)
    for _ in range(2):  # restart twice without time passing
        client = await make_client(settings, clock=clock)
        assert (await card(client, "s", "tick"))["next_fire_at"] == ms(t0 + 1200)
        await client.close()
    client = await make_client(settings, clock=clock)
    stream = await open_stream(client, "s", after_seq=0)
    await clock.advance(INTERVAL)
    _, seen = await next_fired(stream)
    second, events = await next_fired(stream)
    assert second["data"]["tick"] == ms(t0 + 1200) and second["data"]["fire_count"] == 2
    assert of_type(events, "trigger_missed") == []
    assert len(of_type(events, "session_started")) == 3
    assert len(assert_ticks_increase(seen + events)) == 2


# -- definitions from an agent folder ------------------------------------------------------------

MIXED = [
    {"id": "every-minute", "trigger_type": "timer", "trigger_config": {"interval_minutes": 1},
     "task": "count"},
    {"id": "bad-cron", "trigger_type": "timer", "trigger_config": {"cron": "61 * * * *"}},
    {"id": "bad-zone", "trigger_type": "timer",
     "trigger_config": {"cron": "0 9 * * *", "timezone": "Mars/Olympus"}},
    {"id": "zero", "trigger_type": "timer", "trigger_config": {"interval_minutes": 0}},
    {"id": "negative", "trigger_type": "timer", "trigger_config": {"interval_minutes": -1}},
    {"id": "tiny", "trigger_type": "timer", "trigger_config": {"interval_minutes": 0.0001}},
    {"id": "typo", "trigger_type": "timer", "trigger_config": {"interval_minuts": 5}},
    {"id": "every-minute", "trigger_type": "timer", "trigger_config": {"interval_minutes": 2}},
    "not an object",
    {"id": "paused", "trigger_type": "timer", "trigger_config": {"interval_minutes": 1},
     "enabled": False},
    {"id": "push", "trigger_type": "webhook", "trigger_config": {"signature": "none"}},
]
BAD = ["bad-cron", "bad-zone", "zero", "negative", "tiny", "typo", "every-minute", None]


async def test_invalid_folder_triggers_are_reported_and_never_started(
        make_client, settings, clock):
    write_triggers_agent(settings.agents_dir, "mixed", MIXED)
    client = await make_client(settings, clock=clock)
    await create_session(client, session_id="s", agent_id="mixed")
    stream = await open_stream(client, "s", after_seq=0)
    events = await until(stream, "worker_colony_loaded")
    events += await until(stream, "trigger_available")
    invalid = of_type(events, "trigger_invalid")
    assert [e["data"]["trigger_id"] for e in invalid] == BAD
    assert all(e["data"]["error"] and e["data"]["source"] == "folder" for e in invalid)
    resp = await client.get("/api/sessions/s/triggers")
    listed = (await resp.json())["triggers"]
    good = {c["id"]: c for c in listed if c["error"] is None}
    assert set(good) == {"every-minute", "paused", "push"}
    broken = [c for c in listed if c["error"] is not None]
    assert [c["id"] for c in broken] == BAD
    assert all(c["active"] is False and c["next_fire_at"] is None for c in broken)
    assert "interval_minutes" in broken[3]["error"]
    assert client.app[keys.SCHEDULER].armed_keys == {"s/every-minute"}

    t0 = clock.time()
    for minute in range(1, 31):
        await clock.advance(60)
        event, more = await next_fired(stream)
        events += more
        assert event["data"]["trigger_id"] == "every-minute"
        assert event["data"]["tick"] == ms(t0 + 60 * minute)
    assert len(fired(events)) == 30 and len(assert_ticks_increase(events)) == 30
    assert len(client.app[keys.SCHEDULER]) == 1
    listed = (await (await client.get("/api/sessions/s/triggers")).json())["triggers"]
    assert [c["fire_count"] for c in listed if c["id"] == "every-minute"] == [30, 0]


GARDEN = [
    {"id": "water", "trigger_type": "timer", "trigger_config": {"interval_minutes": 10},
     "task": "water the plants"},
    {"id": "push", "trigger_type": "webhook", "trigger_config": {"signature": "none"}},
    {"id": "extra", "trigger_type": "timer", "trigger_config": {"cron": "0 * * * *"}},
]


async def test_fire_stats_and_the_active_set_live_in_the_session_folder(
        make_client, settings, clock):
    folder = write_triggers_agent(settings.agents_dir, "garden", GARDEN)
    before = snapshot(folder)
    client = await make_client(settings, clock=clock)
    await create_session(client, session_id="s", agent_id="garden")
    stream = await open_stream(client, "s")
    await post_trigger(client, "s", timer("mine", interval_minutes=60))
    for _ in range(2):
        await clock.advance(INTERVAL)
        await next_fired(stream)
    assert (await client.post("/api/sessions/s/triggers/push/run")).status == 202
    resp = await client.patch("/api/sessions/s/triggers/water", json={"task": "more water"})
    assert resp.status == 200
    assert (await client.post("/api/sessions/s/triggers/push/deactivate")).status == 200
    assert (await client.delete("/api/sessions/s/triggers/extra")).status == 200
    assert snapshot(folder) == before, "the agent folder is never written"

    saved = saved_triggers(settings.home, "s")
    assert saved["state"]["water"]["fire_count"] == 2 and saved["state"]["water"]["active"]
    assert saved["state"]["push"] == saved["state"]["push"] | {"fire_count": 1,
                                                                "active": False}
    assert [spec["task"] for spec in saved["patched"]] == ["more water"]
    assert saved["removed"] == ["extra"] and [s["id"] for s in saved["api"]] == ["mine"]
    await client.close()

    client = await make_client(settings, clock=clock)
    after = await cards(client, "s")
    assert set(after) == {"water", "push", "mine"}
    assert after["water"]["fire_count"] == 2 and after["water"]["task"] == "more water"
    assert after["water"]["active"] and after["water"]["next_fire_at"] == ms(clock.time() + 600)
    assert after["push"]["active"] is False and after["push"]["fire_count"] == 1
    assert after["mine"]["active"] and after["mine"]["source"] == "api"
    assert client.app[keys.SCHEDULER].armed_keys == {"s/water", "s/mine"}
    assert snapshot(folder) == before


async def test_a_deleted_folder_trigger_stays_deleted_after_an_api_namesake_is_deleted(
        make_client, settings, clock):
    write_triggers_agent(settings.agents_dir, "garden", GARDEN)
    client = await make_client(settings, clock=clock)
    await create_session(client, session_id="s", agent_id="garden")
    assert (await client.delete("/api/sessions/s/triggers/water")).status == 200
    await post_trigger(client, "s", timer("water", interval_minutes=7))
    assert (await client.delete("/api/sessions/s/triggers/water")).status == 200
    assert (await client.delete("/api/sessions/s/colony")).status == 200
    assert (await client.post("/api/sessions/s/colony", json={"agent_id": "garden"})).ok
    assert set(await cards(client, "s")) == {"push", "extra"}
    await client.close()
    client = await make_client(settings, clock=clock)
    assert set(await cards(client, "s")) == {"push", "extra"}
    assert client.app[keys.SCHEDULER].armed_keys == {"s/extra"}


@pytest.fixture
def meeting(settings) -> Meeting:
    write_triggers_agent(settings.agents_dir, "meeting", [], tools=MEETING_TOOLS)
    agent_fixtures.MEETING = Meeting()
    return agent_fixtures.MEETING


async def test_coalesced_fires_stay_one_pending_input_across_a_restart(
        make_client, settings, clock, meeting):
    client = await make_client(settings, clock=clock)
    await create_session(client, session_id="s", agent_id="meeting")
    stream = await open_stream(client, "s")
    await post_trigger(client, "s", timer("tick", task="tidy up", interval_minutes=1))
    await chat(client, "s", worker_line(call_line("hold", name="busy")))
    await read_until(stream, lambda e: e["type"] == "tool_call_started"
                     and e["data"]["tool_name"] == "hold")
    for _ in range(3):
        await clock.advance(60)
        await next_fired(stream)
    await until(stream, "client_input_received")  # the last fire is on disk
    stream.close()
    await client.close()
    assert meeting.cancelled == ["busy"]

    client = await make_client(settings, clock=clock)
    stream = await open_stream(client, "s", after_seq=0)
    before = await until(stream, "session_started")
    before += await until(stream, "session_started")
    first = next(e for e in of_type(before, "client_input_received")
                 if e["data"]["source"] == "trigger")
    assert first["data"]["coalesced_into"] is None
    said = await chat(client, "s", "hello again")
    events = await until(stream, "execution_completed")
    events += await until(stream, "execution_completed")
    starts = [e["data"]["input_seq"] for e in of_type(events, "execution_started")]
    assert starts == [first["seq"], said["seq"]], "the coalesced fires were not re-queued"
