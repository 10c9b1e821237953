"""``events/history`` from the log's own bytes, with ``types`` and ``after_seq``.

The answer is spliced from the log lines; it must equal what the model answer was (each event
through ``EventView``) on a log with bad lines, incomplete lines included, and page backward and
forward, filtered or not, without a gap or a duplicate.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hive_server import keys
from hive_server.core.eventlog_pages import read_page_file
from hive_server.models.event_data import ClientOutputDelta
from hive_server.models.responses import EventPage, EventView
from tests.conftest import create_session
from tests.queen_support import chatted
from tests.test_history_bad_lines import corrupt

KEPT = frozenset({"client_input_received", "execution_completed"})


async def page(client, sid: str, query: str = "") -> dict:
    resp = await client.get(f"/api/sessions/{sid}/events/history{query}")
    assert resp.status == 200, await resp.text()
    body = await resp.read()
    EventPage.model_validate_json(body)  # the documented model, no key missing or extra
    answer = json.loads(body)
    assert list(answer) == list(EventPage.model_fields)
    return answer


def append_odd_lines(path: Path, last: int) -> None:
    """Two events the log writer never writes: one with only some envelope fields (the
    others take their defaults), one with spaces and a CR before its newline."""
    short = {"seq": last + 1, "type": "llm_text_delta", "session_id": "h",
             "timestamp": "2026-11-29T12:00:00+00:00", "data": {"content": "é"}}
    full = {**short, "seq": last + 2, "stream_id": "queen", "node_id": "queen",
            "execution_id": None, "correlation_id": None, "colony_id": None}
    with path.open("ab") as fh:
        fh.write(json.dumps(short, ensure_ascii=False).encode() + b"\n")
        fh.write(json.dumps(full).encode() + b" \r\n")


@pytest.fixture
async def cold(make_client, settings):
    """A cold session ``h`` whose log has bad lines: (client, the seqs left to read)."""
    client = await make_client(settings)
    await chatted(client, "h", 3)
    assert (await client.delete("/api/sessions/h")).status == 200
    path = settings.home / "sessions" / "h" / "events.jsonl"
    expected = corrupt(path)
    append_odd_lines(path, expected[-1])
    return client, [*expected, expected[-1] + 1, expected[-1] + 2], path


async def test_the_spliced_answer_equals_the_model_answer_on_a_log_with_bad_lines(cold):
    client, expected, path = cold
    body, before, seen = None, None, []
    while body is None or body["has_more_older"]:
        body = await page(client, "h", "?limit=4" + (f"&before_index={before}" if before else ""))
        model = read_page_file(path, 4, before_seq=before)
        assert body["events"] == [EventView.model_validate(e.to_dict()).model_dump()
                                  for e in model.events]
        assert (body["start_offset"], body["total"]) == (model.start_offset, expected[-1])
        seen = [e["seq"] for e in body["events"]] + seen
        before = body["start_index"]
    assert seen == expected
    odd = (await page(client, "h", "?limit=2"))["events"]
    assert [(e["stream_id"], e["colony_id"], e["data"]) for e in odd] == [
        ("queen", None, {"content": "é"})] * 2


def seqs(body: dict) -> list[int]:
    return [e["seq"] for e in body["events"]]


async def walk_forward(client, sid: str, limit: int, types: str = "") -> list[int]:
    body = await page(client, sid, f"?after_seq=0&limit={limit}{types}")
    seen = seqs(body)
    assert body["has_more_older"] is False
    while body["truncated"]:
        assert body["returned"] == limit
        body = await page(client, sid, f"?after_seq={seen[-1]}&limit={limit}{types}")
        assert body["events"] and body["has_more_older"] is True
        seen += seqs(body)
    return seen


async def test_after_seq_pages_forward_without_gap_or_duplicate(cold):
    client, expected, _ = cold
    for limit in (1, 3, 7, 10_000):
        assert await walk_forward(client, "h", limit) == expected, limit
    middle = expected[len(expected) // 2]
    body = await page(client, "h", f"?after_seq={middle}&limit=2")
    assert seqs(body) == [s for s in expected if s > middle][:2]
    assert body["start_index"] == seqs(body)[0] and body["total"] == expected[-1]
    past = await page(client, "h", f"?after_seq={expected[-1]}")
    assert (past["events"], past["truncated"], past["has_more_older"]) == ([], False, True)


async def test_types_keep_only_those_events_backward_and_forward(cold):
    client, expected, _ = cold
    everything = (await page(client, "h", "?limit=10000"))["events"]
    wanted = [e["seq"] for e in everything if e["type"] in KEPT]
    assert 3 <= len(wanted) < len(expected)
    types = "&types=" + ",".join(sorted(KEPT))
    assert await walk_forward(client, "h", 2, types) == wanted
    newest = await page(client, "h", f"?limit=2{types}")
    assert seqs(newest) == wanted[-2:] and newest["total"] == expected[-1]
    assert newest["truncated"] is newest["has_more_older"] is True
    oldest = await page(client, "h", f"?limit=2{types}&before_seq={wanted[1]}")
    assert seqs(oldest) == wanted[:1] and oldest["has_more_older"] is False
    one = await page(client, "h", "?types=client_input_received&limit=10000")
    assert one["events"] == [e for e in everything if e["type"] == "client_input_received"]
    assert one["events"] and one["truncated"] is False


async def test_a_live_page_holds_the_events_not_yet_written(client):
    await create_session(client, session_id="s")
    session = client.app[keys.SESSIONS].get("s").journal
    first = await page(client, "s", "?after_seq=0&limit=10000")
    for i in range(5):
        session.emit(ClientOutputDelta(content=f"c{i}", snapshot=""))
    body = await page(client, "s", f"?after_seq={first['total']}&types=client_output_delta")
    assert [e["data"]["content"] for e in body["events"]] == [f"c{i}" for i in range(5)]
    assert body["total"] == session.last_seq and body["truncated"] is False


@pytest.mark.parametrize("query, names", [
    ("?types=nope,llm_text_delta", "nope"),
    ("?types=session_snapshot2", "session_snapshot2"),
    ("?after_seq=1&before_seq=5", "after_seq"),
    ("?after_seq=0&before_index=5", "after_seq"),
    ("?after_seq=3&before_offset=0", "after_seq"),
    ("?after_seq=-1", "after_seq"),
    ("?after_seq=x", "after_seq"),
])
async def test_bad_filters_are_400_naming_the_problem(client, query, names):
    await create_session(client, session_id="s")
    resp = await client.get(f"/api/sessions/s/events/history{query}")
    assert resp.status == 400
    body = await resp.json()
    assert body["code"] == "invalid_query" and names in body["error"]


async def test_types_with_no_names_is_no_filter(client):
    await create_session(client, session_id="s")
    assert seqs(await page(client, "s", "?types=")) == seqs(await page(client, "s"))
