"""Property: random appends, cuts (the file truncated at any byte while the log is closed, as a
crash leaves it) and reopens keep the log's seqs contiguous, and every reader returns exactly
the events that survived, in order."""

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

Step = tuple[str, int]
STEPS = st.lists(st.one_of(st.tuples(st.just("append"), st.integers(1, 12)),
                           st.tuples(st.just("cut"), st.integers(0, 10**6)),
                           st.tuples(st.just("reopen"), st.just(0))), min_size=1, max_size=12)
TEXT = st.text(st.sampled_from("ab é\n\"\\\u2028"), max_size=30)


def event(seq: int, text: str) -> Event:
    return Event(seq=seq, type=EventType.LLM_TEXT_DELTA, session_id="p",
                 timestamp="2026-01-01T00:00:00+00:00", data={"content": text})


def survivors(path: Path, kept: list[Event]) -> list[Event]:
    """The events whose whole line lies inside the (cut) file."""
    size, end, alive = path.stat().st_size if path.exists() else 0, 0, []
    for item in kept:
        end += len(item.to_json()) + 1
        if end > size:
            break
        alive.append(item)
    return alive


def cut(path: Path, amount: int, kept: list[Event]) -> list[Event]:
    """Truncate the closed log at a byte chosen by ``amount``; the events that survive."""
    with path.open("r+b") as file:
        file.truncate(amount % (path.stat().st_size + 1))
    return survivors(path, kept)


async def run(path: Path, steps: list[Step], texts: list[str], block: int) -> list[Event]:
    expected: list[Event] = []
    log = EventLog(path, Durability.NONE, block_size=block)
    info = await log.open()
    assert info.last_seq == 0
    for kind, amount in steps:
        if kind == "append":
            for _ in range(amount):
                item = event(log.last_seq + 1, texts[len(expected) % len(texts)])
                log.append(item)
                expected.append(item)
            await log.flush()
            continue
        await log.close()
        if kind == "cut":
            expected = await asyncio.to_thread(cut, path, amount, expected)
        log = EventLog(path, Durability.NONE, block_size=block)
        info = await log.open()
        assert info.last_seq == (expected[-1].seq if expected else 0)
        assert [e.seq for e in expected] == list(range(1, len(expected) + 1))
        assert await log.read_after(0) == expected
    await log.close()
    return expected


@settings(max_examples=60, deadline=None, database=None)
@given(STEPS, st.lists(TEXT, min_size=1, max_size=5), st.sampled_from([64, 4096]), st.data())
def test_appends_cuts_and_reopens_keep_seq_contiguous_and_the_suffix_exact(steps, texts,
                                                                           block, data):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "events.jsonl"
        expected = asyncio.run(run(path, steps, texts, block))
        assert [e.seq for e in expected] == list(range(1, len(expected) + 1))
        assert last_seq_file(path) == len(expected)
        after = data.draw(st.integers(0, len(expected)))
        assert read_after_file(path, after, block_size=block) == expected[after:]
        limit = data.draw(st.integers(1, 10))
        page = read_page_file(path, limit, block_size=block)
        assert page.events == expected[-limit:]
