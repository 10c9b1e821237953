"""One webhook trigger in several live sessions that do not agree about it: active in one and
deactivated in another, or re-configured (signature scheme, secret) by one session's PATCH.
A delivery reaches exactly the sessions whose own configuration verifies it."""

from __future__ import annotations

import json

import pytest

from hive_server import keys
from tests.conftest import create_session, make_settings
from tests.queen_support import of_type
from tests.test_webhooks_api import (
    BODY,
    ENV,
    HOOKS,
    OTHER_SECRET,
    deliver,
    github,
    log_of,
    standard,
)
from tests.trigger_support import fired, write_triggers_agent


@pytest.fixture
def settings(tmp_path):
    settings = make_settings(tmp_path, env=ENV | {"OTHER_SECRET": OTHER_SECRET})
    write_triggers_agent(settings.agents_dir, "hooks", HOOKS)
    return settings


@pytest.fixture
async def client(client):
    for session_id in ("s", "t"):
        await create_session(client, session_id=session_id, agent_id="hooks")
    return client


async def patch_push(client, session_id: str, config: dict) -> None:
    resp = await client.patch(f"/api/sessions/{session_id}/triggers/push",
                              json={"trigger_config": config})
    assert resp.status == 200, await resp.text()


async def test_a_delivery_reaches_only_the_sessions_with_the_trigger_active(
        client, settings, fake_clock):
    assert (await client.post("/api/sessions/s/triggers/push/deactivate")).status == 200
    status, body = await deliver(client, "push", headers=standard(fake_clock, "msg_a"))
    assert status == 202 and body == {"delivery_id": "msg_a", "delivered_to": ["t"]}
    assert of_type(log_of(settings, "s"), "webhook_received", "trigger_fired") == []
    assert len(fired(log_of(settings, "t"))) == 1
    assert not (settings.home / "webhooks" / "inbox").exists(), "a live session took it"


async def test_one_sessions_unsigned_config_does_not_open_another_sessions_trigger(
        client, settings, fake_clock):
    await patch_push(client, "s", {"signature": "none"})
    status, body = await deliver(client, "push", b'{"forged": true}',
                                 {"X-Request-Id": "req-1"})
    assert status == 202 and body["delivered_to"] == ["s"]
    assert of_type(log_of(settings, "t"), "webhook_received", "trigger_fired") == []

    status, body = await deliver(client, "push", headers=standard(fake_clock, "msg_b"))
    assert status == 202 and body["delivered_to"] == ["s", "t"]
    assert [e["data"]["payload"] for e in fired(log_of(settings, "t"))] == [json.loads(BODY)]


async def test_a_secret_changed_in_one_session_still_lets_the_others_verify(
        client, settings, fake_clock):
    await patch_push(client, "s", {"signature": "standard", "secret_env": "OTHER_SECRET"})
    status, body = await deliver(client, "push", headers=standard(fake_clock, "msg_c"))
    assert status == 202 and body["delivered_to"] == ["t"]
    status, body = await deliver(client, "push", headers=standard(
        fake_clock, "msg_d", secret=OTHER_SECRET))
    assert status == 202 and body["delivered_to"] == ["s"]
    status, body = await deliver(client, "push", headers=standard(
        fake_clock, "msg_e", secret="whsec_" + "A" * 43))
    assert status == 401 and body["code"] == "invalid_signature"
    assert len(fired(log_of(settings, "s"))) == 1 and len(fired(log_of(settings, "t"))) == 1


async def test_a_session_switched_to_github_gets_large_github_deliveries(
        client, settings, fake_clock):
    await patch_push(client, "t", {"signature": "github", "secret_env": "GH_SECRET"})
    big = json.dumps({"blob": "x" * (3 * 1024 * 1024)}).encode()
    status, body = await deliver(client, "push", big, github("guid-big", big))
    assert status == 202 and body["delivered_to"] == ["t"]
    assert of_type(log_of(settings, "s"), "webhook_received") == []


async def test_a_delivery_held_while_a_session_armed_its_trigger_is_taken_once_it_is_live(
        client, settings, fake_clock):
    """The race a held delivery closes: the ingress found no live session with the trigger
    active (the session had armed it and taken the inbox, but was not live yet) and put the
    delivery in the inbox. The session's take once live (and the ingress's after holding)
    hands it over; a second take finds nothing (taken once)."""
    manager = client.app[keys.SESSIONS]
    delivery = {"delivery_id": "late", "agent_id": "hooks", "received_at": 1,
                "headers": {}, "payload": {"late": True}}
    await manager.inbox.put("hooks", "push", delivery)
    live = manager.get("s")
    await live.triggers.take_held()
    await manager.get("t").triggers.take_held("push")  # already taken by s
    received = of_type(log_of(settings, "s"), "webhook_received")
    assert [(e["data"]["delivery_id"], e["data"]["held"]) for e in received] == [("late", True)]
    assert [e["data"]["payload"] for e in fired(log_of(settings, "s"))] == [{"late": True}]
    assert of_type(log_of(settings, "t"), "webhook_received") == []
