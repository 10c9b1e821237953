"""Bad lines anywhere in ``events.jsonl``: every reader skips them, none raises, bisection and
the last-seq probe stay right (and bounded) when a bad line sits where they probe."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from hive_server.core.eventlog import (
    Durability,
    EventLog,
    last_seq_file,
    read_after_file,
    read_tail_file,
)
from hive_server.core.eventlog_pages import read_page_file
from hive_server.core.eventlog_reader import open_reader, scan_after
from hive_server.models.events import Event, EventType

SMALL_BLOCK = 512
COUNT = 120


def make_event(seq: int, text: str | None = None) -> Event:
    text = "word " * (seq * 37 % 200) if text is None else text
    return Event(seq=seq, type=EventType.LLM_TEXT_DELTA, session_id="s1",
                 data={"content": text, "i": seq})


def line(seq: int) -> bytes:
    return make_event(seq).to_json()


# Each kind of bad line; ``seq`` is the seq of the event line that follows it.
BAD: dict[str, object] = {
    "half_json": lambda seq: line(seq)[:40],
    "nul": lambda seq: b"\x00" * 700,
    "invalid_utf8": lambda seq: line(seq).replace(b"word", b"w\xff\xfed", 1),
    "blank": lambda seq: b"",
    "no_seq": lambda seq: b'{"type":"llm_text_delta","session_id":"s1","data":{}}',
    "string_seq": lambda seq: line(seq).replace(b'{"seq":%d' % seq, b'{"seq":"%d"' % seq),
    "not_an_object": lambda seq: b"[1,2,3]",
    "stale_copy": lambda seq: line(max(1, seq // 3)),  # an old line again: seq out of order
    "seq_from_nowhere": lambda seq: line(10**9),
    "duplicate": lambda seq: line(seq),  # the next line again, just before it
}


def write_log(path: Path, bad: dict[int, bytes], count: int = COUNT,
              lost: frozenset[int] = frozenset()) -> list[int]:
    """Events 1..count except ``lost``; ``bad[seq]`` is written just before event ``seq``
    (``count + 1``: after the last). Returns the seqs a reader must return."""
    out: list[bytes] = []
    for seq in range(1, count + 2):
        if seq in bad:
            out.append(bad[seq])
        if seq <= count and seq not in lost:
            out.append(line(seq))
    path.write_bytes(b"\n".join(out) + b"\n")
    return [seq for seq in range(1, count + 1) if seq not in lost]


def positions(count: int = COUNT) -> dict[str, list[int]]:
    return {"start": [1], "middle": [count // 2], "near_end": [count - 1],
            "every_third_line": list(range(2, count + 1, 3))}


def check_every_reader(path: Path, expected: list[int]) -> None:
    """Forward from many cursors, backward by seq and by offset, the last seq."""
    assert last_seq_file(path) == expected[-1]
    for block in (SMALL_BLOCK, 64 * 1024):
        for after in [0, *expected[::11], expected[-1]]:
            got = [e.seq for e in read_after_file(path, after, block_size=block)]
            assert got == [s for s in expected if s > after], (block, after)
        for before in [*expected[::9], expected[-1] + 1, None]:
            below = [s for s in expected if before is None or s < before]
            got = [e.seq for e in read_tail_file(path, 6, before, block_size=block)]
            assert got == below[-6:], (block, before)
        walked: list[int] = []
        page = read_page_file(path, 9, block_size=block)
        while True:
            walked = [e.seq for e in page.events] + walked
            if not page.more_older:
                break
            by_offset = read_page_file(path, 9, before_offset=page.start_offset,
                                       block_size=block)
            by_seq = read_page_file(path, 9, before_seq=page.events[0].seq, block_size=block)
            assert by_offset == by_seq
            page = by_seq
        assert walked == expected


@pytest.mark.parametrize("where", list(positions()))
@pytest.mark.parametrize("kind", list(BAD))
def test_every_reader_skips_each_kind_of_bad_line_anywhere(tmp_path, kind, where):
    path = tmp_path / "events.jsonl"
    make = BAD[kind]
    expected = write_log(path, {seq: make(seq) for seq in positions()[where]})  # type: ignore[operator]
    check_every_reader(path, expected)


@pytest.mark.parametrize("kind", ["half_json", "nul", "invalid_utf8", "no_seq"])
def test_a_bad_line_in_place_of_an_event_is_a_gap_in_seq(tmp_path, kind):
    path = tmp_path / "events.jsonl"
    lost = frozenset({1, 40, 41, 77, COUNT - 1})
    make = BAD[kind]
    expected = write_log(path, {seq: make(seq) for seq in lost}, lost=lost)  # type: ignore[operator]
    check_every_reader(path, expected)
    events = read_after_file(path, 39)
    assert [e.seq for e in events[:3]] == [42, 43, 44]  # contiguous around the gap


def test_a_run_of_nul_bytes_spanning_many_probe_points(tmp_path):
    path = tmp_path / "events.jsonl"
    expected = write_log(path, {60: b"\x00" * (40 * SMALL_BLOCK), 90: b"\x00" * 3000})
    check_every_reader(path, expected)


def test_runs_of_half_lines_whose_prefix_names_an_old_seq(tmp_path):
    """A probe must not trust a seq read from the prefix of a line that is not an event."""
    path = tmp_path / "events.jsonl"
    expected = write_log(path, {seq: b'{"seq":1,\n{"seq":1,' for seq in range(2, COUNT, 4)})
    check_every_reader(path, expected)


def test_bisection_stays_bounded_with_bad_lines_at_its_probe_points(tmp_path):
    path = tmp_path / "events.jsonl"
    count = 20_000
    bad = {seq: BAD[kind](seq) for seq, kind in  # type: ignore[operator]
           zip(range(3, count, 11), list(BAD) * count, strict=False)}
    write_log(path, bad, count=count)
    size = path.stat().st_size
    for seq in (1, 2, 777, 10_000, 12_345, 19_999, 20_000):
        with open_reader(path) as reader:
            assert reader is not None
            end, last = reader.good_end()
            assert last is not None and last.seq == count
            offset = reader.offset_of(seq, end)
            assert reader.bytes_read < size / 20
            assert reader.read_at(offset, 20).startswith(b'{"seq":%d,' % seq)


def test_last_seq_skips_bad_lines_at_the_end(tmp_path):
    path = tmp_path / "events.jsonl"
    write_log(path, {COUNT + 1: b"\x00" * 100})
    with path.open("ab") as fh:
        fh.write(line(3) + b"\n" + b'{"seq":12' + b"\n" + b'{"seq":121,"ty')  # + a torn tail
    assert last_seq_file(path) == COUNT
    assert [e.seq for e in read_tail_file(path, 2)] == [COUNT - 1, COUNT]
    assert read_after_file(path, COUNT) == []


def test_u2028_u2029_and_a_10_mb_event_read_back_exactly(tmp_path):
    path = tmp_path / "events.jsonl"
    big = make_event(2, "line\u2028para\u2029end " + "x" * (10 * 1024 * 1024))
    small = make_event(3, "a\u2028b\u2029c\nd")
    events = [make_event(1), big, small]
    path.write_bytes(b"".join(e.to_json() + b"\n" for e in events))
    assert b"\xe2\x80\xa8" in path.read_bytes()  # stored raw, not escaped
    assert read_after_file(path, 0) == events
    # blocks far smaller than the line (512 B blocks were 20,000 reads of it: most of the time)
    assert read_after_file(path, 1, block_size=8192) == [big, small]
    assert read_tail_file(path, 3) == events
    assert read_page_file(path, 2, before_seq=4).events == [big, small]
    assert last_seq_file(path) == 3


def test_a_skipped_line_is_logged_once_with_file_and_offset_not_a_traceback(tmp_path, caplog):
    path = tmp_path / "events.jsonl"
    write_log(path, {5: b"\x00\x00\x00"})
    offset = path.read_bytes().index(b"\x00")
    with caplog.at_level(logging.WARNING):
        read_after_file(path, 0)
        read_after_file(path, 0)
    records = [r for r in caplog.records if "skipped the line" in r.getMessage()]
    assert len(records) == 1
    assert str(path) in records[0].getMessage()
    assert f"offset {offset} " in records[0].getMessage()
    assert records[0].exc_info is None


async def test_a_live_log_reads_around_bad_lines_and_appends_after_them(tmp_path):
    path = tmp_path / "events.jsonl"
    write_log(path, {1: b"\x00" * 50, 30: b'{"seq":30,"ty', 60: line(2)}, count=70)
    log = EventLog(path, Durability.NONE, block_size=SMALL_BLOCK)
    info = await log.open()
    assert (info.last_seq, info.truncated_bytes) == (70, 0)  # nothing rewritten
    for seq in range(71, 81):
        log.append(make_event(seq))
    assert [e.seq for e in await log.read_tail(5)] == [76, 77, 78, 79, 80]
    assert [e.seq for e in await log.read_tail(3, before_seq=31)] == [28, 29, 30]
    for after in (0, 1, 29, 30, 59, 75, 80):
        chunks = [chunk async for chunk in log.iter_after(after, chunk=7)]
        assert [e.seq for c in chunks for e in c] == list(range(after + 1, 81))
    await log.close()
    assert b"\x00" * 50 in path.read_bytes()


def test_a_scan_continues_from_the_offset_it_returned(tmp_path):
    path = tmp_path / "events.jsonl"
    expected = write_log(path, {seq: b"\x00" for seq in range(1, COUNT + 1, 4)})
    seen: list[int] = []
    after, offset = 0, None
    while True:
        events, offset = scan_after(path, after, 5, offset, SMALL_BLOCK)
        if not events:
            break
        seen += [e.seq for e in events]
        after = events[-1].seq
    assert seen == expected
