"""Webhooks across nodes (issue 14): two nodes in one process on one real Redis, each with its
own home. A delivery sent to any node reaches the session that runs the agent's trigger,
whichever node owns it, once; a delivery id is a duplicate on every node; the inbox of an
agent with no live session is shared; a delivery sent while the owner is gone waits for the
new owner; a forward that timed out releases the delivery's id, and the sender's retry is
applied once."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import redis.asyncio

from hive_server import keys
from hive_server.core.clock import FakeClock
from hive_server.core.eventlog_redis import session_key
from hive_server.core.redis_forward import Command, CommandLoop
from hive_server.services.sessions.commands import apply
from tests.conftest import ClientFactory, make_settings
from tests.hive_api import HiveApi
from tests.redis_server import REDIS_MARKS
from tests.test_webhooks_api import ENV, HOOKS, OTHER_SECRET, deliver, standard
from tests.trigger_support import webhook, write_triggers_agent

pytestmark = list(REDIS_MARKS)


async def _nodes(make_client: ClientFactory, tmp_path: Path, redis_url: str,
                 clock: FakeClock, *names: str) -> list[Any]:
    agents = tmp_path / "agents"
    write_triggers_agent(agents, "hooks", HOOKS)
    return [await make_client(make_settings(
        tmp_path / name, redis=redis_url, node_id=name, lease_seconds=1.0, agents_dir=agents,
        queens_dir=tmp_path / "queens", env={**ENV, "OTHER_ENV": OTHER_SECRET}), clock=clock)
        for name in names]


async def _logged(client: redis.asyncio.Redis, sid: str, *types: str) -> list[dict[str, Any]]:
    entries = await client.xrange(session_key(sid, "log"))
    return [event for _, fields in entries
            if (event := orjson.loads(fields[b"e"]))["type"] in types]


async def _fired_once(client: redis.asyncio.Redis, sid: str, delivery_id: str) -> None:
    """The session's log holds that delivery once, and one fire."""
    received = await _logged(client, sid, "webhook_received")
    assert [e["data"]["delivery_id"] for e in received] == [delivery_id]
    assert len(await _logged(client, sid, "trigger_fired")) == 1


async def _eventually(check, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_a_delivery_to_any_node_reaches_the_owners_session_once(
        make_client, tmp_path, redis_url, redis_client):
    clock = FakeClock()
    n1, n2 = await _nodes(make_client, tmp_path, redis_url, clock, "n1", "n2")
    await HiveApi(n1).create_session(session_id="s", agent_id="hooks")

    status, body = await deliver(n2, "push", headers=standard(clock, "msg_1"))
    assert (status, body) == (202, {"delivery_id": "msg_1", "delivered_to": ["s"]})
    status, body = await deliver(n1, "push", headers=standard(clock, "msg_2"))
    assert (status, body) == (202, {"delivery_id": "msg_2", "delivered_to": ["s"]})
    for node in (n1, n2):  # a retry, to either node
        status, body = await deliver(node, "push", headers=standard(clock, "msg_1"))
        assert status == 200 and body["duplicate"] is True

    received = await _logged(redis_client, "s", "webhook_received")
    assert [e["data"]["delivery_id"] for e in received] == ["msg_1", "msg_2"]
    fired = await _logged(redis_client, "s", "trigger_fired")
    assert [e["data"]["payload"]["number"] for e in fired] == [7, 7]
    # a refusal is stored in the sessions of the node that refused it (n1's), logged on n2
    assert len(await _logged(redis_client, "s", "webhook_rejected")) == 1
    assert not (tmp_path / "n2" / "home" / "webhooks" / "deliveries.jsonl").exists()


async def test_with_no_live_session_the_delivery_waits_in_the_shared_inbox(
        make_client, tmp_path, redis_url, redis_client):
    clock = FakeClock()
    n1, n2 = await _nodes(make_client, tmp_path, redis_url, clock, "n1", "n2")
    status, body = await deliver(n2, "push", headers=standard(clock, "msg_1"))
    assert (status, body) == (202, {"delivery_id": "msg_1", "delivered_to": [], "held": True})

    await HiveApi(n1).create_session(session_id="s", agent_id="hooks")
    received = await _logged(redis_client, "s", "webhook_received")
    assert [(e["data"]["delivery_id"], e["data"]["held"]) for e in received] == [
        ("msg_1", True)]
    assert len(await _logged(redis_client, "s", "trigger_fired")) == 1


async def test_a_delivery_while_the_owner_is_gone_waits_for_the_new_owner(
        make_client, tmp_path, redis_url, redis_client):
    clock = FakeClock()
    n1, n2 = await _nodes(make_client, tmp_path, redis_url, clock, "n1", "n2")
    await HiveApi(n1).create_session(session_id="s", agent_id="hooks")
    await n1.close()  # its lease handed over: n2's takeover loop resumes the session

    status, body = await deliver(n2, "push", headers=standard(clock, "msg_1"))
    assert (status, body) == (202, {"delivery_id": "msg_1", "delivered_to": ["s"]})
    assert "s" in {live.journal.id for live in n2.app[keys.SESSIONS].live()}
    await _fired_once(redis_client, "s", "msg_1")


async def test_a_forward_that_timed_out_lets_the_retry_through_and_fires_once(
        make_client, tmp_path, redis_url, redis_client):
    clock = FakeClock()
    n1, n2 = await _nodes(make_client, tmp_path, redis_url, clock, "n1", "n2")
    await HiveApi(n1).create_session(session_id="s", agent_id="hooks")
    live = n1.app[keys.SESSIONS].get("s")
    await live.commands.stop()  # the owner stalls: nothing serves the session's commands
    ingress = n2.app[keys.WEBHOOKS]
    ingress.forward_timeout = 0.3

    status, body = await deliver(n2, "push", headers=standard(clock, "msg_1"))
    assert status == 503 and body["code"] == "forward_timeout"

    async def handle(command: Command) -> dict[str, Any]:
        return await apply(live, command.body)

    loop = CommandLoop(redis_client, "s", "n1", handle)  # the owner back: the queued one
    loop.start()
    try:
        await _eventually(lambda: _logged(redis_client, "s", "trigger_fired"))
        ingress.forward_timeout = 5.0
        status, body = await deliver(n1, "push", headers=standard(clock, "msg_1"))
        assert (status, body) == (202, {"delivery_id": "msg_1", "delivered_to": ["s"]})
    finally:
        await loop.stop()
    await _fired_once(redis_client, "s", "msg_1")


async def test_a_session_elsewhere_with_the_trigger_inactive_leaves_the_delivery_held(
        make_client, tmp_path, redis_url, redis_client):
    clock = FakeClock()
    n1, n2 = await _nodes(make_client, tmp_path, redis_url, clock, "n1", "n2")
    await HiveApi(n1).create_session(session_id="s", agent_id="hooks")
    resp = await n1.post("/api/sessions/s/triggers/push/deactivate")
    assert resp.status == 200

    status, body = await deliver(n2, "push", headers=standard(clock, "msg_1"))
    assert (status, body) == (202, {"delivery_id": "msg_1", "delivered_to": [], "held": True})
    assert await _logged(redis_client, "s", "webhook_received") == []

    resp = await n1.post("/api/sessions/s/triggers/push/activate")
    assert resp.status == 200
    received = await _logged(redis_client, "s", "webhook_received")
    assert [(e["data"]["delivery_id"], e["data"]["held"]) for e in received] == [
        ("msg_1", True)]


async def test_a_session_elsewhere_checks_a_delivery_against_its_own_config(
        make_client, tmp_path, redis_url, redis_client):
    """Its PATCHed secret and its API-created webhook trigger, read from its saved state: a
    node that runs no session of the agent checks the delivery as the owner would."""
    clock = FakeClock()
    n1, n2 = await _nodes(make_client, tmp_path, redis_url, clock, "n1", "n2")
    await HiveApi(n1).create_session(session_id="s", agent_id="hooks")
    resp = await n1.patch("/api/sessions/s/triggers/push", json={"trigger_config": {
        "signature": "standard", "secret_env": "OTHER_ENV"}})
    assert resp.status == 200, await resp.text()
    await HiveApi(n1).add_trigger("s", webhook("api-hook", signature="none"))

    status, body = await deliver(n2, "push", headers=standard(clock, "msg_1"))
    assert status == 401 and body["code"] == "invalid_signature"  # the old secret
    status, body = await deliver(n2, "push", headers=standard(clock, "msg_2",
                                                              secret=OTHER_SECRET))
    assert (status, body) == (202, {"delivery_id": "msg_2", "delivered_to": ["s"]})
    status, body = await deliver(n2, "api-hook", headers={"webhook-id": "msg_3"})
    assert (status, body) == (202, {"delivery_id": "msg_3", "delivered_to": ["s"]})
    received = await _logged(redis_client, "s", "webhook_received")
    assert [(e["data"]["trigger_id"], e["data"]["delivery_id"]) for e in received] == [
        ("push", "msg_2"), ("api-hook", "msg_3")]
