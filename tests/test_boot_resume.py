"""Boot that does not wait for the sessions: the listener opens first, health says how many
sessions are still ``resuming``, those answer ``session_loading`` until they are live, at most
``resume_concurrency`` resume at once, and a shutdown in the middle leaves nothing running.

A ``GatedStore`` (the real store, whose ``open_files`` waits at a gate the test opens) holds
each resume at its first step, so the tests see the boot in the middle without sleeping."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from hive_server import keys
from hive_server.app import create_app
from hive_server.core.clock import FakeClock
from hive_server.llm.offline import OfflineClient
from hive_server.models.session import SessionMeta
from hive_server.services.sessions.store import Opened, SessionFiles, SessionStore
from hive_server.services.tools.builtins import builtin_tools
from hive_server.settings import Settings
from tests.conftest import AUTH, create_session, make_settings
from tests.queen_support import of_type
from tests.test_webhooks_api import ENV, HOOKS, deliver, log_of, standard
from tests.trigger_support import fired, write_triggers_agent


class GatedStore(SessionStore):
    """Counts the resumes inside ``open_files`` and holds them there until ``open``."""

    def __init__(self, home: Path):
        super().__init__(home)
        self.inside = 0
        self.most = 0
        self._gate = asyncio.Event()
        self._changed = asyncio.Condition()

    async def open_files(self, session_id: str, resumed: bool,
                         opened: Opened | None = None) -> SessionFiles:
        async with self._changed:
            self.inside += 1
            self.most = max(self.most, self.inside)
            self._changed.notify_all()
        try:
            await self._gate.wait()
        finally:
            self.inside -= 1
        return await super().open_files(session_id, resumed, opened)

    async def until_inside(self, count: int) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self.inside >= count)

    def open(self) -> None:
        self._gate.set()


async def live_sessions(make_client, settings: Settings, ids: list[str],
                        **body: Any) -> None:
    """Sessions ``ids``, left live by a stop (the next start resumes them)."""
    first = await make_client(settings)
    for session_id in ids:
        await create_session(first, session_id=session_id, **body)
    await first.close()


@pytest.fixture
def start_gated(aiohttp_client, settings):
    """Start the app on ``settings`` with a ``GatedStore``; returns (client, store)."""

    async def start(settings: Settings = settings, **kwargs: Any):
        store = GatedStore(settings.home)
        app = create_app(settings, llm=OfflineClient(), clock=kwargs.get("clock", FakeClock()))
        app[keys.SESSION_STORE] = store
        return await aiohttp_client(app, headers=AUTH), store

    return start


def open_files_under(folder: Path) -> list[str]:
    """The files under ``folder`` this process holds open (Linux: /proc/self/fd)."""
    held = []
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the listing's own descriptor is gone by now
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target.startswith(f"{folder}{os.sep}"):
                held.append(target)
    return held


async def health(client) -> dict[str, Any]:
    resp = await client.get("/api/health")
    assert resp.status == 200
    return await resp.json()


async def test_health_answers_while_sessions_resume_and_they_answer_loading_until_live(
        make_client, start_gated, settings):
    ids = ["a", "b", "c"]
    await live_sessions(make_client, settings, ids)
    client, store = await start_gated()
    await store.until_inside(3)
    assert await health(client) | {"resuming": 3, "sessions": 0} == await health(client)

    resp = await client.post("/api/sessions/a/chat", json={"message": "hi"})
    assert resp.status == 409 and (await resp.json())["code"] == "session_loading"
    resp = await client.get("/api/sessions/b/events")
    assert resp.status == 409 and (await resp.json())["code"] == "session_loading"
    resp = await client.get("/api/sessions/c")
    assert resp.status == 202 and (await resp.json())["loading"] is True
    resp = await client.post("/api/sessions", json={"session_id": "a"})
    assert resp.status == 409 and (await resp.json())["code"] == "session_loading"
    resp = await client.delete("/api/sessions/history/a")
    assert resp.status == 409 and (await resp.json())["code"] == "session_loading"

    store.open()
    await client.app[keys.SESSIONS].boot.wait()
    body = await health(client)
    assert body["resuming"] == 0 and body["sessions"] == 3
    listed = await (await client.get("/api/sessions")).json()
    assert sorted(s["session_id"] for s in listed["sessions"]) == ids
    resp = await client.post("/api/sessions/a/chat", json={"message": "hi"})
    assert resp.status == 202


async def test_at_most_resume_concurrency_sessions_resume_at_once(
        make_client, start_gated, tmp_path):
    settings = make_settings(tmp_path, resume_concurrency=3)
    ids = [f"s{n}" for n in range(7)]
    await live_sessions(make_client, settings, ids)
    client, store = await start_gated(settings)
    await store.until_inside(3)
    for _ in range(20):  # let any resume beyond the bound reach the gate too
        await asyncio.sleep(0)
    assert (store.inside, (await health(client))["resuming"]) == (3, 7)
    store.open()
    await client.app[keys.SESSIONS].boot.wait()
    assert store.most == 3
    assert (await health(client))["sessions"] == 7


async def test_a_shutdown_during_the_resume_leaves_nothing_running_and_resumes_next_start(
        make_client, start_gated, settings):
    ids = ["a", "b", "c", "d"]
    await live_sessions(make_client, settings.model_copy(update={"resume_concurrency": 2}),
                        ids)
    client, store = await start_gated(settings.model_copy(update={"resume_concurrency": 2}))
    await store.until_inside(2)
    await client.close()
    running = [task.get_name() for task in asyncio.all_tasks()
               if task.get_name().startswith(("boot-resume", "session"))]
    assert running == []
    assert store.inside == 0
    assert open_files_under(settings.home) == []  # those waiting had their logs open

    again = await make_client(settings)
    listed = await (await again.get("/api/sessions")).json()
    assert sorted(s["session_id"] for s in listed["sessions"]) == ids


class SlowOpenStore(SessionStore):
    """The real store, whose ``live_opened`` (in its thread) holds the files it opened until
    the test releases it."""

    def __init__(self, home: Path):
        super().__init__(home)
        self.inside = threading.Event()
        self.release = threading.Event()

    def live_opened(self, names):
        found = super().live_opened(names)
        self.inside.set()
        self.release.wait(10)
        return found


async def test_a_shutdown_while_a_chunk_is_being_opened_closes_what_it_opened(
        aiohttp_client, make_client, settings):
    await live_sessions(make_client, settings, ["a", "b"])
    store = SlowOpenStore(settings.home)
    app = create_app(settings, llm=OfflineClient(), clock=FakeClock())
    app[keys.SESSION_STORE] = store
    client = await aiohttp_client(app, headers=AUTH)
    assert await asyncio.to_thread(store.inside.wait, 10)
    assert len(open_files_under(settings.home / "sessions")) == 2  # both logs, in the thread
    await client.close()  # the resume is cancelled while its thread still holds them
    store.release.set()  # the thread returns; its files are closed on the loop
    assert await asyncio.to_thread(closed_within, settings.home / "sessions", 10)


def closed_within(folder: Path, seconds: float) -> bool:
    """Whether every file under ``folder`` is closed within ``seconds`` (a thread's wait)."""
    deadline = time.monotonic() + seconds
    while open_files_under(folder):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


async def test_a_webhook_for_a_session_not_resumed_yet_is_held_and_handed_over(
        make_client, start_gated, tmp_path, fake_clock):
    settings = make_settings(tmp_path, env=ENV)
    write_triggers_agent(settings.agents_dir, "hooks", HOOKS)
    await live_sessions(make_client, settings, ["s"], agent_id="hooks")
    client, store = await start_gated(settings, clock=fake_clock)
    await store.until_inside(1)

    status, body = await deliver(client, "push", headers=standard(fake_clock, "msg_boot"))
    assert status == 202 and body["held"] is True and body["delivered_to"] == []

    store.open()
    await client.app[keys.SESSIONS].boot.wait()
    received = of_type(log_of(settings), "webhook_received")
    assert [e["data"]["delivery_id"] for e in received] == ["msg_boot"]
    assert len(fired(log_of(settings), "push")) == 1


def test_builtin_tool_schemas_are_built_once_and_each_session_keeps_its_workspace(tmp_path):
    first = builtin_tools(tmp_path / "one", FakeClock(0.0))
    second = builtin_tools(tmp_path / "two", FakeClock(86400.0))
    for name in ("get_time", "read_file", "write_file", "list_files"):
        assert first[name].spec is second[name].spec, name
    assert first["get_time"].run is not second["get_time"].run


async def test_each_sessions_builtin_tools_use_its_own_workspace_and_clock(tmp_path):
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    first = builtin_tools(tmp_path / "one", FakeClock(0.0))
    second = builtin_tools(tmp_path / "two", FakeClock(86400.0))
    await first["write_file"].run({"path": "x.txt", "content": "one"})
    assert (tmp_path / "one" / "x.txt").read_text() == "one"
    assert not (tmp_path / "two" / "x.txt").exists()
    assert await first["get_time"].run({}) == "1970-01-01T00:00:00+00:00"
    assert await second["get_time"].run({}) == "1970-01-02T00:00:00+00:00"


async def test_a_resume_rewrites_meta_json_only_when_its_status_changes(make_client, settings):
    await live_sessions(make_client, settings, ["same", "crashed"])
    crashed = settings.home / "sessions" / "crashed" / "meta.json"
    crashed.write_text(crashed.read_text().replace('"status": "idle"', '"status": "active"'))
    same = settings.home / "sessions" / "same" / "meta.json"
    before = {path: path.stat().st_ino for path in (same, crashed)}

    client = await make_client(settings)
    assert (await health(client))["sessions"] == 2
    assert same.stat().st_ino == before[same], "an unchanged meta.json is not written again"
    assert crashed.stat().st_ino != before[crashed]
    assert SessionMeta.model_validate_json(crashed.read_bytes()).status == "idle"


async def test_opening_a_queen_while_her_session_resumes_is_409_never_a_second_session(
        make_client, start_gated, settings):
    await live_sessions(make_client, settings, ["hers"])
    client, store = await start_gated()
    await store.until_inside(1)
    resp = await client.post("/api/queen/default/session", json={})
    assert resp.status == 409 and (await resp.json())["code"] == "session_loading"

    store.open()
    await client.app[keys.SESSIONS].boot.wait()
    resp = await client.post("/api/queen/default/session", json={})
    assert resp.status == 200
    assert await resp.json() == {"session_id": "hers", "queen_id": "default", "status": "live"}
    assert sorted(p.name for p in (settings.home / "sessions").iterdir()) == ["hers"]


class CountingStore(SessionStore):
    """The real store, counting the ``meta.json`` reads of each session folder."""

    def __init__(self, home: Path):
        super().__init__(home)
        self.reads: dict[str, int] = {}

    def _load(self, folder: Path):
        self.reads[folder.name] = self.reads.get(folder.name, 0) + 1
        return super()._load(folder)


async def test_the_resume_at_start_reads_each_meta_json_once(aiohttp_client, make_client,
                                                             settings):
    ids = ["a", "b", "c"]
    await live_sessions(make_client, settings, ids)
    store = CountingStore(settings.home)
    app = create_app(settings, llm=OfflineClient(), clock=FakeClock())
    app[keys.SESSION_STORE] = store
    client = await aiohttp_client(app, headers=AUTH)
    await client.app[keys.SESSIONS].boot.wait()
    assert (await health(client))["sessions"] == 3
    assert store.reads == {session_id: 1 for session_id in ids}
