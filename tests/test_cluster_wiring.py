"""Two nodes in one process on one real Redis (issue 14): sessions in Redis, leases, the
takeover of a session whose owner's lease lapsed, and the fencing of the old owner."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis.asyncio

from hive_server import keys
from hive_server.core.eventlog_redis import session_key
from hive_server.core.redis_forward import PENDING, request_key
from hive_server.errors import HiveError
from tests.conftest import ClientFactory, make_settings
from tests.hive_api import HiveApi
from tests.redis_server import redis_test

LEASE_SECONDS = 1.0


def _node(tmp_path: Path, redis_url: str, name: str, **overrides: Any):
    return make_settings(tmp_path / name, redis=redis_url, node_id=name,
                         lease_seconds=LEASE_SECONDS, agents_dir=tmp_path / "agents",
                         queens_dir=tmp_path / "queens", **overrides)


async def _stream(client: redis.asyncio.Redis, sid: str) -> list[dict[str, Any]]:
    entries = await client.xrange(session_key(sid, "log"))
    return [orjson.loads(fields[b"e"]) for _, fields in entries]


async def _two_nodes(make_client: ClientFactory, tmp_path: Path,
                     redis_url: str) -> tuple[Any, Any, str]:
    """Nodes n1 and n2 on one Redis, and a new session n1 runs."""
    first = await make_client(_node(tmp_path, redis_url, "n1"))
    second = await make_client(_node(tmp_path, redis_url, "n2"))
    return first, second, (await HiveApi(first).create_session())["session_id"]


async def _leased_to(client: redis.asyncio.Redis, sid: str, node: str) -> bool:
    value = await client.get(session_key(sid, "lease"))
    return value is not None and value.decode().startswith(f"{node}:")


async def _eventually(check, timeout: float = 10.0) -> None:
    """Poll ``check`` (an async predicate) until it holds: a lease lapses on wall time."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


@redis_test
async def test_a_session_lives_in_redis_and_holds_a_lease(
        make_client: ClientFactory, tmp_path: Path, redis_url: str,
        redis_client: redis.asyncio.Redis) -> None:
    client = await make_client(_node(tmp_path, redis_url, "n1"))
    api = HiveApi(client)
    sid = (await api.create_session())["session_id"]
    answer = await api.chat(sid, "hello")
    lease = await redis_client.get(session_key(sid, "lease"))
    assert lease is not None and lease.decode().startswith("n1:")
    events = await _stream(redis_client, sid)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert any(e["type"] == "client_input_received" and e["seq"] == answer["seq"]
               for e in events)
    assert not (tmp_path / "n1" / "home" / "sessions" / sid / "events.jsonl").exists()
    meta = orjson.loads(await redis_client.get(session_key(sid, "meta")))
    assert meta["session_id"] == sid


@redis_test
async def test_another_node_takes_over_a_session_whose_lease_lapsed_and_fences_the_old(
        make_client: ClientFactory, tmp_path: Path, redis_url: str,
        redis_client: redis.asyncio.Redis) -> None:
    first, second, sid = await _two_nodes(make_client, tmp_path, redis_url)
    await HiveApi(first).chat(sid, "before")
    old = first.app[keys.SESSIONS]
    node1 = first.app[keys.REDIS_NODE]
    await node1.keeper.close()  # n1 stops renewing, as a node cut off from Redis would

    await _eventually(lambda: _leased_to(redis_client, sid, "n2"))
    manager = second.app[keys.SESSIONS]
    await _eventually(lambda: _true(sid in {s.journal.id for s in manager.live()}))
    await HiveApi(second).chat(sid, "after")
    # the old owner still holds its Session (its keeper is stopped, so nobody told it): its
    # appends are refused by the fence
    assert old.get(sid) is not None
    refused = await first.post(f"/api/sessions/{sid}/chat", json={"message": "stale"})
    assert refused.status == 409, await refused.text()
    assert (await refused.json())["code"] == "log_fenced"
    events = await _stream(redis_client, sid)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    texts = [e["data"].get("content") for e in events if e["type"] == "client_input_received"]
    assert texts.count("before") == 1 and texts.count("after") == 1
    assert "stale" not in texts


async def _true(value: bool) -> bool:
    return value


@redis_test
async def test_a_chat_or_trigger_run_sent_to_another_node_reaches_the_owner(
        make_client: ClientFactory, tmp_path: Path, redis_url: str,
        redis_client: redis.asyncio.Redis) -> None:
    owner, other, sid = await _two_nodes(make_client, tmp_path, redis_url)
    answer = await HiveApi(other).chat(sid, "via n2")
    events = await _stream(redis_client, sid)
    stored = [e for e in events if e["seq"] == answer["seq"]]
    assert stored[0]["type"] == "client_input_received"
    assert stored[0]["data"]["content"] == "via n2"
    trigger = await HiveApi(owner).add_trigger(sid, {"id": "t", "trigger_type": "timer",
                                                     "trigger_config": {"interval_minutes": 60},
                                                     "task": "check"})
    assert trigger["id"] == "t"
    run = await other.post(f"/api/sessions/{sid}/triggers/t/run", json={})
    assert run.status == 202, await run.text()
    ran = await run.json()
    assert ran["trigger"]["id"] == "t" and ran["seq"] > answer["seq"]
    # a route only the owner serves names the owner
    cancel = await other.post(f"/api/sessions/{sid}/cancel")
    assert cancel.status == 409
    assert (await cancel.json())["node_id"] == "n1"
    gone = await other.post("/api/sessions/nope/chat", json={"message": "x"})
    assert gone.status == 404


@redis_test
async def test_a_node_that_lost_the_lease_drops_the_session_writing_nothing(
        make_client: ClientFactory, tmp_path: Path, redis_url: str,
        redis_client: redis.asyncio.Redis, caplog: Any) -> None:
    first, second, sid = await _two_nodes(make_client, tmp_path, redis_url)
    node1 = first.app[keys.REDIS_NODE]
    await node1.keeper.close()  # paused: it renews nothing

    await _eventually(lambda: _leased_to(redis_client, sid, "n2"))
    await _eventually(lambda: _true(sid in {s.journal.id for s in
                                            second.app[keys.SESSIONS].live()}))
    before = await _stream(redis_client, sid)
    meta_before = await redis_client.get(session_key(sid, "meta"))
    caplog.clear()
    node1.on_lost(sid)  # what its keeper does at its first round after the pause
    manager = first.app[keys.SESSIONS]
    await _eventually(lambda: _true(not manager.is_held(sid)))
    assert sid not in {s.journal.id for s in manager.live()}
    assert await _stream(redis_client, sid) == before  # nothing appended by n1
    assert await redis_client.get(session_key(sid, "meta")) == meta_before
    errors = [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]
    assert errors == [], [r.getMessage() for r in errors]
    answer = await first.post(f"/api/sessions/{sid}/cancel")
    assert answer.status == 409 and (await answer.json())["node_id"] == "n2"


@redis_test
async def test_every_node_lists_the_sessions_live_on_other_nodes(
        make_client: ClientFactory, tmp_path: Path, redis_url: str) -> None:
    first = await make_client(_node(tmp_path, redis_url, "n1"))
    second = await make_client(_node(tmp_path, redis_url, "n2"))
    one = (await HiveApi(first).create_session())["session_id"]
    two = (await HiveApi(second).create_session())["session_id"]
    for client, here, there, owner in ((first, one, two, "n2"), (second, two, one, "n1")):
        listed = {row["session_id"]: row for row in
                  (await (await client.get("/api/sessions")).json())["sessions"]}
        assert set(listed) == {one, two}
        assert "node_id" not in listed[here]
        assert listed[there]["node_id"] == owner and listed[there]["agent_path"] == ""


@redis_test
async def test_a_session_whose_log_fails_is_resumed_from_its_stream(
        make_client: ClientFactory, tmp_path: Path, redis_url: str,
        redis_client: redis.asyncio.Redis) -> None:
    first, second, sid = await _two_nodes(make_client, tmp_path, redis_url)
    failing = first.app[keys.SESSIONS].get(sid).journal
    await failing.log.flush()
    key = session_key(sid, "log")
    (_, fields), = await redis_client.xrevrange(key, count=1)
    foreign = orjson.loads(fields[b"e"])
    foreign["seq"] += 1  # another writer (an import, a hand edit) appends the next seq
    await redis_client.xadd(key, {b"e": orjson.dumps(foreign)}, id=f"{foreign['seq']}-0")
    refused = await first.post(f"/api/sessions/{sid}/chat", json={"message": "refused"})
    assert refused.status == 409, await refused.text()
    assert (await refused.json())["code"] == "log_seq_rejected"

    def resumed() -> bool:
        return any(live.journal.id == sid and live.journal is not failing
                   for client in (first, second) for live in client.app[keys.SESSIONS].live())

    await _eventually(lambda: _true(resumed()))  # dropped by n1, resumed by a takeover
    answer = await HiveApi(second).chat(sid, "after")
    events = await _stream(redis_client, sid)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    texts = [e["data"].get("content") for e in events if e["type"] == "client_input_received"]
    assert texts == ["after"] and events[answer["seq"] - 1]["data"]["content"] == "after"


@redis_test
async def test_a_chat_sent_again_with_its_request_id_is_stored_once(
        make_client: ClientFactory, tmp_path: Path, redis_url: str,
        redis_client: redis.asyncio.Redis) -> None:
    first, second, sid = await _two_nodes(make_client, tmp_path, redis_url)
    body = {"message": "once", "request_id": "client-42"}
    answers = []
    for client in (first, second, first):  # the owner itself, another node, the owner again
        resp = await client.post(f"/api/sessions/{sid}/chat", json=body)
        assert resp.status == 202, await resp.text()
        answers.append((await resp.json())["seq"])
    assert len(set(answers)) == 1
    events = await _stream(redis_client, sid)
    texts = [e["data"].get("content") for e in events if e["type"] == "client_input_received"]
    assert texts == ["once"]
    other = await first.post(f"/api/sessions/{sid}/chat",
                             json={"message": "twice", "request_id": "client-43"})
    assert (await other.json())["seq"] > answers[0]
    bad = await first.post(f"/api/sessions/{sid}/chat",
                           json={"message": "x", "request_id": "no spaces"})
    assert bad.status in (400, 422)


@redis_test
async def test_another_node_neither_deletes_nor_retitles_a_session_it_does_not_run(
        make_client: ClientFactory, tmp_path: Path, redis_url: str,
        redis_client: redis.asyncio.Redis) -> None:
    first, second, sid = await _two_nodes(make_client, tmp_path, redis_url)
    before = await _stream(redis_client, sid)
    for method, path, body in (("DELETE", f"/api/sessions/history/{sid}", None),
                               ("PATCH", f"/api/sessions/{sid}", {"title": "renamed"})):
        answer = await second.request(method, path, json=body)
        assert answer.status == 409, (method, await answer.text())
        assert (await answer.json())["node_id"] == "n1"
    assert await _stream(redis_client, sid) == before
    meta = orjson.loads(await redis_client.get(session_key(sid, "meta")))
    assert meta["title"] != "renamed"
    assert (await first.delete(f"/api/sessions/history/{sid}")).status == 200
    assert await redis_client.exists(session_key(sid, "log")) == 0


@redis_test
async def test_a_chat_an_earlier_owner_left_pending_is_found_or_applied_once(
        make_client: ClientFactory, tmp_path: Path, redis_url: str,
        redis_client: redis.asyncio.Redis) -> None:
    _, second, sid = await _two_nodes(make_client, tmp_path, redis_url)
    forwarder = second.app[keys.REDIS_NODE].forwarder
    body = {"op": "chat", "message": "stored", "shown": None}
    stored = await forwarder.ask(sid, body, 10.0, "r-stored")
    # as if the owner had stored it and died before recording its reply
    await redis_client.set(request_key(sid, "r-stored"), PENDING)
    assert (await forwarder.ask(sid, body, 10.0, "r-stored"))["seq"] == stored["seq"]
    # as if the owner had taken it and died before storing it
    await redis_client.set(request_key(sid, "r-lost"), PENDING)
    lost = await forwarder.ask(sid, {**body, "message": "lost"}, 10.0, "r-lost")
    events = await _stream(redis_client, sid)
    inputs = [(e["seq"], e["data"]["content"], e["data"].get("request_id"))
              for e in events if e["type"] == "client_input_received"]
    assert inputs == [(stored["seq"], "stored", "r-stored"), (lost["seq"], "lost", "r-lost")]
    # a trigger run left pending cannot be looked for: in doubt, never applied twice
    await redis_client.set(request_key(sid, "r-run"), PENDING)
    with pytest.raises(HiveError) as info:
        await forwarder.ask(sid, {"op": "trigger_run", "trigger_id": "t"}, 10.0, "r-run")
    assert info.value.code == "forward_in_doubt"
