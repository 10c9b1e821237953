"""``GET /api/sessions/history``: filters, their combinations, paging, and refused queries.

The sessions are written as folders (``meta.json`` + an empty log) before the app starts, so
each has a known creation time, activity, agent, queen, title and messages. They are stopped
(any other status means "live at the last stop": the server would resume them); the other
statuses come from live sessions.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import create_session

BASE = datetime(2026, 1, 1, tzinfo=UTC)


def write_session(home: Path, session_id: str, *, day: int, active_day: int | None = None,
                  **fields: Any) -> None:
    """A cold session created ``day`` days after BASE, last active ``active_day``."""
    created = (BASE + timedelta(days=day)).isoformat()
    active = (BASE + timedelta(days=active_day if active_day is not None else day)).isoformat()
    meta = {"session_id": session_id, "created_at": created, "updated_at": created,
            "last_active_at": active, "queen_id": "queen", "queen_name": "Queen",
            "model": "m", "status": "stopped", "message_count": 1, **fields}
    folder = home / "sessions" / session_id
    folder.mkdir(parents=True)
    (folder / "meta.json").write_text(json.dumps(meta))
    (folder / "events.jsonl").write_text("")


@pytest.fixture
async def listed(make_client, settings):
    home = settings.home
    write_session(home, "s1", day=1, agent_id="alpha", title="Quarterly report",
                  first_message="draft the quarterly report", last_message="thanks")
    write_session(home, "s2", day=2, active_day=9, agent_id="alpha",
                  last_error="api_error: boom", first_message="Deploy the site")
    write_session(home, "s3", day=3, queen_id="other", last_message="what about the DEPLOY window?")
    write_session(home, "s4", day=4, agent_id="beta", title="Ünïcode tïtle")
    write_session(home, "s5", day=5, active_day=6, queen_id="other")
    return await make_client(settings)


async def ids(client, query: str = "") -> list[str]:
    resp = await client.get(f"/api/sessions/history{query}")
    assert resp.status == 200, await resp.text()
    return [row["session_id"] for row in (await resp.json())["sessions"]]


async def test_newest_activity_first_with_the_total(listed):
    body = await (await listed.get("/api/sessions/history")).json()
    assert [r["session_id"] for r in body["sessions"]] == ["s2", "s5", "s4", "s3", "s1"]
    assert body["total"] == 5 and body["next_cursor"] is None
    row = body["sessions"][0]
    assert (row["status"], row["last_error"]) == ("stopped", "api_error: boom")
    assert row["last_active_at"] == (BASE + timedelta(days=9)).timestamp()
    assert row["first_message"] == "Deploy the site" and row["cold"] is True


@pytest.mark.parametrize(("query", "expected"), [
    ("?status=stopped", ["s2", "s5", "s4", "s3", "s1"]),
    ("?status=idle,cancelled", []),
    ("?agent_id=alpha", ["s2", "s1"]),
    ("?queen_id=other", ["s5", "s3"]),
    ("?created_after=2026-01-03", ["s2", "s5", "s4", "s3"]),  # created on days 1..5
    ("?created_before=2026-01-02T00:00:00Z", ["s1"]),  # bounds are inclusive
    (f"?created_after={(BASE + timedelta(days=2)).timestamp()}&created_before=2026-01-04",
     ["s2", "s3"]),
    ("?active_after=2026-01-06&active_before=2026-01-09T00:00:00%2B00:00", ["s5"]),
    ("?active_before=2026-01-01T03:00:00%2B02:00", []),
    ("?q=quarterly", ["s1"]),  # title (and first message)
    ("?q=deploy", ["s2", "s3"]),  # first message of one, last message of the other
    ("?q=thanks", ["s1"]),
    ("?q=%C3%9CN%C3%8FCODE", ["s4"]),  # case-insensitive beyond ASCII
    ("?q=nowhere", []),
    ("?agent_id=alpha&status=stopped", ["s2", "s1"]),
    ("?queen_id=other&q=deploy", ["s3"]),
    ("?status=failed,idle,stopped&created_after=2026-01-02&agent_id=alpha", ["s2", "s1"]),
    ("?status=stopped,failed&created_after=2026-01-02T12:00&agent_id=alpha", ["s2"]),
    ("?status=failed&agent_id=alpha", []),
    ("?agent_id=gamma", []),
])
async def test_each_filter_and_their_combinations(listed, query, expected):
    assert await ids(listed, query) == expected


async def test_live_and_stopped_sessions_by_status(listed):
    await create_session(listed, session_id="live1", title="a live one")
    assert await ids(listed, "?status=idle") == ["live1"]
    assert await ids(listed, "?status=idle,stopped&q=live") == ["live1"]
    assert (await ids(listed, "?status=stopped"))[0] == "s2"
    await listed.delete("/api/sessions/live1")
    assert await ids(listed, "?status=idle") == []
    assert (await ids(listed, "?status=stopped"))[0] == "live1"  # its stop is its last activity


async def test_total_counts_every_match_not_the_page(listed):
    body = await (await listed.get("/api/sessions/history?queen_id=queen&limit=1")).json()
    assert body["total"] == 3 and len(body["sessions"]) == 1


async def test_pages_by_cursor_and_by_number_cover_every_row_once(listed):
    seen: list[str] = []
    cursor = ""
    while True:
        body = await (await listed.get(f"/api/sessions/history?limit=2{cursor}")).json()
        seen += [r["session_id"] for r in body["sessions"]]
        if body["next_cursor"] is None:
            break
        cursor = f"&cursor={body['next_cursor']}"
    assert seen == ["s2", "s5", "s4", "s3", "s1"]
    pages = [await ids(listed, f"?limit=2&page={n}") for n in (1, 2, 3, 4)]
    assert pages == [["s2", "s5"], ["s4", "s3"], ["s1"], []]


async def test_paging_while_sessions_are_created_has_no_gap_and_no_duplicate(listed):
    seen: list[str] = []
    body = await (await listed.get("/api/sessions/history?limit=2")).json()
    created = 0
    while True:
        seen += [r["session_id"] for r in body["sessions"]]
        await create_session(listed, session_id=f"new{created}")  # newest: before the cursor
        created += 1
        if body["next_cursor"] is None:
            break
        body = await (await listed.get(
            f"/api/sessions/history?limit=2&cursor={body['next_cursor']}")).json()
    assert seen == ["s2", "s5", "s4", "s3", "s1"]
    everything = await ids(listed, "?limit=500")
    assert sorted(everything) == sorted(seen + [f"new{n}" for n in range(created)])
    assert everything[:created] == [f"new{n}" for n in reversed(range(created))]


@pytest.mark.parametrize(("query", "named"), [
    ("?colour=red", "colour"),
    ("?limit=0", "limit"),
    ("?limit=501", "limit"),
    ("?limit=ten", "limit"),
    ("?status=live", "status"),
    ("?created_after=yesterday", "created_after"),
    ("?active_before=2026-13-01", "active_before"),
    ("?cursor=not-a-cursor", "cursor"),
    ("?page=0", "page"),
    ("?q=a&q=b", "q"),
    ("?" + "q=" + "x" * 201, "q"),
])
async def test_an_unknown_or_bad_parameter_is_400_naming_it(listed, query, named):
    resp = await listed.get(f"/api/sessions/history{query}")
    body = await resp.json()
    assert resp.status == 400 and body["code"] == "invalid_query", body
    assert named in body["error"]


async def test_a_cursor_and_a_page_together_are_refused(listed):
    first = await (await listed.get("/api/sessions/history?limit=1")).json()
    resp = await listed.get(f"/api/sessions/history?cursor={first['next_cursor']}&page=2")
    assert resp.status == 400 and (await resp.json())["code"] == "invalid_query"


async def test_the_limit_defaults_to_50(make_client, settings):
    for n in range(53):
        write_session(settings.home, f"s{n:02d}", day=n)
    client = await make_client(settings)
    body = await (await client.get("/api/sessions/history")).json()
    assert len(body["sessions"]) == 50 and body["total"] == 53
    assert body["sessions"][0]["session_id"] == "s52" and body["next_cursor"]
