"""Event data in Hive's field names, the queen's loop state, snapshots and the state feeds."""

from __future__ import annotations

import asyncio
import json

import pytest

from hive_server import keys
from hive_server.models.event_data import MODELS, ClientInputReceived, parse_data
from hive_server.models.events import EventType
from tests.agent_fixtures import write_agent
from tests.conftest import create_session
from tests.queen_support import chat, of_type, open_stream, read_log, until, until_nth
from tests.sse_reader import read_until

TOOL_CHAT = 'Check the time.\ncall:get_time {"timezone": "Europe/Berlin"}'


def loop_states(events: list[dict]) -> list[tuple[str, str | None]]:
    return [(e["data"]["activity"], e["data"]["park_reason"])
            for e in of_type(events, "loop_state_changed")]


async def test_every_event_type_has_one_model_and_a_published_schema(client):
    assert set(MODELS) == set(EventType)
    body = await (await client.get("/api/events/schema")).json()
    assert set(body["types"]) == {t.value for t in EventType}
    props = body["types"]["client_input_received"]["properties"]
    assert "content" in props and "message" not in props


async def test_every_stored_event_is_exactly_its_model(client, api, settings):
    """The model is the only definition of ``data``: every line reads back unchanged."""
    await api.create_session(session_id="s")
    stream = await api.events("s")
    await api.chat("s", TOOL_CHAT)
    await until(stream, "execution_completed")
    await api.chat("s", "ask me")
    await until(stream, "client_input_requested")
    await api.chat("s", "blue")
    await until(stream, "execution_completed")
    spec = {"name": "Water", "trigger_type": "timer", "task": "water",
            "trigger_config": {"interval_minutes": 5}}
    assert (await client.post("/api/sessions/s/triggers", json=spec)).status == 201
    await client.post("/api/sessions/s/triggers/user-water/run")
    await until_nth(stream, "execution_completed", 1)
    stream.close()
    for event in read_log(settings.home, "s"):
        model = MODELS[EventType(event["type"])]
        assert model.model_validate(event["data"]).model_dump() == event["data"], event


async def test_a_chat_with_a_tool_call_has_hive_fields_and_two_bubbles(api):
    await api.create_session(session_id="s")
    stream = await api.events("s")
    sent = await api.chat("s", TOOL_CHAT)
    events = await until(stream, "execution_completed")
    events += await until(stream, "loop_state_changed")

    (received,) = [e for e in events if e["seq"] == sent["seq"]]
    assert received["data"]["content"] == TOOL_CHAT and received["data"]["source"] == "user"
    deltas = of_type(events, "client_output_delta")
    tool_at = of_type(events, "tool_call_started")[0]["seq"]
    assert {d["data"]["iteration"] for d in deltas if d["seq"] < tool_at} == {0}
    assert {d["data"]["iteration"] for d in deltas if d["seq"] > tool_at} == {1}
    assert all(d["data"]["inner_turn"] == 0 and d["execution_id"] for d in deltas)
    for turn in of_type(events, "llm_turn_complete"):
        data = turn["data"]
        assert data["input_tokens"] > 0 and data["output_tokens"] > 0
        assert (data["cached_tokens"], data["cache_creation_tokens"]) == (0, 0)
        assert data["cost_usd"] == 0.0  # the offline model is priced at zero
        assert data["stop_reason"] in ("tool_use", "end_turn")
    assert loop_states(events) == [("executing", None), ("awaiting_user", "turn_done")]
    stream.close()


async def test_ask_user_parks_the_queen_with_her_question_in_the_snapshot(client, api):
    await api.create_session(session_id="s")
    stream = await api.events("s")
    await api.chat("s", "ask me")
    events = await until(stream, "loop_state_changed")
    events += await until(stream, "loop_state_changed")
    (asked,) = of_type(events, "client_input_requested")
    (question,) = asked["data"]["questions"]
    assert question["prompt"] and question["id"] and asked["execution_id"]
    # a free-form question is also streamed as the queen's text: Hive's UI draws a question
    # widget only for two or more options, and shows this text while she waits
    (said,) = [e for e in of_type(events, "client_output_delta") if e["data"]["inner_turn"]]
    assert said["data"]["snapshot"] == question["prompt"] and said["seq"] < asked["seq"]
    assert said["execution_id"] == asked["execution_id"]
    assert loop_states(events) == [("executing", None), ("awaiting_user", "ask_user")]

    snap = await (await client.get("/api/sessions/s/snapshot")).json()
    assert snap["awaiting_input"] is True and snap["is_executing"] is False
    assert snap["park_reason"] == "ask_user" and snap["pending_questions"] == [question]
    assert snap["current_execution_id"] == asked["execution_id"]
    assert [c["name"] for c in snap["current_tool_calls"]] == ["ask_user"]

    reload = await client.get("/api/sessions/s/events")  # a reload: no cursor
    opening = (await read_until(reload, lambda e: True))[0]["event"]
    assert opening["type"] == "session_snapshot" and opening["seq"] == 0
    assert opening["data"]["pending_questions"] == [question]
    reload.close()

    await api.chat("s", "green")
    events = await until(stream, "execution_completed")
    events += await until(stream, "loop_state_changed")
    assert loop_states(events) == [("executing", None), ("awaiting_user", "turn_done")]
    snap = await (await client.get("/api/sessions/s/snapshot")).json()
    assert snap["pending_questions"] is None and snap["current_tool_calls"] == []
    stream.close()


async def test_cancel_interrupts_the_loop_with_user_stopped(client, api):
    await api.create_session(session_id="s")
    stream = await api.events("s")
    await api.chat("s", "ask me")
    await until(stream, "client_input_requested")
    assert (await (await client.post("/api/sessions/s/cancel")).json())["cancelled"] is True
    events = await until(stream, "execution_cancelled")
    events += await until(stream, "loop_state_changed")
    assert loop_states(events)[-1] == ("interrupted", "user_stopped")
    snap = await (await client.get("/api/sessions/s/snapshot")).json()
    assert snap["interrupted"] is True and snap["queen_busy_reason"] is None
    stream.close()


async def test_a_trigger_input_is_not_shown_as_the_users_words(client, api):
    await api.create_session(session_id="s")
    stream = await api.events("s")
    spec = {"name": "Daily digest!", "trigger_type": "timer", "task": "digest",
            "trigger_config": {"interval_minutes": 60}}
    created = await (await client.post("/api/sessions/s/triggers", json=spec)).json()
    assert created["trigger_id"] == created["id"] == "user-daily-digest"
    again = await (await client.post("/api/sessions/s/triggers", json=spec)).json()
    assert again["trigger_id"] == "user-daily-digest-2"
    await client.post("/api/sessions/s/triggers/user-daily-digest/run")
    events = await until(stream, "execution_completed")
    (fired,) = of_type(events, "trigger_fired")
    assert fired["data"]["name"] == "Daily digest!" and fired["data"]["task"] == "digest"
    assert fired["data"]["fire_count"] == 1 and fired["data"]["last_fired_at"] > 0
    (given,) = of_type(events, "client_input_received")
    data = parse_data(ClientInputReceived, given["data"])
    assert data.content == "" and data.message.startswith("[TRIGGER: timer/user-daily-digest]")
    stream.close()


async def test_a_log_written_with_older_field_names_still_rebuilds(make_client, settings):
    client = await make_client(settings)
    await create_session(client, session_id="s")
    stream = await open_stream(client, "s")
    await chat(client, "s", "first words")
    await until(stream, "execution_completed")
    stream.close()
    await client.close()
    log = settings.home / "sessions" / "s" / "events.jsonl"
    lines = []
    for line in log.read_text().splitlines():  # as the server wrote them before the rename
        event = json.loads(line)
        if event["type"] == "client_input_received":
            event["data"] = {"message": event["data"]["content"], "source": "user"}
        lines.append(json.dumps(event, separators=(",", ":")))
    log.write_text("\n".join(lines) + "\n")
    meta = json.loads((log.parent / "meta.json").read_text())
    (log.parent / "meta.json").write_text(json.dumps({**meta, "status": "live"}))

    client = await make_client(settings)
    stream = await open_stream(client, "s", after_seq=100)
    await chat(client, "s", "second words")
    events = await until(stream, "execution_completed")
    text = of_type(events, "llm_turn_complete")[-1]["data"]["message"]["content"][0]["text"]
    assert 'Previous: "first words"' in text or "first words" in text
    stream.close()


async def test_the_live_feed_sends_every_sessions_state_on_change(client, api):
    feed = await client.get("/api/sessions/live")
    assert feed.status == 200
    first = await next_snapshot(feed)
    assert first == {"sessions": []}
    await api.create_session(session_id="s")
    rows = (await next_snapshot(feed))["sessions"]
    assert [(r["session_id"], r["is_executing"], r["snapshot_seq"]) for r in rows] == [
        ("s", False, 1)]
    await api.chat("s", "ask me")
    while not (rows := (await next_snapshot(feed))["sessions"])[0]["awaiting_input"]:
        pass
    row = rows[0]
    assert (row["queen_busy_reason"], row["park_reason"]) == ("awaiting_input", "ask_user")
    assert set(row) >= {"colony_id", "queen_id", "queen_name", "phase", "interrupted",
                        "interrupt_cause", "current_tool_name", "current_tool_count",
                        "active_worker_count", "last_event_at"}
    assert (await client.delete("/api/sessions/s")).status == 200
    while (await next_snapshot(feed))["sessions"]:
        pass
    feed.close()


async def test_the_global_stream_reports_agent_folder_changes(client, settings):
    stream = await client.get("/api/events/global")
    assert stream.status == 200
    write_agent(settings.agents_dir, "fresh", {"name": "Fresh"})
    await client.app[keys.CATALOG].reload()
    (frame,) = await read_until(stream, lambda e: e["type"] == "tool_catalog_refreshed")
    assert frame["event"]["data"]["added"] == ["fresh"]
    stream.close()


@pytest.mark.parametrize("path", ["/api/sessions/live", "/api/events/global"])
async def test_feeds_end_at_shutdown(make_client, settings, path):
    client = await make_client(settings)
    stream = await client.get(path)
    assert stream.status == 200
    await client.app.shutdown()
    async with asyncio.timeout(5):  # ended by the server: the read finishes, it is not cut
        body = await stream.content.read()
    assert path != "/api/sessions/live" or body.startswith(b"event: snapshot\n")
    await client.close()


async def next_snapshot(feed) -> dict:
    while True:
        raw = (await feed.content.readuntil(b"\n\n")).decode()
        if "event: snapshot" in raw:
            return json.loads(raw.split("data: ", 1)[1])
