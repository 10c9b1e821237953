"""Triggers through HTTP on a fake clock: timers firing in a live session (interval, cron in
time zones across DST), the trigger routes, and a busy queen coalescing fires."""

from __future__ import annotations

import pytest

from hive_server import keys
from hive_server.core.clock import FakeClock
from tests import agent_fixtures
from tests.agent_fixtures import MEETING_TOOLS, Meeting, call_line, worker_line
from tests.hive_api import HiveApi
from tests.queen_support import of_type, until
from tests.sse_reader import read_until
from tests.trigger_support import (
    ms,
    next_fired,
    timer,
    utc,
    webhook,
    write_triggers_agent,
)


@pytest.fixture
async def stream(api):
    await api.create_session(session_id="s")
    resp = await api.events("s")
    yield resp
    resp.close()


# -- timers firing in a live session -------------------------------------------------------------

async def test_an_interval_timer_fires_on_time_and_the_queen_gets_the_task(api, stream,
                                                                           fake_clock):
    t0 = fake_clock.time()
    created = await api.add_trigger("s", timer("tick", interval_minutes=5))
    assert created["active"] is True and created["fire_count"] == 0
    assert created["next_fire_at"] == ms(t0 + 300) and created["next_fire_in"] == 300
    assert created["last_fired_at"] is None and created["error"] is None
    for n in (1, 2, 3):
        await fake_clock.advance(300)
        event, _ = await next_fired(stream)
        assert event["data"] == {
            "trigger_id": "tick", "trigger_type": "timer", "tick": ms(t0 + 300 * n),
            "manual": False, "missed": 0, "payload": None, "fire_count": n,
            "name": "tick", "task": "water the plants",
            "trigger_config": {"interval_minutes": 5}, "active": True, "enabled": True,
            "source": "api", "last_fired_at": ms(t0 + 300 * n),
            "next_fire_at": ms(t0 + 300 * (n + 1)), "next_fire_in": 300}
        now = await api.trigger("s", "tick")
        assert now["fire_count"] == n and now["last_fired_at"] == ms(t0 + 300 * n)
        assert now["next_fire_at"] == ms(t0 + 300 * (n + 1)) and now["next_fire_in"] == 300
        events = await until(stream, "execution_completed")
        (received,) = of_type(events, "client_input_received")
        assert received["data"]["text"] == "[TRIGGER: timer/tick] Task: water the plants"
        assert received["data"]["content"] == ""  # not the user's words: Hive shows a banner
        assert received["data"]["source"] == "trigger"
        assert received["data"]["trigger_id"] == "tick"
        assert received["data"]["trigger_seq"] == event["seq"]
        (started,) = of_type(events, "execution_started")
        assert started["data"]["input_seq"] == received["seq"]


CRON_DST_CASES = {
    "berlin-spring": ("0 9 * * *", "Europe/Berlin", "2026-03-27T00:00",
                      ["2026-03-27T08:00", "2026-03-28T08:00", "2026-03-29T07:00",
                       "2026-03-30T07:00"]),
    "berlin-gap": ("30 2 * * *", "Europe/Berlin", "2026-03-28T00:00",
                   ["2026-03-28T01:30", "2026-03-29T01:00", "2026-03-30T00:30"]),
    "berlin-autumn": ("0 9 * * *", "Europe/Berlin", "2026-10-24T00:00",
                      ["2026-10-24T07:00", "2026-10-25T08:00", "2026-10-26T08:00"]),
    "new-york-spring": ("0 9 * * *", "America/New_York", "2026-03-07T00:00",
                        ["2026-03-07T14:00", "2026-03-08T13:00", "2026-03-09T13:00"]),
    "new-york-autumn": ("0 9 * * *", "America/New_York", "2026-10-31T00:00",
                        ["2026-10-31T13:00", "2026-11-01T14:00", "2026-11-02T14:00"]),
}


@pytest.mark.parametrize("cron,zone,start,expected", CRON_DST_CASES.values(),
                         ids=CRON_DST_CASES.keys())
async def test_a_cron_timer_fires_at_local_wall_time_across_a_dst_change(
        make_client, settings, cron, zone, start, expected):
    clock = FakeClock(utc(start))
    client = await make_client(settings, clock=clock)
    api = HiveApi(client)
    await api.create_session(session_id="s")
    stream = await api.events("s")
    created = await api.add_trigger("s", timer("daily", cron=cron, timezone=zone))
    assert created["next_fire_at"] == ms(utc(expected[0]))
    assert created["next_fire_in"] == utc(expected[0]) - utc(start)
    ticks, upcoming = [], []
    for _ in expected:
        await clock.advance(86400)  # from midnight UTC: exactly one tick per step
        event, _ = await next_fired(stream)
        ticks.append(event["data"]["tick"])
        upcoming.append((await api.trigger("s", "daily"))["next_fire_at"])
    assert ticks == [ms(utc(t)) for t in expected]
    assert upcoming[:-1] == ticks[1:]
    stream.close()


# -- the routes ----------------------------------------------------------------------------------

async def test_created_triggers_are_listed_and_an_id_taken_is_409(client, api, stream):
    await api.add_trigger("s", timer("tick", interval_minutes=10))
    await api.add_trigger("s", webhook("hook", signature="none"))
    assert set(await api.triggers("s")) == {"tick", "hook"}
    dup = await client.post("/api/sessions/s/triggers", json=timer("tick", interval_minutes=1))
    assert dup.status == 409 and (await dup.json())["code"] == "trigger_exists"
    assert set(await api.triggers("s")) == {"tick", "hook"}


async def test_run_fires_now_with_its_payload_and_leaves_the_schedule_alone(api, stream,
                                                                            fake_clock):
    t0 = fake_clock.time()
    await api.add_trigger("s", timer("tick", interval_minutes=10))
    ran = await api.run_trigger("s", "tick", {"n": 1})  # 202
    assert ran["fired"] is True and ran["trigger"]["fire_count"] == 1
    assert ran["trigger"]["next_fire_at"] == ms(t0 + 600), "run leaves the schedule alone"
    event, _ = await next_fired(stream)
    assert event["seq"] == ran["seq"]
    assert event["data"]["manual"] is True and event["data"]["tick"] is None
    assert event["data"]["payload"] == {"n": 1}
    await api.run_trigger("s", "tick")  # no body: 202 too


async def test_a_patch_reschedules_on_the_same_phase_and_says_so(client, api, stream, fake_clock):
    t0 = fake_clock.time()
    await api.add_trigger("s", timer("tick", interval_minutes=10))
    await fake_clock.advance(120)
    patched = await client.patch("/api/sessions/s/triggers/tick",
                                 json={"trigger_config": {"interval_minutes": 3},
                                       "task": "new task"})
    assert patched.status == 200
    body = await patched.json()
    assert body["task"] == "new task" and body["trigger_config"] == {"interval_minutes": 3}
    assert body["next_fire_at"] == ms(t0 + 180), "rescheduled on the same phase"
    (updated,) = of_type(await until(stream, "trigger_updated"), "trigger_updated")
    assert (updated["data"]["trigger_id"], updated["data"]["task"]) == ("tick", "new task")
    await fake_clock.advance(60)
    event, _ = await next_fired(stream)
    assert event["data"]["tick"] == ms(t0 + 180) and event["data"]["fire_count"] == 1


async def test_deactivate_drops_the_timer_and_activate_schedules_it_from_now(client, api, stream,
                                                                           fake_clock):
    t0 = fake_clock.time()
    await api.add_trigger("s", timer("tick", interval_minutes=10))
    off = await (await client.post("/api/sessions/s/triggers/tick/deactivate")).json()
    assert off["active"] is False and off["next_fire_at"] is None and off["next_fire_in"] is None
    assert len(client.app[keys.SCHEDULER]) == 0
    await until(stream, "trigger_deactivated")
    await fake_clock.advance(50)
    on = await (await client.post("/api/sessions/s/triggers/tick/activate")).json()
    assert on["active"] is True and on["next_fire_at"] == ms(t0 + 50 + 600)
    (activated,) = of_type(await until(stream, "trigger_activated"), "trigger_activated")
    card_only = ("id", "error", "last_outcome", "last_outcome_at", "last_error", "last_error_at")
    assert activated["data"] == {k: v for k, v in on.items() if k not in card_only}
    assert len(client.app[keys.SCHEDULER]) == 1


async def test_delete_removes_the_trigger_and_its_timer(client, api, stream):
    await api.add_trigger("s", timer("tick", interval_minutes=10))
    await api.add_trigger("s", webhook("hook", signature="none"))
    assert len(client.app[keys.SCHEDULER]) == 1  # the webhook has no timer
    deleted = await client.delete("/api/sessions/s/triggers/tick")
    assert await deleted.json() == {"trigger_id": "tick", "deleted": True}
    await until(stream, "trigger_removed")
    assert set(await api.triggers("s")) == {"hook"}
    assert len(client.app[keys.SCHEDULER]) == 0


async def test_an_invalid_patch_is_400_and_changes_nothing(client, api, stream, fake_clock):
    await api.add_trigger("s", timer("tick", interval_minutes=10))
    before = await api.trigger("s", "tick")
    for config in ({"interval_minutes": 0}, {"cron": "61 * * * *"},
                   {"cron": "0 9 * * *", "timezone": "Mars/Olympus"},
                   {"interval_minutes": 5, "cron": "* * * * *"}, {"interval_minuts": 5},
                   {"signature": "none"}):
        resp = await client.patch("/api/sessions/s/triggers/tick",
                                  json={"trigger_config": config, "task": "changed"})
        assert resp.status == 400, config
        assert (await resp.json())["code"] == "invalid_trigger"
    assert await api.trigger("s", "tick") == before
    await fake_clock.advance(600)
    event, _ = await next_fired(stream)
    assert event["data"]["tick"] == before["next_fire_at"]
    received = await until(stream, "client_input_received")
    assert received[-1]["data"]["text"].endswith("Task: water the plants")
    types = [e["type"] for e in api.log("s")]
    assert "trigger_updated" not in types


@pytest.mark.parametrize("config", [
    {"cron": "61 * * * *"}, {"cron": "not a cron"}, {"cron": "* * * *"},
    {"cron": "H * * * *"}, {"cron": "0 9 * * *", "timezone": "Mars/Olympus"},
    {"cron": "0 9 * * *", "timezone": "../../etc/passwd"}, {"interval_minutes": 0},
    {"interval_minutes": -5}, {"interval_minutes": 0.001}, {"interval_minutes": "5"},
    {"interval_minutes": 5e15}, {"interval_minutes": 1e308},
    {}, {"interval_minutes": 5, "misfire": "sometimes"},
], ids=repr)
async def test_invalid_timer_definitions_are_400_and_create_nothing(client, api, config):
    await api.create_session(session_id="s")
    resp = await client.post("/api/sessions/s/triggers", json=timer("bad", **config))
    assert resp.status == 400
    assert (await resp.json())["code"] == "invalid_trigger"
    assert await api.triggers("s") == {}
    assert len(client.app[keys.SCHEDULER]) == 0


@pytest.mark.parametrize("spec", [
    {"id": "../x", "trigger_type": "timer", "trigger_config": {"interval_minutes": 5}},
    {"id": "x", "trigger_type": "email", "trigger_config": {}},
    {"id": "x", "trigger_type": "webhook", "trigger_config": {"signature": "github"}},
    {"id": "x", "trigger_type": "webhook", "trigger_config": {"signature": "rot13"}},
    {"trigger_type": "timer", "trigger_config": {"interval_minutes": 5}, "name": "?",
     "trigger_id": "../x"},
], ids=repr)
async def test_invalid_definitions_of_any_kind_are_400(client, api, spec):
    await api.create_session(session_id="s")
    resp = await client.post("/api/sessions/s/triggers", json=spec)
    assert resp.status == 400
    assert await api.triggers("s") == {}


@pytest.mark.parametrize("method,path,code", [
    ("PATCH", "/api/sessions/s/triggers/nope", "trigger_not_found"),
    ("DELETE", "/api/sessions/s/triggers/nope", "trigger_not_found"),
    ("POST", "/api/sessions/s/triggers/nope/activate", "trigger_not_found"),
    ("POST", "/api/sessions/s/triggers/nope/deactivate", "trigger_not_found"),
    ("POST", "/api/sessions/s/triggers/nope/run", "trigger_not_found"),
    ("GET", "/api/sessions/ghost/triggers", "session_not_live"),
    ("POST", "/api/sessions/ghost/triggers", "session_not_live"),
    ("PATCH", "/api/sessions/ghost/triggers/x", "session_not_live"),
    ("POST", "/api/sessions/ghost/triggers/x/run", "session_not_live"),
])
async def test_unknown_triggers_and_sessions_are_404_on_every_route(client, api, method, path,
                                                                    code):
    await api.create_session(session_id="s")
    body = timer("x", interval_minutes=5) if path.endswith("/triggers") else {"task": "x"}
    resp = await client.request(method, path, json=body)
    assert resp.status == 404
    assert (await resp.json())["code"] == code
    assert await api.triggers("s") == {}


# -- a busy queen --------------------------------------------------------------------------------

@pytest.fixture
def meeting(settings) -> Meeting:
    write_triggers_agent(settings.agents_dir, "meeting", [], tools=MEETING_TOOLS)
    agent_fixtures.MEETING = Meeting()
    return agent_fixtures.MEETING


@pytest.fixture
async def meeting_client(make_client, settings, fake_clock, meeting):
    return await make_client(settings, clock=fake_clock)


async def test_a_busy_queen_keeps_one_pending_input_per_trigger(meeting_client, meeting,
                                                                fake_clock):
    client = meeting_client
    api = HiveApi(client)
    await api.create_session(session_id="s", agent_id="meeting")
    stream = await api.events("s")
    await api.add_trigger("s", timer("tick", task="tidy up", interval_minutes=1))
    await api.add_trigger("s", webhook("other", task="other work", signature="none"))
    await api.chat("s", worker_line(call_line("hold", name="busy")))
    await read_until(stream, lambda e: e["type"] == "tool_call_started"
                     and e["data"]["tool_name"] == "hold")
    for _ in range(3):
        await fake_clock.advance(60)
        await next_fired(stream)
    await client.post("/api/sessions/s/triggers/tick/run")
    await client.post("/api/sessions/s/triggers/other/run")
    assert meeting.arrived == ["busy"], "the queen is still busy with the first task"

    inputs = [e for e in of_type(api.log("s"),
                                 "client_input_received") if e["data"]["source"] == "trigger"]
    first, *coalesced, other = inputs
    assert first["data"]["trigger_id"] == "tick" and first["data"]["coalesced_into"] is None
    assert [e["data"]["coalesced_into"] for e in coalesced] == [first["seq"]] * 3
    assert other["data"]["trigger_id"] == "other" and other["data"]["coalesced_into"] is None
    stats = client.app[keys.SESSIONS].get("s").queen
    assert stats.pending == 2

    meeting.gate.set()
    events = []
    for _ in range(3):
        events += await until(stream, "execution_completed")
    starts = of_type(events, "execution_started")
    assert [(s["data"]["input_seq"], s["data"]["coalesced"]) for s in starts] == [
        (first["seq"], 3), (other["seq"], 0)]
    workers = [e["data"]["task"] for e in of_type(events, "worker_started")]
    assert workers == ["tidy up", "other work"], "one execution per trigger, in arrival order"
    assert (await api.trigger("s", "tick"))["fire_count"] == 4
