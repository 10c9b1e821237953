"""Trigger changes that meet each other: activate/deactivate/delete while an activation is being
stored or a tick is firing, a system clock that jumps back, and the events a created trigger
announces. The service calls run on the real app (the same objects the routes call) so that
two of them can be started at once in a known order."""

from __future__ import annotations

import asyncio

import pytest

from hive_server import keys
from hive_server.core.clock import FakeClock
from hive_server.services.triggers.session_triggers import SessionTriggers
from tests.hive_api import HiveApi
from tests.queen_support import of_type, until
from tests.trigger_support import ms, next_fired, timer, utc


@pytest.fixture
async def client(client):
    await HiveApi(client).create_session(session_id="s")
    return client


@pytest.fixture
async def stream(api):
    resp = await api.events("s")
    yield resp
    resp.close()


def triggers_of(client, session_id: str = "s") -> SessionTriggers:
    return client.app[keys.SESSIONS].get(session_id).triggers


async def test_deactivate_during_an_activation_leaves_the_trigger_off_and_unarmed(
        client, api, fake_clock):
    await api.add_trigger("s", timer("tick", interval_minutes=1) | {"enabled": False})
    triggers = triggers_of(client)
    await asyncio.gather(triggers.activate("tick"), triggers.deactivate("tick"))
    assert (await api.trigger("s", "tick"))["active"] is False
    assert client.app[keys.SCHEDULER].armed_keys == frozenset()

    resp = await client.post("/api/sessions/s/triggers/tick/activate")
    assert resp.status == 200, await resp.text()
    await fake_clock.advance(60)
    assert (await api.trigger("s", "tick"))["fire_count"] == 1


async def test_delete_during_an_activation_leaves_no_timer_behind(client, api, fake_clock):
    await api.add_trigger("s", timer("tick", interval_minutes=1) | {"enabled": False})
    triggers = triggers_of(client)
    await asyncio.gather(triggers.activate("tick"), triggers.remove("tick"))
    assert await api.triggers("s") == {}
    assert client.app[keys.SCHEDULER].armed_keys == frozenset()

    again = await api.add_trigger("s", timer("tick", interval_minutes=5))
    assert again["active"] is True
    await fake_clock.advance(300)
    assert (await api.trigger("s", "tick"))["fire_count"] == 1


CHANGES = {"deactivate": "trigger_deactivated", "remove": "trigger_removed",
           "update": "trigger_updated"}


@pytest.mark.parametrize("change", CHANGES)
async def test_a_change_during_a_fire_lets_the_fire_finish_whole(client, api, stream, fake_clock,
                                                                 change):
    await api.add_trigger("s", timer("tick", interval_minutes=1))
    triggers = triggers_of(client)
    await fake_clock.advance(60)  # the tick's fire is now under way (disk writes pending)
    if change == "update":
        await triggers.update("tick", "new task", {"interval_minutes": 2})
    else:
        await getattr(triggers, change)("tick")
    events = await until(stream, CHANGES[change])
    (fire,) = of_type(events, "trigger_fired")
    inputs = [e for e in of_type(events, "client_input_received")
              if e["data"].get("trigger_seq") == fire["seq"]]
    assert len(inputs) == 1, "the fire that was logged reached the queen"
    assert inputs[0]["data"]["text"].endswith("Task: water the plants")
    if change != "remove":
        assert (await api.trigger("s", "tick"))["fire_count"] == 1


async def test_activation_after_the_clock_was_set_back_never_refires_a_handled_tick(
        make_client, settings):
    clock = FakeClock(utc("2027-01-15T08:00"))
    client = await make_client(settings, clock=clock)
    api = HiveApi(client)
    await api.create_session(session_id="s")
    stream = await api.events("s")
    await api.add_trigger("s", timer("daily", cron="0 9 * * *"))
    await clock.advance(3600)
    event, _ = await next_fired(stream)
    assert event["data"]["tick"] == ms(utc("2027-01-15T09:00"))

    await clock.jump(-300)  # someone sets the system clock back five minutes
    assert (await client.post("/api/sessions/s/triggers/daily/deactivate")).status == 200
    on = await (await client.post("/api/sessions/s/triggers/daily/activate")).json()
    assert on["next_fire_at"] == ms(utc("2027-01-16T09:00"))
    await clock.advance(600)
    assert (await api.trigger("s", "daily"))["fire_count"] == 1
    stream.close()


async def test_a_trigger_created_active_announces_its_activation(api, stream, fake_clock):
    await api.add_trigger("s", timer("tick", interval_minutes=5))
    await api.add_trigger("s", timer("later", interval_minutes=5) | {"enabled": False})
    events = await until(stream, "trigger_available")
    events += await until(stream, "trigger_available")
    events = of_type(events, "trigger_available", "trigger_activated")
    assert [(e["type"], e["data"]["trigger_id"])
            for e in events] == [("trigger_available", "tick"), ("trigger_activated", "tick"),
                                 ("trigger_available", "later")]
    assert events[1]["data"]["next_fire_at"] == ms(fake_clock.time() + 300)
    assert events[1]["data"]["active"] is True and events[2]["data"]["active"] is False
