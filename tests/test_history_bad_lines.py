"""A session whose events.jsonl has bad lines stays readable over HTTP: history (cold and live,
every paging mode) and SSE replay answer 200, in seq order, contiguous around the gaps."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from tests.conftest import create_session
from tests.queen_support import chat, chatted, open_stream, until
from tests.sse_reader import read_until

BAD_LINES = [b"\x00" * 2000, b'{"seq":4,"type":"client_in', b'{"seq":5,"x":"\xff\xfe"}',
             b'{"type":"llm_text_delta"}', b""]


def corrupt(path: Path) -> list[int]:
    """Bad lines at the start, in the middle, near the end; one event replaced by NULs, one
    stale copy of an old line. Returns the seqs left to read."""
    lines = path.read_bytes().split(b"\n")[:-1]
    seqs = [json.loads(raw)["seq"] for raw in lines]
    middle, lost = len(lines) // 2, len(lines) // 3
    out: list[bytes] = [BAD_LINES[0]]
    for index, raw in enumerate(lines):
        if index == middle:
            out += BAD_LINES
        if index == len(lines) - 2:
            out += [BAD_LINES[1], lines[3]]  # a torn line, then seq 4 again: out of order
        out.append(b"\x00" * len(raw) if index == lost else raw)
    path.write_bytes(b"\n".join(out) + b"\n")
    return [seq for index, seq in enumerate(seqs) if index != lost]


async def until_idle(client, stream, sid: str) -> None:
    """Until the queen has handled every input (inputs a lost line left pending included)."""
    while True:
        await until(stream, "loop_state_changed")
        state = await (await client.get(f"/api/sessions/{sid}/snapshot")).json()
        if state["activity"] != "executing" and state["queued_inputs"] == 0:
            stream.close()
            return


async def page(client, sid: str, query: str = "") -> dict:
    resp = await client.get(f"/api/sessions/{sid}/events/history{query}")
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def walk_history(client, sid: str, limit: int, cursor: str) -> list[int]:
    """Every page from the newest back, following ``cursor`` (index, seq or offset)."""
    body = await page(client, sid, f"?limit={limit}")
    seen = [e["seq"] for e in body["events"]]
    while body["has_more_older"]:
        assert body["truncated"] is True
        query = {"before_index": f"before_index={body['start_index']}",
                 "before_seq": f"before_seq={body['start_index']}",
                 "before_offset": f"before_offset={body['start_offset']}"}[cursor]
        body = await page(client, sid, f"?limit={limit}&{query}")
        assert body["events"], "has_more_older promised an older event"
        seen = [e["seq"] for e in body["events"]] + seen
    assert body["truncated"] is False
    return seen


async def check_history(client, sid: str, expected: list[int]) -> None:
    for cursor in ("before_index", "before_seq", "before_offset"):
        for limit in (1, 4, 7, 10_000):
            assert await walk_history(client, sid, limit, cursor) == expected, (cursor, limit)
    assert (await page(client, sid))["total"] == expected[-1]
    gap = next(s for a, s in itertools.pairwise(expected) if s != a + 1)
    around = await page(client, sid, f"?limit=3&before_seq={gap + 1}")
    assert [e["seq"] for e in around["events"]] == [gap - 3, gap - 2, gap]  # gap - 1 is lost


@pytest.mark.parametrize("live", [False, True])
async def test_history_and_replay_skip_bad_lines(make_client, settings, live):
    client = await make_client(settings)
    await chatted(client, "bad", 3)
    assert (await client.delete("/api/sessions/bad")).status == 200
    path = settings.home / "sessions" / "bad" / "events.jsonl"
    expected = corrupt(path)
    if live:
        client = await make_client(settings)  # a restart resumes the session
        await create_session(client, session_id="bad")
        stream = await open_stream(client, "bad", after_seq=0)
        await chat(client, "bad", "after the repair")
        await until_idle(client, stream, "bad")
        body = await page(client, "bad", "?limit=10000")
        newer = [e["seq"] for e in body["events"] if e["seq"] > expected[-1]]
        assert newer == list(range(expected[-1] + 1, body["total"] + 1))
        expected += newer
    else:
        assert (await (await client.get("/api/sessions/bad")).json())["cold"] is True
    await check_history(client, "bad", expected)
    if live:
        await check_replay(client, "bad", expected)


async def check_replay(client, sid: str, expected: list[int]) -> None:
    last = expected[-1]
    for after in (0, 1, expected[len(expected) // 3 - 1], expected[len(expected) // 2],
                  last - 2, last):
        resp = await open_stream(client, sid, after_seq=after)
        got = [] if after == last else [
            f["id"] for f in await read_until(resp, lambda e: e["seq"] == last)]
        resp.close()
        assert got == [s for s in expected if s > after], after
