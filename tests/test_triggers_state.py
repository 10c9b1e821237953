"""What a session remembers about its triggers when their definitions change under it: a timer
re-configured while active and the server restarted, a colony unloaded and loaded again, and
another agent whose triggers share ids with the first one's."""

from __future__ import annotations

import pytest

from hive_server import keys
from hive_server.core.clock import FakeClock
from tests.conftest import create_session
from tests.queen_support import of_type, open_stream, read_log, until
from tests.trigger_support import (
    card,
    cards,
    ms,
    next_fired,
    post_trigger,
    timer,
    write_triggers_agent,
)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.mark.parametrize("config,first", [
    ({"interval_minutes": 1}, 31 * 60),
    ({"cron": "*/5 * * * *"}, 35 * 60),
    ({"interval_minutes": 60, "misfire": "fire_once"}, 60 * 60),
], ids=["to-interval", "to-cron", "same-schedule"])
async def test_a_timer_patched_while_active_has_missed_nothing_after_a_restart(
        make_client, settings, clock, config, first):
    t0 = clock.time()  # a whole hour
    client = await make_client(settings, clock=clock)
    await create_session(client, session_id="s")
    await post_trigger(client, "s", timer("tick", interval_minutes=60))
    await clock.advance(30 * 60)
    resp = await client.patch("/api/sessions/s/triggers/tick", json={"trigger_config": config})
    assert (await resp.json())["next_fire_at"] == ms(t0 + first)
    await client.close()

    client = await make_client(settings, clock=clock)  # restarted at once: nothing was missed
    stream = await open_stream(client, "s", after_seq=0)
    assert (await card(client, "s", "tick"))["next_fire_at"] == ms(t0 + first)
    await clock.advance(t0 + first - clock.time())
    event, events = await next_fired(stream)
    assert event["data"]["tick"] == ms(t0 + first) and event["data"]["missed"] == 0
    assert of_type(events, "trigger_missed") == []


GARDEN = [
    {"id": "water", "trigger_type": "timer", "trigger_config": {"interval_minutes": 10},
     "task": "water the garden"},
    {"id": "weed", "trigger_type": "timer", "trigger_config": {"interval_minutes": 30},
     "task": "pull the weeds"},
]
ORCHARD = [
    {"id": "water", "trigger_type": "timer", "trigger_config": {"interval_minutes": 20},
     "task": "water the trees"},
    {"id": "weed", "trigger_type": "timer", "trigger_config": {"interval_minutes": 45},
     "task": "mow under the trees"},
]


async def load(client, agent_id: str) -> None:
    resp = await client.post("/api/sessions/s/colony", json={"agent_id": agent_id})
    assert resp.status == 201, await resp.text()


async def unload(client) -> None:
    assert (await client.delete("/api/sessions/s/colony")).status == 200


async def test_another_agent_does_not_inherit_the_edits_made_to_the_first_ones_triggers(
        make_client, settings, clock):
    write_triggers_agent(settings.agents_dir, "garden", GARDEN)
    write_triggers_agent(settings.agents_dir, "orchard", ORCHARD)
    client = await make_client(settings, clock=clock)
    await create_session(client, session_id="s", agent_id="garden")
    resp = await client.patch("/api/sessions/s/triggers/water", json={
        "task": "more water", "trigger_config": {"interval_minutes": 5}})
    assert resp.status == 200
    assert (await client.delete("/api/sessions/s/triggers/weed")).status == 200
    await unload(client)

    await load(client, "orchard")
    now = await cards(client, "s")
    assert set(now) == {"water", "weed"}
    assert now["water"]["task"] == "water the trees"
    assert now["water"]["trigger_config"] == {"interval_minutes": 20}
    assert now["weed"]["task"] == "mow under the trees" and now["weed"]["active"] is True
    await client.close()
    client = await make_client(settings, clock=clock)
    assert (await card(client, "s", "water"))["task"] == "water the trees"
    assert client.app[keys.SCHEDULER].armed_keys == {"s/water", "s/weed"}


async def test_a_colony_loaded_again_keeps_its_trigger_stats_and_catches_nothing_up(
        make_client, settings, clock):
    write_triggers_agent(settings.agents_dir, "garden", GARDEN)
    client = await make_client(settings, clock=clock)
    await create_session(client, session_id="s", agent_id="garden")
    stream = await open_stream(client, "s")
    assert (await client.post("/api/sessions/s/triggers/weed/deactivate")).status == 200
    for _ in range(2):
        await clock.advance(600)
        await next_fired(stream)
    await unload(client)
    await clock.advance(3600 + 120)
    await load(client, "garden")
    await post_trigger(client, "s", timer("own", interval_minutes=60))  # the state is saved

    now = await cards(client, "s")
    assert now["water"]["fire_count"] == 2 and now["water"]["active"] is True
    assert now["water"]["next_fire_at"] == ms(clock.time() + 480)
    assert now["weed"]["active"] is False
    await until(stream, "trigger_available")
    events = read_log(settings.home, "s")
    assert of_type(events, "trigger_missed") == []
    assert len(of_type(events, "trigger_fired")) == 2
    await unload(client)
    await load(client, "garden")
    assert (await card(client, "s", "water"))["fire_count"] == 2


async def test_a_folder_trigger_whose_id_an_api_trigger_took_is_reported_not_dropped_silently(
        make_client, settings, clock):
    write_triggers_agent(settings.agents_dir, "garden", GARDEN)
    client = await make_client(settings, clock=clock)
    await create_session(client, session_id="s")
    stream = await open_stream(client, "s")
    await post_trigger(client, "s", timer("water", "my own watering", interval_minutes=7))
    await load(client, "garden")
    events = await until(stream, "trigger_invalid")
    (invalid,) = of_type(events, "trigger_invalid")
    assert invalid["data"]["trigger_id"] == "water" and "API" in invalid["data"]["error"]
    now = await cards(client, "s")
    assert now["water"]["source"] == "api" and now["water"]["task"] == "my own watering"
    assert now["weed"]["source"] == "folder"
    assert client.app[keys.SCHEDULER].armed_keys == {"s/water", "s/weed"}


@pytest.mark.parametrize("enabled", [True, False])
async def test_a_timer_created_then_killed_before_its_first_tick_catches_up_from_its_creation(
        make_client, settings, clock, enabled):
    t0 = clock.time()
    client = await make_client(settings, clock=clock)
    await create_session(client, session_id="s")
    await post_trigger(client, "s", timer("tick", interval_minutes=10) | {"enabled": enabled})
    await client.close()
    await clock.advance(25 * 60)

    client = await make_client(settings, clock=clock)
    stream = await open_stream(client, "s", after_seq=0)
    if not enabled:
        assert (await card(client, "s", "tick"))["next_fire_at"] is None
        on = await (await client.post("/api/sessions/s/triggers/tick/activate")).json()
        assert on["next_fire_at"] == ms(clock.time() + 600)
        return
    event, events = await next_fired(stream)
    (missed,) = of_type(events, "trigger_missed")
    assert (missed["data"]["missed"], missed["data"]["first_missed_at"]) == (2, ms(t0 + 600))
    assert event["data"]["tick"] == ms(t0 + 1200) and event["data"]["missed"] == 2
    assert (await card(client, "s", "tick"))["next_fire_at"] == ms(t0 + 1800)
