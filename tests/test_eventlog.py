"""The per-session event log: contiguous seqs, torn-tail repair, durability, bounded reads."""

from __future__ import annotations

import asyncio
import gc
import itertools
import logging
import signal
import sys
from pathlib import Path

import pytest

from hive_server.core.eventlog import (
    Durability,
    EventLog,
    OpenInfo,
    last_seq_file,
    read_after_file,
    read_tail_file,
)
from hive_server.core.eventlog_reader import open_reader
from hive_server.models.events import Event, EventType

ROOT = Path(__file__).resolve().parents[1]
SMALL_BLOCK = 512


def make_event(seq: int) -> Event:
    """Lines of varied length; some are longer than SMALL_BLOCK."""
    text = "word " * (seq * 37 % 300)
    return Event(
        seq=seq,
        type=EventType.LLM_TEXT_DELTA,
        session_id="s1",
        data={"content": text, "snapshot": text[:40], "i": seq},
    )


def write_raw(path: Path, count: int) -> bytes:
    data = b"".join(make_event(seq).to_json() + b"\n" for seq in range(1, count + 1))
    path.write_bytes(data)
    return data


def seqs_on_disk(path: Path) -> list[int]:
    data = path.read_bytes()
    assert data == b"" or data.endswith(b"\n")
    return [Event.from_json(line).seq for line in data.splitlines()]


async def opened(path: Path, durability: Durability = Durability.NONE, **kwargs) -> EventLog:
    log = EventLog(path, durability, **kwargs)
    await log.open()
    return log


async def append_all(log: EventLog, first: int, last: int) -> None:
    await asyncio.gather(*(log.append(make_event(seq)) for seq in range(first, last + 1)))


# -- seqs and appends ------------------------------------------------------------------------


async def test_open_creates_parent_dir_and_empty_log(tmp_path):
    path = tmp_path / "sessions" / "s1" / "events.jsonl"
    log = EventLog(path, Durability.BATCH)
    assert await log.open() == OpenInfo(last_seq=0, truncated_bytes=0)
    assert path.read_bytes() == b""
    assert log.last_seq == 0
    await log.close()


async def test_seqs_stay_contiguous_across_close_and_reopen(tmp_path):
    path = tmp_path / "events.jsonl"
    log = await opened(path)
    await append_all(log, 1, 5)
    await log.close()

    log = EventLog(path, Durability.NONE)
    assert await log.open() == OpenInfo(last_seq=5, truncated_bytes=0)
    assert log.last_seq == 5
    with pytest.raises(ValueError):
        log.append(make_event(1))
    await append_all(log, 6, 8)
    await log.close()
    assert seqs_on_disk(path) == list(range(1, 9))


async def test_append_rejects_wrong_seq_and_closed_log(tmp_path):
    log = EventLog(tmp_path / "events.jsonl", Durability.NONE)
    with pytest.raises(RuntimeError):
        log.append(make_event(1))
    await log.open()
    for bad in (0, 2, 3):
        with pytest.raises(ValueError):
            log.append(make_event(bad))
    assert log.last_seq == 0
    future = log.append(make_event(1))
    with pytest.raises(ValueError):
        log.append(make_event(1))
    assert log.last_seq == 1
    await future
    await asyncio.gather(log.close(), log.close())
    await log.close()
    with pytest.raises(RuntimeError):
        log.append(make_event(2))
    assert seqs_on_disk(log.path) == [1]


# -- torn tails ------------------------------------------------------------------------------


async def test_torn_tail_is_repaired_at_every_cut_point(tmp_path):
    path = tmp_path / "events.jsonl"
    good = write_raw(path, 3)
    last_line = make_event(4).to_json() + b"\n"
    for k in range(len(last_line)):
        path.write_bytes(good + last_line[:k])
        assert last_seq_file(path) == 3
        assert [e.seq for e in read_after_file(path, 0)] == [1, 2, 3]
        log = EventLog(path, Durability.NONE)
        assert await log.open() == OpenInfo(last_seq=3, truncated_bytes=k)
        assert path.read_bytes() == good
        await log.append(make_event(4))
        await log.close()
        assert seqs_on_disk(path) == [1, 2, 3, 4]


@pytest.mark.parametrize(
    "garbage",
    [b"not json at all\n", b'{"seq": 4}\n', b"[1, 2]\n", b"\n", b"\x00" * 40 + b"\n", b"{}\n\n"],
)
async def test_invalid_last_line_with_newline_is_cut(tmp_path, garbage):
    path = tmp_path / "events.jsonl"
    good = write_raw(path, 3)
    path.write_bytes(good + garbage)
    assert last_seq_file(path) == 3
    log = EventLog(path, Durability.FSYNC)
    assert await log.open() == OpenInfo(last_seq=3, truncated_bytes=len(garbage))
    await log.append(make_event(4))
    await log.close()
    assert seqs_on_disk(path) == [1, 2, 3, 4]


async def test_log_of_only_garbage_opens_empty(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_bytes(b'{"seq":1,"ty')
    log = EventLog(path, Durability.NONE)
    assert await log.open() == OpenInfo(0, 12)
    await log.close()
    assert path.read_bytes() == b""


# -- reads -----------------------------------------------------------------------------------


async def test_read_after_is_the_suffix_including_unflushed_appends(tmp_path):
    path = tmp_path / "events.jsonl"
    write_raw(path, 50)
    log = await opened(path, block_size=SMALL_BLOCK)
    futures = [log.append(make_event(seq)) for seq in range(51, 61)]
    for after in (0, 1, 25, 49, 50, 59, 60, 75):
        expected = list(range(after + 1, 61))
        assert [e.seq for e in await log.read_after(after)] == expected
        assert [e.seq for e in await log.read_after(after, limit=4)] == expected[:4]
    assert all(future.done() for future in futures)
    await log.close()


def test_read_after_file_matches_full_parse_for_every_seq(tmp_path):
    path = tmp_path / "events.jsonl"
    events = [Event.from_json(line) for line in write_raw(path, 120).splitlines()]
    for after in range(-1, 123):
        got = read_after_file(path, after, block_size=SMALL_BLOCK)
        assert got == events[max(after, 0) :]
    assert read_after_file(tmp_path / "missing.jsonl", 0) == []


async def test_iter_after_yields_the_suffix_in_bounded_chunks(tmp_path):
    path = tmp_path / "events.jsonl"
    write_raw(path, 100)
    log = await opened(path, block_size=SMALL_BLOCK)
    for seq in range(101, 111):
        log.append(make_event(seq))
    chunks = [chunk async for chunk in log.iter_after(33, chunk=7)]
    assert all(0 < len(chunk) <= 7 for chunk in chunks)
    assert [e.seq for chunk in chunks for e in chunk] == list(range(34, 111))
    assert [chunk async for chunk in log.iter_after(110)] == []
    await log.close()


@pytest.mark.parametrize("before", [None, 0, 1, 2, 150, 299, 300, 301, 1000])
@pytest.mark.parametrize("limit", [0, 1, 10, 299, 500])
async def test_read_tail_reads_backwards_across_blocks(tmp_path, limit, before):
    path = tmp_path / "events.jsonl"
    assert len(write_raw(path, 300)) > 50 * SMALL_BLOCK
    below = 301 if before is None else before
    expected = [seq for seq in range(1, 301) if seq < below][-limit:] if limit else []
    cold = read_tail_file(path, limit, before, block_size=SMALL_BLOCK)
    assert [e.seq for e in cold] == expected
    log = await opened(path, block_size=SMALL_BLOCK)
    assert await log.read_tail(limit, before) == cold
    await log.close()


async def test_read_tail_sees_unflushed_appends(tmp_path):
    log = await opened(tmp_path / "events.jsonl", Durability.BATCH, block_size=SMALL_BLOCK)
    for seq in range(1, 41):
        log.append(make_event(seq))
    assert [e.seq for e in await log.read_tail(3)] == [38, 39, 40]
    assert [e.seq for e in await log.read_tail(3, before_seq=10)] == [7, 8, 9]
    await log.close()


def test_cold_reads_of_a_missing_file_are_empty(tmp_path):
    path = tmp_path / "nope" / "events.jsonl"
    assert last_seq_file(path) == 0
    assert read_tail_file(path, 10) == []
    assert not path.parent.exists()


def test_binary_search_reads_a_small_fraction_of_a_big_log(tmp_path):
    path = tmp_path / "events.jsonl"
    data = write_raw(path, 20_000)
    line_starts = [0, *itertools.accumulate(len(line) + 1 for line in data.split(b"\n")[:-2])]
    for seq in (1, 2, 777, 10_000, 12_345, 19_999, 20_000, 20_001):
        with open_reader(path) as reader:
            end, last = reader.good_end()
            offset = reader.offset_of(seq, end)
            assert (end, last.seq) == (len(data), 20_000)
            assert offset == (line_starts[seq - 1] if seq <= 20_000 else len(data))
            assert reader.bytes_read < len(data) / 20


# -- durability ------------------------------------------------------------------------------


@pytest.mark.parametrize("durability", list(Durability))
async def test_every_durability_mode_resolves_after_the_line_is_written(tmp_path, durability):
    path = tmp_path / "events.jsonl"
    log = await opened(path, durability)
    event = make_event(1)
    await log.append(event)
    assert path.read_bytes() == event.to_json() + b"\n"

    async def appender(count: int) -> None:
        for _ in range(count):
            await log.append(make_event(log.last_seq + 1))

    await asyncio.gather(*(appender(25) for _ in range(8)))
    assert log.last_seq == 201
    await log.close()
    assert seqs_on_disk(path) == list(range(1, 202))


@pytest.mark.parametrize("durability", [Durability.BATCH, Durability.NONE])
async def test_batch_and_none_write_in_place_and_acknowledge_at_once(tmp_path, durability):
    path = tmp_path / "events.jsonl"
    log = await opened(path, durability, batch_interval=60.0)
    for seq in (1, 2, 3):
        future = log.append(make_event(seq))
        assert future.done() and future.exception() is None
        assert seqs_on_disk(path) == list(range(1, seq + 1))
    await log.close()


async def test_fsync_mode_acknowledges_only_after_the_group_commit(tmp_path, monkeypatch):
    synced = []
    monkeypatch.setattr("os.fsync", lambda fd: synced.append(fd))
    log = await opened(tmp_path / "events.jsonl", Durability.FSYNC)
    synced.clear()  # the directory entry's, at create
    futures = [log.append(make_event(seq)) for seq in (1, 2, 3)]
    assert not any(future.done() for future in futures)
    await asyncio.gather(*futures)
    assert len(synced) == 1  # one fsync for the three
    await log.close()


async def test_batch_mode_fsyncs_what_was_written_in_place(tmp_path, monkeypatch):
    synced = asyncio.Event()
    loop = asyncio.get_running_loop()
    monkeypatch.setattr("os.fsync", lambda fd: loop.call_soon_threadsafe(synced.set))
    log = await opened(tmp_path / "events.jsonl", Durability.BATCH, batch_interval=0.0)
    await log.append(make_event(1))
    async with asyncio.timeout(10):  # bounded: the writer task syncs within batch_interval
        await synced.wait()
    await log.close()


async def test_flush_waits_until_every_append_is_readable(tmp_path):
    path = tmp_path / "events.jsonl"
    log = await opened(path, Durability.FSYNC)
    futures = [log.append(make_event(seq)) for seq in range(1, 31)]
    await log.flush()
    assert seqs_on_disk(path) == list(range(1, 31))
    await asyncio.gather(*futures)
    await log.close()


async def test_close_flushes_pending_appends(tmp_path):
    path = tmp_path / "events.jsonl"
    log = await opened(path, Durability.BATCH, batch_interval=60.0)
    futures = [log.append(make_event(seq)) for seq in range(1, 11)]
    await log.close()
    assert all(future.done() and future.exception() is None for future in futures)
    assert seqs_on_disk(path) == list(range(1, 11))


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("durability", list(Durability))
async def test_write_error_fails_pending_appends_and_is_logged(caplog, durability):
    log = EventLog(Path("/dev/full"), durability)
    await log.open()
    with caplog.at_level(logging.ERROR, logger="hive_server.core.eventlog"):
        future = log.append(make_event(1))
        with pytest.raises(OSError):
            await future
    assert "write failed" in caplog.text
    with pytest.raises(RuntimeError):
        log.append(make_event(2))
    with pytest.raises(RuntimeError):
        await log.flush()
    await log.close()


# -- crash -----------------------------------------------------------------------------------

CHILD = """
import asyncio, sys
from pathlib import Path
from hive_server.core.eventlog import Durability, EventLog
from hive_server.models.events import Event

async def main():
    log = EventLog(Path(sys.argv[1]), Durability.NONE)
    await log.open()
    seq = 0
    while True:
        seq += 1
        data = {"i": seq, "pad": "x" * (seq * 31 % 700)}
        future = log.append(Event(seq=seq, type="llm_text_delta", session_id="s", data=data))
        if seq % 16 == 0:
            await future
        if seq == 800:
            print("appended", seq, flush=True)

asyncio.run(main())
"""


@pytest.mark.slow
async def test_sigkilled_writer_leaves_a_contiguous_log(tmp_path):
    path = tmp_path / "events.jsonl"
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, str(path), cwd=ROOT, stdout=asyncio.subprocess.PIPE
    )
    try:
        async with asyncio.timeout(30):
            assert await child.stdout.readline() == b"appended 800\n"
    finally:
        child.kill()
    assert await child.wait() == -signal.SIGKILL

    log = EventLog(path, Durability.FSYNC)
    info = await log.open()
    assert info.last_seq >= 800
    assert seqs_on_disk(path) == list(range(1, info.last_seq + 1))
    await log.append(Event(seq=info.last_seq + 1, type="session_resumed", session_id="s"))
    await log.close()
    assert seqs_on_disk(path) == list(range(1, info.last_seq + 2))


async def test_a_cut_short_close_leaves_the_queued_appends_to_the_writer(tmp_path, caplog):
    """A close cancelled by the shutdown grace does not cancel the writer: the appends still
    queued (a session's last events) are written and acknowledged, a later close awaits
    them, and no emit nobody awaits surfaces as "Future exception was never retrieved"."""
    loop = asyncio.get_running_loop()
    unretrieved: list[dict] = []
    loop.set_exception_handler(lambda _loop, context: unretrieved.append(context))
    try:
        path = tmp_path / "events.jsonl"
        log = EventLog(path, Durability.FSYNC)
        await log.open()
        futures = [log.append(make_event(seq)) for seq in range(1, 4)]
        closing = asyncio.create_task(log.close())
        await asyncio.sleep(0)  # a yield: the writer has taken the batch, not finished it
        closing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await closing
        await log.close()  # the shutdown's close of a cut-short session's log
        assert [future.exception() for future in futures] == [None, None, None]
        assert seqs_on_disk(path) == [1, 2, 3]
        del futures
        gc.collect()
        assert unretrieved == []
        assert not [r for r in caplog.records if "failed" in r.getMessage()]
    finally:
        loop.set_exception_handler(None)
