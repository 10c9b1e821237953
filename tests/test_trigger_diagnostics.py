"""Why did a trigger not fire? Refused deliveries stored as ``webhook_rejected`` (one per
reason, never the body or a signature), held deliveries listed, one trigger's card with its
last outcome and last error, and a trigger without a task refused."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from hive_server.core.clock import FakeClock
from tests import agent_fixtures, test_webhooks_sessions
from tests.agent_fixtures import MEETING_TOOLS, Meeting, call_line, worker_line
from tests.conftest import make_settings
from tests.hive_api import HiveApi
from tests.queen_support import of_type, until
from tests.sse_reader import read_until
from tests.test_webhooks_api import (
    BODY,
    OTHER_SECRET,
    deliver,
    github,
    log_of,
    standard,
)
from tests.trigger_support import fired, timer, write_triggers_agent

MARK = b'{"marker": "PAYLOAD-7f3a9c"}'
settings = test_webhooks_sessions.settings  # the "hooks" agent and its webhook secrets
client = test_webhooks_sessions.client  # sessions s and t with the "hooks" colony
Headers = Callable[[FakeClock], dict[str, str]]


def _rejections(settings, session_id: str) -> list[dict]:
    return [e["data"] for e in of_type(log_of(settings, session_id), "webhook_rejected")]


def _assert_secret_free(settings, caplog, secrets: list[str]) -> None:
    """Neither log (the sessions' events, the server's lines) holds the body or a
    signature."""
    texts = [caplog.text] + [(settings.home / "sessions" / sid / "events.jsonl").read_text()
                             for sid in ("s", "t")]
    for text in texts:
        for secret in [MARK.decode(), "PAYLOAD-7f3a9c", *secrets]:
            assert secret not in text


REASONS: dict[str, tuple[str, int, Headers, bytes]] = {
    "missing_signature": ("push", 401, lambda c: {"webhook-id": "msg_m"}, MARK),
    "invalid_signature": ("push", 401, lambda c: standard(c, "msg_i", MARK,
                                                          secret=OTHER_SECRET), MARK),
    "stale_timestamp": ("push", 401, lambda c: standard(c, "msg_s", MARK, skew=-3600), MARK),
    "secret_not_configured": ("unset", 503, lambda c: standard(c, "msg_u", MARK), MARK),
    "trigger_not_found": ("tick", 404, lambda c: standard(c, "msg_t", MARK), MARK),
    "payload_too_large": ("push", 413, lambda c: standard(c, "msg_p", MARK),
                          MARK + b" " * (2 * 1024 * 1024)),
    "github_invalid_signature": ("gh", 401, lambda c: github("guid-1", MARK, "wrong"), MARK),
}


@pytest.mark.parametrize("reason", REASONS)
async def test_each_refusal_is_a_webhook_rejected_event_in_each_session_with_the_trigger(
        client, api, settings, fake_clock, caplog, reason):
    caplog.set_level(logging.INFO)
    trigger, status, make, body = REASONS[reason]
    headers = make(fake_clock) | {"Authorization": "Bearer stolen", "Cookie": "c=1"}
    answer_status, answer = await deliver(client, trigger, body, headers)
    code = reason.removeprefix("github_")
    assert (answer_status, answer["code"]) == (status, code)
    for session_id in ("s", "t"):
        (rejected,) = _rejections(settings, session_id)
        assert rejected["reason"] == code and rejected["trigger_id"] == trigger
        assert rejected["agent_id"] == "hooks" and rejected["error"] == answer["error"]
        assert rejected["received_at"] == int(fake_clock.time() * 1000)
        assert not {"webhook-signature", "x-hub-signature-256", "authorization",
                    "cookie"} & set(rejected["headers"])
        assert "payload" not in rejected
        assert of_type(log_of(settings, session_id), "trigger_fired") == []
        trigger_card = await api.trigger(session_id, trigger)
        assert trigger_card["last_outcome"] == "rejected"
        assert trigger_card["last_error"] == f"{code}: {answer['error']}"
        assert trigger_card["last_error_at"] == trigger_card["last_outcome_at"]
    assert f"agent 'hooks' trigger '{trigger}' rejected ({code}" in caplog.text
    signatures = [v for k, v in headers.items()
                  if k.lower() in ("webhook-signature", "x-hub-signature-256")]
    _assert_secret_free(settings, caplog, [*signatures, "stolen", "c=1"])


async def test_a_replayed_delivery_is_rejected_as_a_duplicate(client, api, settings, fake_clock,
                                                              caplog):
    caplog.set_level(logging.INFO)
    headers = standard(fake_clock, "msg_twice", MARK)
    assert (await deliver(client, "push", MARK, headers))[0] == 202
    status, answer = await deliver(client, "push", MARK, headers)
    assert status == 200 and answer["duplicate"] is True
    for session_id in ("s", "t"):
        (rejected,) = _rejections(settings, session_id)
        assert rejected["reason"] == "duplicate" and rejected["delivery_id"] == "msg_twice"
        assert len(fired(log_of(settings, session_id))) == 1
        assert (await api.trigger(session_id, "push"))["last_outcome"] == "rejected"
    assert "agent 'hooks' trigger 'push' rejected (duplicate" in caplog.text
    assert headers["webhook-signature"] not in caplog.text


async def test_an_unsigned_delivery_off_loopback_is_rejected(make_client, settings, caplog):
    client = await make_client(settings.model_copy(update={"webhook_host": "0.0.0.0"}))
    api = HiveApi(client)
    await api.create_session(session_id="s", agent_id="hooks")
    status, answer = await deliver(client, "open", MARK, {"X-Request-Id": "req-1"})
    assert (status, answer["code"]) == (401, "invalid_signature")
    (rejected,) = _rejections(settings, "s")
    assert rejected["reason"] == "invalid_signature" and "loopback" in rejected["error"]
    assert rejected["delivery_id"] == "req-1"


async def test_a_delivery_that_cannot_be_held_is_rejected_in_the_inactive_sessions(
        client, settings, fake_clock):
    for session_id in ("s", "t"):
        await client.post(f"/api/sessions/{session_id}/triggers/push/deactivate")
    blocker = settings.home / "webhooks" / "inbox"
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("not a folder")
    status, answer = await deliver(client, "push", MARK, standard(fake_clock, "msg_h", MARK))
    assert (status, answer["code"]) == (503, "inbox_unavailable")
    for session_id in ("s", "t"):
        (rejected,) = _rejections(settings, session_id)
        assert rejected["reason"] == "inbox_unavailable"


async def test_one_sessions_refusal_is_stored_there_while_the_other_fires(
        client, api, settings, fake_clock):
    resp = await client.patch("/api/sessions/s/triggers/push", json={"trigger_config": {
        "signature": "github", "secret_env": "GH_SECRET"}})
    assert resp.status == 200
    status, answer = await deliver(client, "push", BODY, standard(fake_clock, "msg_p"))
    assert status == 202 and answer["delivered_to"] == ["t"]
    (rejected,) = _rejections(settings, "s")
    assert rejected["reason"] == "missing_signature"
    assert _rejections(settings, "t") == [] and len(fired(log_of(settings, "t"))) == 1
    assert (await api.trigger("s", "push"))["last_outcome"] == "rejected"
    assert (await api.trigger("t", "push"))["last_outcome"] == "fired"


async def test_unknown_agents_and_triggers_are_logged_by_name(client, settings, fake_clock,
                                                              caplog):
    caplog.set_level(logging.INFO)
    headers = standard(fake_clock, "msg_n", MARK)
    assert (await deliver(client, "push", MARK, headers, agent="nobody"))[0] == 404
    assert (await deliver(client, "nope", MARK, headers))[0] == 404
    assert "agent 'nobody' trigger 'push' rejected (agent_not_found" in caplog.text
    assert "agent 'hooks' trigger 'nope' rejected (trigger_not_found" in caplog.text
    assert "no live session" in caplog.text
    assert _rejections(settings, "s") == [] and _rejections(settings, "t") == []


async def test_held_deliveries_are_listed_until_the_trigger_takes_them(
        make_client, client, api, settings, fake_clock):
    await client.post("/api/sessions/t/triggers/push/deactivate")
    await client.delete("/api/sessions/s")
    empty = await client.get("/api/webhooks/held")
    assert empty.status == 200 and await empty.json() == {"held": [], "total": 0}
    for msg_id in ("msg_1", "msg_2"):
        status, answer = await deliver(client, "push", MARK, standard(fake_clock, msg_id, MARK))
        assert status == 202 and answer["held"] is True
        await fake_clock.advance(1)
    listing = await (await client.get("/api/webhooks/held")).json()
    (held,) = listing["held"]
    assert listing["total"] == 2 and held["count"] == 2
    assert (held["agent_id"], held["trigger_id"]) == ("hooks", "push")
    assert [d["delivery_id"] for d in held["deliveries"]] == ["msg_1", "msg_2"]
    assert held["last_received_at"] - held["first_received_at"] == 1000
    assert "PAYLOAD-7f3a9c" not in str(listing) and "webhook-signature" not in str(listing)
    t_card = await api.trigger("t", "push")
    assert t_card["last_outcome"] == "held" and t_card["last_error"] is None

    await client.close()  # a restart keeps the outcome (triggers.json)
    client = await make_client(settings, clock=fake_clock)
    api = HiveApi(client)
    assert (await api.trigger("t", "push"))["last_outcome"] == "held"
    await client.post("/api/sessions/t/triggers/push/activate")
    assert await (await client.get("/api/webhooks/held")).json() == {"held": [], "total": 0}
    assert (await api.trigger("t", "push"))["last_outcome"] == "fired"


async def test_held_deliveries_skipped_by_misfire_skip_say_so(client, api, fake_clock):
    await client.post("/api/sessions/t/triggers/quiet/deactivate")
    await client.delete("/api/sessions/s")
    await deliver(client, "quiet", BODY, standard(fake_clock, "msg_q"))
    await client.post("/api/sessions/t/triggers/quiet/activate")
    quiet = await api.trigger("t", "quiet")
    assert quiet["last_outcome"] == "skipped" and quiet["fire_count"] == 0


async def test_one_trigger_is_read_by_id(client):
    resp = await client.get("/api/sessions/s/triggers/push")
    assert resp.status == 200
    one = await resp.json()
    listed = (await (await client.get("/api/sessions/s/triggers")).json())["triggers"]
    assert one == next(c for c in listed if c["id"] == "push")
    assert one["last_outcome"] is None and one["last_error"] is None
    missing = await client.get("/api/sessions/s/triggers/nope")
    assert missing.status == 404 and (await missing.json())["code"] == "trigger_not_found"
    gone = await client.get("/api/sessions/nobody/triggers/push")
    assert gone.status == 404


@pytest.mark.parametrize("task", [None, "", "   \n"])
async def test_a_trigger_without_a_task_is_refused(client, api, task):
    spec = {"name": "Nightly", "trigger_type": "timer",
            "trigger_config": {"interval_minutes": 5}}
    if task is not None:
        spec["task"] = task
    resp = await client.post("/api/sessions/s/triggers", json=spec)
    assert resp.status == 400 and (await resp.json())["code"] == "task_required"
    listed = (await (await client.get("/api/sessions/s/triggers")).json())["triggers"]
    assert "user-nightly" not in {c["id"] for c in listed}
    blank = await client.patch("/api/sessions/s/triggers/push", json={"task": "  "})
    assert blank.status == 400 and (await blank.json())["code"] == "task_required"
    assert (await api.trigger("s", "push"))["task"] == "triage the push"


async def test_fired_coalesced_and_failed_outcomes_on_a_busy_queen(make_client, tmp_path,
                                                                   fake_clock):
    settings = make_settings(tmp_path, queen_inbox_size=1)
    write_triggers_agent(settings.agents_dir, "meeting", [], tools=MEETING_TOOLS)
    meeting = agent_fixtures.MEETING = Meeting()
    client = await make_client(settings, clock=fake_clock)
    api = HiveApi(client)
    await api.create_session(session_id="q", agent_id="meeting")
    stream = await api.events("q")
    for trigger_id in ("a", "b"):
        await api.add_trigger("q", timer(trigger_id, task=f"do {trigger_id}",
                                              interval_minutes=60))
    await api.chat("q", worker_line(call_line("hold", name="busy")))
    await read_until(stream, lambda e: e["type"] == "tool_call_started"
                     and e["data"]["tool_name"] == "hold")

    assert (await client.post("/api/sessions/q/triggers/a/run")).status == 202
    assert (await api.trigger("q", "a"))["last_outcome"] == "fired"
    assert (await client.post("/api/sessions/q/triggers/a/run")).status == 202
    assert (await api.trigger("q", "a"))["last_outcome"] == "coalesced"
    full = await client.post("/api/sessions/q/triggers/b/run")
    assert full.status == 429 and (await full.json())["code"] == "inbox_full"
    b_card = await api.trigger("q", "b")
    assert b_card["last_outcome"] == "failed" and b_card["fire_count"] == 1
    assert b_card["last_error"].startswith("inbox_full: ")
    assert b_card["last_error_at"] == int(fake_clock.time() * 1000)
    meeting.gate.set()
    await until(stream, "execution_completed")
    stream.close()


async def test_a_flood_of_one_refusal_rewrites_the_trigger_state_once(client, settings,
                                                                       fake_clock):
    state = settings.home / "sessions" / "s" / "triggers.json"
    await deliver(client, "push", MARK, {"webhook-id": "a"})

    def written() -> tuple[int, int]:  # every save replaces the file: a new inode and ctime
        return state.stat().st_ino, state.stat().st_ctime_ns

    first = written()
    for _ in range(3):
        await deliver(client, "push", MARK, {"webhook-id": "a"})
    assert written() == first
    assert len(_rejections(settings, "s")) == 4, "every refusal is still an event"
    other = standard(fake_clock, "b", MARK, secret=OTHER_SECRET)
    await deliver(client, "push", MARK, other)  # another refusal: saved
    assert written() != first
