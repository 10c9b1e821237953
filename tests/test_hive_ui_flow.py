"""Hive's desktop UI, replayed against the real app as its client code drives it.

The sequence and the fields come from ``shared/reference/hive-ui-contract.md`` (read from
Hive's ``core/frontend/src``): the browser rides the ``hive_token`` cookie set by opening
``/?token=...`` and sends no token header; POSTs carry the page's own ``Origin``; SSE is read
without a cursor (the UI never sends ``Last-Event-ID``); every field the UI reads is checked
with its type.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from tests.agent_fixtures import write_agent
from tests.conftest import TOKEN
from tests.queen_support import write_queen
from tests.sse_reader import read_frame

NONE = type(None)
NUM = (int, float)
OPT_STR = (str, NONE)
OPT_NUM = (int, float, NONE)
ASK_TOOL = 'call:get_time {"timezone": "Europe/Berlin"}'

ENVELOPE = {"type": str, "seq": int, "timestamp": str, "stream_id": str, "node_id": str,
            "execution_id": OPT_STR, "correlation_id": OPT_STR, "data": dict}
EVENT_DATA: dict[str, dict[str, Any]] = {
    "session_snapshot": {"snapshot_seq": int, "activity": str, "is_executing": bool,
                         "awaiting_input": bool, "interrupted": bool,
                         "queen_busy_reason": OPT_STR, "park_reason": OPT_STR,
                         "pending_questions": (list, NONE), "current_tool_calls": list},
    "client_input_received": {"content": str},
    "client_input_committed": {"seq": int},
    "client_output_delta": {"content": str, "snapshot": str, "iteration": int,
                            "inner_turn": int},
    "client_input_requested": {"questions": list, "park_reason": str},
    "tool_call_started": {"tool_use_id": str, "tool_name": str, "tool_input": dict},
    "tool_call_completed": {"tool_use_id": str, "tool_name": str, "result": str,
                            "is_error": bool},
    "llm_turn_complete": {"input_tokens": int, "output_tokens": int, "cached_tokens": int,
                          "cache_creation_tokens": int, "cost_usd": NUM, "stop_reason": str},
    "execution_failed": {"error": str},
    "loop_state_changed": {"activity": str, "park_reason": OPT_STR,
                           "interrupt_cause": OPT_STR},
    "trigger_available": {"trigger_id": str, "trigger_type": str, "name": str, "task": str,
                          "trigger_config": dict, "next_fire_in": OPT_NUM,
                          "next_fire_at": OPT_NUM, "fire_count": int,
                          "last_fired_at": OPT_NUM},
    "trigger_deactivated": {"trigger_id": str},
    "trigger_removed": {"trigger_id": str},
    "trigger_fired": {"trigger_id": str, "trigger_type": str, "name": str, "task": str,
                      "fire_count": int, "last_fired_at": int, "next_fire_at": OPT_NUM,
                      "next_fire_in": OPT_NUM},
}
EVENT_DATA["trigger_activated"] = EVENT_DATA["trigger_updated"] = EVENT_DATA["trigger_available"]
LIVE_ROW = {"session_id": str, "colony_id": OPT_STR, "queen_id": str, "queen_name": str,
            "phase": str, "is_executing": bool, "awaiting_input": bool, "interrupted": bool,
            "interrupt_cause": OPT_STR, "queen_busy_reason": OPT_STR, "park_reason": OPT_STR,
            "current_tool_name": OPT_STR, "current_tool_count": int,
            "active_worker_count": int, "last_event_at": OPT_STR, "snapshot_seq": int}
LIVE_SESSION = {"session_id": str, "queen_id": str, "colony_id": OPT_STR, "agent_path": str,
                "queen_phase": str, "colony_spawned": bool, "spawned_colony_id": OPT_STR}


def check(obj: dict[str, Any], types: dict[str, Any], where: str = "") -> None:
    for key, kind in types.items():
        assert key in obj, f"{where}: {key} missing in {obj}"
        assert isinstance(obj[key], kind), f"{where}: {key}={obj[key]!r} is not {kind}"
        assert not (kind in (int, NUM) and isinstance(obj[key], bool)), f"{where}: {key}"


def check_event(event: dict[str, Any]) -> None:
    check(event, ENVELOPE, event.get("type", "?"))
    check(event["data"], EVENT_DATA.get(event["type"], {}), event["type"])


class Browser:
    """Hive's UI in a browser tab: cookie auth, the page's Origin on writes, fetch-read SSE."""

    def __init__(self, client: TestClient):
        self.client = client
        self.origin = f"http://127.0.0.1:{client.port}"

    async def boot(self) -> None:
        resp = await self.client.get(f"/?token={TOKEN}", allow_redirects=False)
        assert resp.status in (200, 303) and "hive_token" in resp.cookies

    async def get(self, path: str, status: int = 200) -> Any:
        resp = await self.client.get("/api" + path)
        assert resp.status == status, (path, resp.status, await resp.text())
        return await resp.json()

    async def send(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        resp = await self.client.request(method, "/api" + path, json=body,
                                         headers={"Origin": self.origin})
        assert resp.status == status, (path, resp.status, await resp.text())
        return await resp.json()

    async def post(self, path: str, body: Any = None, status: int = 200) -> Any:
        return await self.send("POST", path, body, status)

    async def sse(self, session_id: str) -> Stream:
        resp = await self.client.get(f"/api/sessions/{session_id}/events",
                                     headers={"Accept": "text/event-stream"})
        assert resp.status == 200
        stream = Stream(resp)
        opening = await stream.next()
        assert (opening["type"], opening["seq"]) == ("session_snapshot", 0)
        stream.snapshot = opening
        return stream


class Stream:
    def __init__(self, resp: ClientResponse):
        self.resp = resp
        self.snapshot: dict[str, Any] = {}
        self.seen: list[dict[str, Any]] = []

    async def next(self) -> dict[str, Any]:
        frame = await read_frame(self.resp)
        assert frame is not None, "the stream ended"
        check_event(frame["event"])
        self.seen.append(frame["event"])
        return frame["event"]

    async def until(self, kind: str, **data: Any) -> list[dict[str, Any]]:
        got = []
        while True:
            event = await self.next()
            got.append(event)
            if event["type"] == kind and all(event["data"].get(k) == v
                                             for k, v in data.items()):
                return got

    def close(self) -> None:
        self.resp.close()


@pytest.fixture
async def browser(make_client, settings) -> Browser:
    write_queen(settings.queens_dir, "hive_keeper", "name: Keeper\ntitle: of the hive\n")
    write_agent(settings.agents_dir, "notes", {"name": "Notes", "description": "notes",
                                               "category": "writing", "tags": ["n"]})
    tab = Browser(await make_client(settings, headers={}))
    await tab.boot()
    return tab


async def open_queen(tab: Browser, queen: str = "hive_keeper") -> str:
    opened = await tab.post(f"/queen/{queen}/session", {"initial_phase": "independent"})
    check(opened, {"session_id": str, "queen_id": str, "status": str})
    assert opened["status"] in ("live", "resumed", "created")
    return opened["session_id"]


async def test_boot_answers_every_sidebar_call_with_the_fields_it_reads(browser):
    llm = await browser.get("/config/llm")
    check(llm, {"has_api_key": bool, "provider": str, "model": str, "max_tokens": int,
                "max_context_tokens": int, "connected_providers": list,
                "active_subscription": NONE, "detected_subscriptions": list,
                "subscriptions": list})
    assert llm["has_api_key"] is True  # the offline model answers: the app is not gated

    discover = await browser.get("/discover")
    (entry,) = discover["writing"]
    check(entry, {"path": str, "name": str, "description": str, "category": str, "tags": list,
                  "is_loaded": bool, "tool_count": int, "node_count": int,
                  "session_count": int, "run_count": int, "last_active": OPT_STR,
                  "workers": list})
    assert entry["path"].rstrip("/").rsplit("/", 1)[-1] == "notes"  # agentSlug(path)

    assert (await browser.get("/sessions")) == {"sessions": []}
    queens = (await browser.get("/queen/profiles"))["queens"]
    for queen in queens:
        check(queen, {"id": str, "name": str, "title": str, "has_avatar": bool, "custom": bool})
    profile = await browser.get(f"/queen/{queens[0]['id']}/profile")
    check(profile, {"id": str, "name": str, "title": str, "summary": str})
    assert (await browser.get("/sessions/history")) == {"sessions": [], "corrupt": [], "total": 0,
                                                         "next_cursor": None}

    for feed in ("/api/sessions/live", "/api/events/global"):  # opened by the app shell
        resp = await browser.client.get(feed)
        assert resp.status == 200 and resp.content_type == "text/event-stream"
        resp.close()


async def test_the_queen_page_chats_asks_reloads_without_duplicates_and_stops(browser):
    sid = await open_queen(browser)
    assert await open_queen(browser) == sid  # opening her again finds the live session
    feed = await browser.client.get("/api/sessions/live")
    raw = (await feed.content.readuntil(b"\n\n")).decode()
    assert raw.startswith("event: snapshot\n")
    (row,) = json.loads(raw.split("data: ", 1)[1])["sessions"]
    check(row, LIVE_ROW, "live row")
    feed.close()
    detail = await browser.get(f"/sessions/{sid}")
    check(detail, LIVE_SESSION, "session")
    assert detail["queen_phase"] == "independent" and detail["agent_path"] == ""
    await browser.post(f"/sessions/{sid}/presence", {"visible": True})
    assert isinstance((await browser.get(f"/sessions/{sid}/tasks"))["tasks"], list)
    await browser.get(f"/sessions/{sid}/workers")

    stream = await browser.sse(sid)
    await browser.post(f"/sessions/{sid}/chat", {"message": f"What time is it?\n{ASK_TOOL}"},
                       status=202)
    events = await stream.until("loop_state_changed", activity="awaiting_user")
    kinds = [e["type"] for e in events]
    for kind in ("client_input_received", "client_input_committed", "client_output_delta",
                 "tool_call_started",
                 "tool_call_completed", "llm_turn_complete", "execution_completed"):
        assert kind in kinds, kind
    bubbles = {(e["execution_id"], e["data"]["iteration"])
               for e in events if e["type"] == "client_output_delta"}
    assert len(bubbles) == 2, "text before and after the tool call are two bubbles"

    await browser.post(f"/sessions/{sid}/chat", {"message": "ask me something"}, status=202)
    events = await stream.until("loop_state_changed", park_reason="ask_user")
    (asked,) = [e for e in events if e["type"] == "client_input_requested"]
    for question in asked["data"]["questions"]:
        check(question, {"id": str, "prompt": str})
    await browser.post(f"/sessions/{sid}/chat", {"message": "blue"}, status=202)
    await stream.until("loop_state_changed", park_reason="turn_done")
    stream.close()

    # reload: the history page, then a stream without a cursor; dedupe by timestamp|seq
    page = await browser.get(f"/sessions/{sid}/events/history?limit=500")
    check(page, {"events": list, "start_offset": int, "start_index": int,
                 "has_more_older": bool})
    reloaded = await browser.sse(sid)
    assert reloaded.snapshot["data"]["snapshot_seq"] == page["events"][-1]["seq"]
    assert reloaded.snapshot["data"]["activity"] == "awaiting_user"
    tail = [await reloaded.next() for _ in range(min(200, len(page["events"])))]
    shown: dict[str, dict[str, Any]] = {}
    for event in page["events"] + tail:
        check_event(event)
        shown.setdefault(f"{event['timestamp']}|{event['seq']}", event)
    assert sorted(e["seq"] for e in shown.values()) == [e["seq"] for e in page["events"]]
    said = [e["data"]["content"] for e in page["events"] if e["type"] == "client_input_received"]
    assert said == [f"What time is it?\n{ASK_TOOL}", "ask me something", "blue"]
    older = await browser.get(f"/sessions/{sid}/events/history?limit=5&before_index="
                              f"{page['start_index'] + 10}&before_offset=0")
    assert [e["seq"] for e in older["events"]] == list(range(6, 11))
    assert older["has_more_older"] is True

    # Stop, then the stream ends; a 404 makes the page resume the same id
    assert (await browser.post(f"/sessions/{sid}/cancel-queen"))["cancelled"] is False
    await browser.send("DELETE", f"/sessions/{sid}")
    ending = await reloaded.until("session_stopped")
    assert ending[-1]["data"]["reason"] == "deleted"
    assert await read_frame(reloaded.resp) is None  # the server ended the stream
    gone = await browser.client.get(f"/api/sessions/{sid}/events")
    assert gone.status == 404
    resumed = await browser.post("/sessions", {"queen_resume_from": sid,
                                               "queen_name": "hive_keeper"}, status=201)
    assert resumed["session_id"] == sid
    back = await browser.sse(sid)
    assert back.snapshot["data"]["snapshot_seq"] > page["events"][-1]["seq"]
    back.close()


async def test_a_new_chat_and_the_history_rows(browser):
    first = await open_queen(browser)
    new = await browser.post("/queen/hive_keeper/session/new",
                             {"initial_prompt": "a fresh start", "initial_phase": "independent"})
    assert new["status"] == "created" and new["session_id"] != first
    stream = await browser.sse(new["session_id"])
    await stream.until("loop_state_changed", park_reason="turn_done")
    stream.close()
    rows = (await browser.get("/sessions/history"))["sessions"]
    for row in rows:
        check(row, {"session_id": str, "queen_id": str, "agent_path": str, "created_at": NUM,
                    "last_active_at": OPT_NUM, "last_message": OPT_STR, "has_messages": bool})
    by_id = {row["session_id"]: row for row in rows}
    assert by_id[new["session_id"]]["has_messages"] is True
    assert by_id[new["session_id"]]["last_message"] == "a fresh start"
    assert by_id[first]["has_messages"] is False
    selected = await browser.post("/queen/hive_keeper/session/select",
                                  {"session_id": first})
    assert (selected["session_id"], selected["status"]) == (first, "live")
    deleted = await browser.send("DELETE", f"/sessions/history/{first}")
    assert deleted["deleted"] == first


async def test_the_colony_page_opens_chats_and_resumes(browser):
    opened = await browser.post("/sessions", {"colony_id": "notes"}, status=201)
    check(opened, LIVE_SESSION, "colony session")
    assert opened["colony_id"] == "notes" and opened["queen_phase"] == "colony"
    sid = opened["session_id"]
    stream = await browser.sse(sid)
    assert stream.snapshot["data"]["is_executing"] is False  # the composer is not gated
    await browser.post(f"/sessions/{sid}/chat", {"message": "hello colony"}, status=202)
    states = [e["data"]["activity"] for e in
              await stream.until("loop_state_changed", park_reason="turn_done")
              if e["type"] == "loop_state_changed"]
    assert states == ["executing", "awaiting_user"]  # clears the UI's queued state
    await browser.send("DELETE", f"/sessions/{sid}")
    again = await browser.post("/sessions", {"colony_id": "notes", "queen_resume_from": sid},
                               status=201)
    assert again["session_id"] == sid and again["colony_id"] == "notes"
    fresh = await browser.post("/sessions", {"colony_id": "notes", "initial_prompt": "new"},
                               status=201)
    assert fresh["session_id"] != sid
    stream.close()


async def test_trigger_cards_are_created_run_edited_and_removed(browser):
    sid = await open_queen(browser)
    stream = await browser.sse(sid)
    spec = {"trigger_type": "timer", "name": "Morning digest", "task": "write the digest",
            "trigger_config": {"cron": "0 9 * * *", "timezone": "Europe/Berlin"}}
    created = await browser.post(f"/sessions/{sid}/triggers", spec, status=201)
    tid = created["trigger_id"]
    assert tid == "user-morning-digest"
    await stream.until("trigger_activated", trigger_id=tid)
    (item,) = (await browser.get(f"/sessions/{sid}/triggers"))["triggers"]
    check(item, {"trigger_id": str, "trigger_type": str, "trigger_config": dict, "name": str,
                 "task": str, "enabled": bool})
    await browser.post(f"/sessions/{sid}/triggers/{tid}/run", status=202)
    await stream.until("trigger_fired", trigger_id=tid)
    patched = await browser.send("PATCH", f"/sessions/{sid}/triggers/{tid}",
                                 {"task": "write a short digest"})
    check(patched, {"trigger_id": str, "task": str, "trigger_config": dict})
    await stream.until("trigger_updated", task="write a short digest")
    await browser.post(f"/sessions/{sid}/triggers/{tid}/deactivate")
    await stream.until("trigger_deactivated", trigger_id=tid)
    await browser.post(f"/sessions/{sid}/triggers/{tid}/activate")
    await stream.until("trigger_activated", trigger_id=tid)
    await browser.send("DELETE", f"/sessions/{sid}/triggers/{tid}")
    await stream.until("trigger_removed", trigger_id=tid)
    stream.close()


async def test_a_page_on_another_port_cannot_ride_the_cookie(browser):
    other = f"http://localhost:{browser.client.port + 1}"
    resp = await browser.client.post("/api/sessions", json={}, headers={"Origin": other})
    assert resp.status == 403 and (await resp.json())["code"] == "origin_not_allowed"
    assert (await browser.get("/sessions")) == {"sessions": []}  # and nothing was created
