"""The light line path (``eventlog_lines.to_line``): one ``orjson.loads`` per line and no
``Event``. It accepts exactly the lines an ``Event`` accepted, and what it sends (history pages,
SSE replay frames) is what the ``Event`` would have sent: the line itself when it holds the
whole envelope and no CR, else the event re-serialised with the missing fields' defaults."""

from __future__ import annotations

import dataclasses

import orjson
import pytest

from hive_server.core.eventlog_lines import to_line
from hive_server.models.events import Event, EventType
from tests.conftest import create_session
from tests.queen_support import chatted, open_stream
from tests.sse_reader import read_until

FULL = Event(seq=7, type=EventType.LLM_TEXT_DELTA, session_id="s", execution_id="x",
             data={"content": "a\u2028b", "n": [1, 2]}).to_json()
SHORT = b'{"seq":8,"type":"llm_text_delta","session_id":"s","data":{"content":"hi"}}'

LINES = [
    FULL, SHORT, FULL + b"\r", b" " + FULL, FULL.replace(b'"seq":7', b'"seq":1'),
    b'{"type":"llm_text_delta","seq":9,"session_id":"s"}',  # another key order
    FULL.replace(b'"seq":7', b'"seq":0'), FULL.replace(b'"seq":7', b'"seq":-3'),
    FULL.replace(b'"seq":7', b'"seq":"7"'), FULL.replace(b'"seq":7', b'"seq":true'),
    FULL.replace(b'"seq":7', b'"seq":7.0'), FULL.replace(b'"type":"llm_text_delta"', b'"type":5'),
    FULL.replace(b'"type":"llm_text_delta"', b'"type":null'),
    FULL.replace(b'"session_id":"s"', b'"sess":"s"'),  # a required field missing
    FULL.replace(b'"data":', b'"extra":1,"data":'),  # a key the envelope does not have
    b'{"seq":3,"type":"t"}', b"[1,2,3]", b'"text"', b"3", b"null", b"{}", b"",
    b"\x00" * 40, FULL[:30], SHORT.replace(b"hi", b"h\xff"), FULL.replace(b"a\\u2028b", b"a\xffb"),
    b'{"seq":3,"seq":4,"type":"t","session_id":"s"}',  # a repeated key: the last one counts
]


def event_rule(raw: bytes) -> Event | None:
    """The rule before the light path: ``Event.from_json`` and a seq >= 1, a string type."""
    try:
        event = Event.from_json(raw)
    except (ValueError, TypeError):
        return None
    if type(event.seq) is not int or event.seq < 1 or not isinstance(event.type, str):
        return None
    return event


def without_timestamp(raw: bytes) -> dict:
    return {k: v for k, v in orjson.loads(raw).items() if k != "timestamp"}


@pytest.mark.parametrize("raw", LINES)
def test_a_line_is_an_event_exactly_when_the_event_rule_says_so(raw):
    line, event = to_line(5, raw), event_rule(raw)
    assert (line.seq != 0) is (event is not None)
    assert (line.start, line.length, line.end) == (5, len(raw), 5 + len(raw) + 1)
    if event is None:
        assert (line.seq, line.fields) == (0, None)
        with pytest.raises(ValueError):
            line.to_event()
        return
    assert (line.seq, line.type) == (event.seq, event.type)
    built = line.to_event()  # a missing timestamp defaults to now: the rest must agree
    assert dataclasses.replace(built, timestamp=event.timestamp) == event
    assert without_timestamp(line.to_json()) == without_timestamp(event.to_json())
    head, data = line.sse_frame().split(b"\ndata: ")
    assert head == b"id: %d" % event.seq and data.endswith(b"}\n\n")
    assert b"\r" not in data and without_timestamp(data) == without_timestamp(event.to_json())


def test_the_whole_envelope_is_sent_as_its_own_bytes_else_reserialised():
    assert to_line(0, FULL).to_json() is FULL
    assert to_line(0, FULL).sse_frame() == Event.from_json(FULL).sse_frame()
    assert to_line(0, FULL + b"\r").to_json() == FULL  # a CR would end an SSE data line
    short = orjson.loads(to_line(0, SHORT).to_json())
    assert list(short) == [f.name for f in dataclasses.fields(Event)]  # defaults filled in
    assert (short["stream_id"], short["execution_id"], short["data"]) == ("queen", None,
                                                                           {"content": "hi"})


async def test_replay_and_history_send_short_and_cr_lines_as_whole_events(make_client, settings):
    client = await make_client(settings)
    await chatted(client, "s", 1)
    assert (await client.delete("/api/sessions/s")).status == 200
    path = settings.home / "sessions" / "s" / "events.jsonl"
    lines = path.read_bytes().split(b"\n")[:-1]
    short = orjson.loads(lines[1])
    lines[1] = orjson.dumps({k: short[k] for k in ("seq", "type", "session_id", "data")})
    lines[2] += b"\r"
    path.write_bytes(b"\n".join(lines) + b"\n")
    envelope = [f.name for f in dataclasses.fields(Event)]
    client = await make_client(settings)  # a restart resumes the session
    await create_session(client, session_id="s")
    resp = await open_stream(client, "s", after_seq=0)
    frames = await read_until(resp, lambda e: e["seq"] == len(lines))
    resp.close()
    assert [f["id"] for f in frames] == list(range(1, len(lines) + 1))
    assert all(list(f["event"]) == envelope for f in frames)
    assert frames[1]["event"]["data"] == short["data"]
    body = await (await client.get("/api/sessions/s/events/history")).json()
    assert [e["seq"] for e in body["events"]][:len(lines)] == list(range(1, len(lines) + 1))
    assert all(list(e) == envelope for e in body["events"])
    assert body["events"][2] == orjson.loads(lines[2])
