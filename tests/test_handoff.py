"""Handoff notes: every kind of stop stores a ``session_summary`` event and ``handoff`` in
meta.json, built from the session's events (done, pending, failed, last decisions), and a
cold read (meta.json, the history row, the cold view) shows it after a restart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hive_server.core.clock import FakeClock
from hive_server.models.handoff import Handoff
from tests.agent_fixtures import write_agent
from tests.conftest import create_session, make_settings
from tests.queen_support import chat, of_type, open_stream, read_log, until
from tests.test_stale_turn import STALE, STEP, Stalling

TIMER = {"id": "hourly", "name": "Hourly", "trigger_type": "timer",
         "trigger_config": {"interval_minutes": 60}, "task": "Check the inbox"}


def _meta(home: Path, session_id: str) -> dict[str, Any]:
    return json.loads((home / "sessions" / session_id / "meta.json").read_text())


async def _eventful(client, clock: FakeClock, session_id: str) -> None:
    """A session with a stale failure, an armed timer, an unanswered question and a trigger
    input queued behind it."""
    await create_session(client, session_id=session_id)
    stream = await open_stream(client, session_id)
    resp = await client.post(f"/api/sessions/{session_id}/triggers", json=TIMER)
    assert resp.status == 201, await resp.text()
    await chat(client, session_id, "hang for a while")
    await until(stream, "client_output_delta")
    await clock.advance(STALE + 2 * STEP)
    await until(stream, "execution_failed")
    await chat(client, session_id, "please ask me which way")
    await until(stream, "client_input_requested")
    resp = await client.post(f"/api/sessions/{session_id}/triggers/hourly/run", json={})
    assert resp.status == 202, await resp.text()
    stream.close()


def _check_eventful(handoff: Handoff, clock: FakeClock, reason: str) -> None:
    assert handoff.reason == reason
    assert handoff.done.turns == 2 and handoff.done.turns_failed == 1
    pending = handoff.pending
    assert [(i.source, i.preview) for i in pending.queued_inputs] == [
        ("trigger", pending.queued_inputs[0].preview)]
    assert "Check the inbox" in pending.queued_inputs[0].preview
    assert pending.queued_total == 1
    assert [q.prompts for q in pending.questions] == [["What would you like me to do next?"]]
    assert [(t.trigger_id, t.trigger_type, t.task) for t in pending.triggers] == [
        ("hourly", "timer", "Check the inbox")]
    assert pending.triggers[0].next_fire_at == int((clock.time() + 3600 - 2 * STEP - STALE)
                                                   * 1000)
    assert [(f.kind, f.error_type) for f in handoff.failures] == [("execution", "stale")]
    assert handoff.last_decisions[-1].tools == ["ask_user"]


async def test_a_stop_request_stores_the_handoff_event_and_meta(make_client, tmp_path):
    clock = FakeClock()
    settings = make_settings(tmp_path, stale_turn_seconds=STALE)
    client = await make_client(settings, llm=Stalling(), clock=clock)
    await _eventful(client, clock, "s")
    assert (await client.delete("/api/sessions/s")).status == 200
    events = read_log(tmp_path / "home", "s")
    assert [e["type"] for e in events[-2:]] == ["session_summary", "session_stopped"]
    handoff = Handoff.model_validate(events[-2]["data"]["handoff"])
    _check_eventful(handoff, clock, "deleted")
    assert handoff.last_seq == events[-3]["seq"]
    meta = _meta(tmp_path / "home", "s")
    assert Handoff.model_validate(meta["handoff"]) == handoff
    text = handoff.to_markdown()
    assert "## Handoff" in text and "unanswered question" in text and "hourly" in text
    # cold, after a restart: the history row and the cold view show it
    await client.close()
    again = await make_client(settings, llm=Stalling(), clock=FakeClock())
    rows = (await (await again.get("/api/sessions/history")).json())["sessions"]
    row = next(r for r in rows if r["session_id"] == "s")
    assert row["cold"] is True and Handoff.model_validate(row["handoff"]) == handoff
    cold = await (await again.get("/api/sessions/s")).json()
    assert Handoff.model_validate(cold["handoff"]) == handoff


async def test_a_shutdown_stores_the_handoff_and_the_resumed_run_goes_on_counting(
        make_client, tmp_path):
    clock = FakeClock()
    settings = make_settings(tmp_path, stale_turn_seconds=STALE)
    client = await make_client(settings, llm=Stalling(), clock=clock)
    await _eventful(client, clock, "s")
    await client.close()  # server shutdown: the session stays live for the next start
    events = read_log(tmp_path / "home", "s")
    assert [e["type"] for e in events[-2:]] == ["session_summary", "session_stopped"]
    handoff = Handoff.model_validate(_meta(tmp_path / "home", "s")["handoff"])
    _check_eventful(handoff, clock, "shutdown")
    assert Handoff.model_validate(events[-2]["data"]["handoff"]) == handoff
    # the next start resumes it: the question is asked again, the queued input waits
    again = await make_client(settings, llm=Stalling(), clock=FakeClock())
    stream = await open_stream(again, "s", after_seq=events[-1]["seq"])
    await chat(again, "s", "left, please")  # answers the question; the trigger input follows
    await until(stream, "execution_completed")
    await until(stream, "execution_completed")
    stream.close()
    assert (await again.delete("/api/sessions/s")).status == 200
    later = Handoff.model_validate(_meta(tmp_path / "home", "s")["handoff"])
    assert later.reason == "deleted"
    assert later.done.turns == 3 and later.done.turns_failed == 1  # both runs counted
    assert later.pending.queued_inputs == [] and later.pending.questions == []
    assert [f.error_type for f in later.failures] == ["stale"]


async def test_deleting_the_agent_stores_a_handoff_with_the_workers_done(make_client,
                                                                         tmp_path):
    write_agent(tmp_path / "agents", "crew", {"name": "Crew"})
    client = await make_client(make_settings(tmp_path))
    await create_session(client, session_id="s", agent_id="crew")
    stream = await open_stream(client, "s")
    await chat(client, "s", 'call:run_worker {"task": "count the sheep"}')
    await until(stream, "execution_completed")
    stream.close()
    resp = await client.delete("/api/agents", json={"agent_id": "crew"})
    assert resp.status == 200, await resp.text()
    events = read_log(tmp_path / "home", "s")
    summary = of_type(events, "session_summary")
    assert len(summary) == 1 and events[-1]["data"]["reason"] == "agent_deleted"
    handoff = Handoff.model_validate(_meta(tmp_path / "home", "s")["handoff"])
    assert handoff == Handoff.model_validate(summary[0]["data"]["handoff"])
    assert handoff.reason == "agent_deleted"
    assert handoff.done.workers_completed == 1 and handoff.done.tool_calls == 1
    assert handoff.done.turns_completed == 1
    assert handoff.pending.triggers == [] and handoff.failures == []
    assert "run_worker" in handoff.last_decisions[0].tools
    assert "Tool run_worker returned" in handoff.last_decisions[-1].text
    assert "1 workers finished" in handoff.to_text()


async def test_inputs_dropped_from_the_queue_are_not_pending_in_the_handoff(make_client,
                                                                           tmp_path):
    client = await make_client(make_settings(tmp_path), llm=Stalling())
    await create_session(client, session_id="s")
    stream = await open_stream(client, "s")
    await chat(client, "s", "hang on")
    await until(stream, "client_output_delta")
    await chat(client, "s", "first queued")
    await chat(client, "s", "second queued")
    dropped = await client.delete("/api/sessions/s/queue")
    assert dropped.status == 200, await dropped.text()
    await chat(client, "s", "still queued")
    stream.close()
    assert (await client.delete("/api/sessions/s")).status == 200
    handoff = Handoff.model_validate(_meta(tmp_path / "home", "s")["handoff"])
    assert [i.preview for i in handoff.pending.queued_inputs] == ["still queued"]
    assert handoff.done.turns_cancelled == 1  # the stop cancelled the turn under way
