"""GET /api/sessions/{id} of a live session answers the bytes the ``LiveSessionDetail`` model
writes, though they are kept between polls (web/detail_cache.py): after every kind of change
(an event, a rename, a colony loaded and unloaded, a trigger added) the answer is the model's,
with its keys in the model's order; only ``uptime_seconds`` moves between two polls."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest

from hive_server import keys
from hive_server.web.detail_cache import DetailCache
from hive_server.web.views import session_answer
from tests.agent_fixtures import agents_tree

UPTIME = re.compile(rb'"uptime_seconds":[0-9.e+-]+')


@pytest.fixture
def agents_dir(settings) -> Path:
    return agents_tree(settings.agents_dir)


@pytest.fixture
async def client(agents_dir, client):
    return client


async def polled(client, session_id: str) -> bytes:
    resp = await client.get(f"/api/sessions/{session_id}")
    assert resp.status == 200 and resp.content_type == "application/json"
    return await resp.read()


def model_bytes(client, session_id: str) -> bytes:
    answer, status = session_answer(client.app[keys.SESSIONS].get(session_id))
    assert status == 200
    return answer.wire_bytes()


def same_but_uptime(a: bytes, b: bytes) -> bool:
    return UPTIME.sub(b"", a) == UPTIME.sub(b"", b)


async def test_every_change_is_in_the_next_answer_as_the_model_writes_it(client, api):
    await api.create_session(session_id="s")
    seen = [await polled(client, "s")]
    changes = [
        lambda: api.chat("s", "hello"),
        lambda: client.patch("/api/sessions/s", json={"title": "Renamed"}),
        lambda: client.post("/api/sessions/s/colony", json={"agent_id": "notes"}),
        lambda: api.add_trigger("s", {"id": "t", "trigger_type": "timer",
                                      "trigger_config": {"interval_minutes": 5},
                                      "task": "tick"}),
        lambda: client.delete("/api/sessions/s/colony"),
    ]
    for change in changes:
        await change()
        body = await polled(client, "s")
        assert same_but_uptime(body, model_bytes(client, "s"))
        assert not same_but_uptime(body, seen[-1])  # the change is in it
        seen.append(body)
    view = orjson.loads(seen[-1])
    assert view["title"] == "Renamed" and [c["id"] for c in view["entry_points"]] == ["t"]
    assert view["colony_id"] is None and orjson.loads(seen[3])["colony_id"] == "notes"


async def test_an_unchanged_session_answers_the_same_bytes_but_its_uptime(client, api):
    await api.create_session(session_id="s")
    first, second = await polled(client, "s"), await polled(client, "s")
    assert same_but_uptime(first, second) and same_but_uptime(first, model_bytes(client, "s"))
    assert list(orjson.loads(first)) == list(orjson.loads(model_bytes(client, "s")))


async def test_the_least_recently_asked_session_is_dropped_past_the_size(client, api):
    cache = DetailCache(size=2)
    for sid in ("a", "b", "c"):
        await api.create_session(session_id=sid)
        assert same_but_uptime(cache.answer(client.app[keys.SESSIONS].get(sid)),
                               model_bytes(client, sid))
    assert list(cache._entries) == ["b", "c"]
