"""Each event is serialised once: the log line and every SSE subscriber share its bytes, and
the SSE frame is byte for byte what it always was."""

from __future__ import annotations

import asyncio
import dataclasses
import pickle
from typing import ClassVar

import orjson

from hive_server import keys
from hive_server.core.bus import EventBus
from hive_server.models.event_data import ClientOutputDelta
from hive_server.models.events import Event
from hive_server.web.sse import EventStream
from tests.conftest import create_session

TIMESTAMP = "2026-11-29T12:00:00+00:00"
GOLDEN = (b'id: 7\ndata: {"seq":7,"type":"llm_text_delta","session_id":"s","stream_id":"queen",'
          b'"node_id":"queen","execution_id":null,"correlation_id":null,"colony_id":null,'
          b'"timestamp":"2026-11-29T12:00:00+00:00","data":{"content":"h\xc3\xa9 \xe2\x80\xa8",'
          b'"snapshot":"x"}}\n\n')


@dataclasses.dataclass(slots=True, frozen=True)
class CountingEvent(Event):
    """An event that counts the calls of ``to_json``."""

    calls: ClassVar[list[int]] = []

    def to_json(self) -> bytes:
        self.calls.append(self.seq)
        return Event.to_json(self)


class Recorder:
    """What an SSE response is given to write."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    async def write(self, data: bytes) -> None:
        self.chunks.append(data)


def sample(seq: int = 7, kind: type[Event] = Event) -> Event:
    return kind(seq=seq, type="llm_text_delta", session_id="s", timestamp=TIMESTAMP,
                data={"content": "hé \u2028", "snapshot": "x"})


async def fan_out(events: list[Event], subscribers: int) -> list[list[bytes]]:
    bus = EventBus("t")
    streams = [EventStream(Recorder(), bus.subscribe()) for _ in range(subscribers)]
    for event in events:
        bus.publish(event)
    bus.close()
    await asyncio.gather(*(stream.pump() for stream in streams))
    return [stream.response.chunks for stream in streams]


async def test_a_frame_is_built_once_and_every_subscriber_writes_the_same_bytes():
    CountingEvent.calls.clear()
    event = sample(kind=CountingEvent)
    written = await fan_out([event], 50)
    assert CountingEvent.calls == [7]  # once for 50 subscribers (it was once per subscriber)
    assert all(chunks == [GOLDEN] for chunks in written)
    assert all(chunks[0] is written[0][0] for chunks in written)


async def test_a_batch_is_the_frames_in_order():
    events = [sample(seq) for seq in (7, 8, 9)]
    [chunks] = await fan_out(events, 1)
    assert b"".join(chunks) == b"".join(e.sse_frame() for e in events)
    assert b"".join(chunks).count(b"\n\n") == 3


def test_the_frame_is_the_old_frame_byte_for_byte():
    event = sample()
    assert event.sse_frame() == GOLDEN
    assert event.sse_frame() == b"id: %d\ndata: %s\n\n" % (event.seq, orjson.dumps(event))
    assert event.sse_frame() is event.sse_frame() and event.to_json() is event.to_json()


def test_the_kept_bytes_are_not_part_of_the_event():
    event = sample()
    event.sse_frame()
    fresh = sample()
    assert event == fresh
    assert list(dataclasses.asdict(event)) == [f.name for f in dataclasses.fields(Event)]
    assert orjson.loads(orjson.dumps(event)) == dataclasses.asdict(fresh)
    assert pickle.loads(pickle.dumps(event)) == fresh
    assert dataclasses.replace(event, seq=8).sse_frame().startswith(b"id: 8\n")


def test_a_log_line_is_kept_as_the_json_only_when_it_is_the_whole_envelope():
    line = sample().to_json()
    assert Event.from_json(line).to_json() is line
    short = b'{"seq":3,"type":"llm_text_delta","session_id":"s","data":{}}'
    parsed = Event.from_json(short)
    assert orjson.loads(parsed.to_json()) == dataclasses.asdict(parsed)  # defaults included
    with_cr = line + b"\r"
    assert Event.from_json(with_cr).to_json() == line  # a CR would end an SSE data line


async def test_two_clients_get_the_log_line_as_their_frame(client):
    await create_session(client, session_id="s")
    session = client.app[keys.SESSIONS].get("s").journal
    streams = [await client.get("/api/sessions/s/events", params={"after_seq": str(
        session.last_seq)}) for _ in range(2)]
    session.emit(ClientOutputDelta(content="one", snapshot="one"))
    frames = [await resp.content.readuntil(b"\n\n") for resp in streams]
    await session.log.flush()
    line = (client.app[keys.SETTINGS].home / "sessions" / "s" / "events.jsonl").read_bytes()
    last = line.rstrip(b"\n").rsplit(b"\n", 1)[-1]
    assert frames == [b"id: %d\ndata: %s\n\n" % (session.last_seq, last)] * 2
    for resp in streams:
        resp.close()
