"""Property: garbage lines (NULs, half JSON, invalid UTF-8) inserted anywhere among appended
events never make a reader fail, and every reader skips exactly the garbage."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from hive_server.core.eventlog import Durability, EventLog
from hive_server.core.eventlog_pages import read_page_file
from hive_server.core.eventlog_reader import last_seq_file, read_after_file
from hive_server.models.events import Event, EventType

TEXT = st.text(st.sampled_from("ab \u2028\u2029\n\"\\é\x00"), max_size=40)


@st.composite
def events(draw: st.DrawFn) -> list[Event]:
    texts = draw(st.lists(TEXT, min_size=1, max_size=40))
    return [Event(seq=seq, type=EventType.LLM_TEXT_DELTA, session_id="p",
                  data={"content": text, "pad": "x" * draw(st.integers(0, 300))})
            for seq, text in enumerate(texts, start=1)]


@st.composite
def garbage(draw: st.DrawFn, lines: list[bytes]) -> bytes:
    kind = draw(st.sampled_from(["nul", "half_json", "invalid_utf8"]))
    if kind == "nul":
        return b"\x00" * draw(st.integers(1, 1500))
    source = draw(st.sampled_from(lines))
    if kind == "half_json":
        return source[: draw(st.integers(0, len(source) - 1))]
    cut = draw(st.integers(1, len(source) - 1))
    return source[:cut] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80"])) + source[cut:]


@st.composite
def corrupted_logs(draw: st.DrawFn) -> tuple[list[Event], bytes, int]:
    appended = draw(events())
    lines = [event.to_json() for event in appended]
    inserts = draw(st.lists(st.tuples(st.integers(0, len(lines)), garbage(lines)), max_size=8))
    for position, bad in sorted(inserts, key=lambda item: -item[0]):
        lines.insert(position, bad)
    block = draw(st.sampled_from([64, 256, 4096]))
    return appended, b"\n".join(lines) + b"\n", block


def walk_pages(path: Path, limit: int, block: int, by_offset: bool) -> list[Event]:
    page = read_page_file(path, limit, block_size=block)
    seen = list(page.events)
    while page.more_older:
        if by_offset:
            page = read_page_file(path, limit, before_offset=page.start_offset, block_size=block)
        else:
            page = read_page_file(path, limit, before_seq=page.events[0].seq, block_size=block)
        seen = page.events + seen
    return seen


async def replay(path: Path, after: int, block: int) -> list[Event]:
    log = EventLog(path, Durability.NONE, block_size=block)
    await log.open()
    try:
        return [event async for chunk in log.iter_after(after, chunk=5) for event in chunk]
    finally:
        await log.close()


@settings(max_examples=60, deadline=None, database=None)
@given(corrupted_logs(), st.integers(1, 12), st.data())
def test_readers_skip_exactly_the_garbage(log, limit, data):
    appended, raw, block = log
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "events.jsonl"
        path.write_bytes(raw)
        assert last_seq_file(path) == len(appended)
        after = data.draw(st.integers(0, len(appended)))
        assert read_after_file(path, after, block_size=block) == appended[after:]
        assert walk_pages(path, limit, block, by_offset=False) == appended
        assert walk_pages(path, limit, block, by_offset=True) == appended
        assert asyncio.run(replay(path, after, block)) == appended[after:]
