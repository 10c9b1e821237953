"""Benchmark the event log: appends per durability mode, tail reads, mid-log replay.

Run: ``.venv/bin/python scripts/bench_eventlog.py [--quick]``. Every measurement is a function
returning a dict, so ``scripts/bench_events.py`` can import and call them. Logs are built in a
temp dir; reads run against a warm page cache (the file was just written).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from hive_server.core.eventlog import Durability, EventLog  # noqa: E402
from hive_server.models.events import Event, EventType  # noqa: E402

TEXT = "The quick brown fox jumps over the lazy dog while the queen plans the next step. " * 3

# (durability, events, concurrent appenders)
APPEND_RUNS = [
    (Durability.FSYNC, 2000, 1),
    (Durability.FSYNC, 2000, 32),
    (Durability.BATCH, 20_000, 1),
    (Durability.BATCH, 20_000, 32),
    (Durability.NONE, 20_000, 1),
    (Durability.NONE, 20_000, 32),
]


def realistic_event(seq: int) -> Event:
    """An event whose ``data`` is about 300 bytes of JSON."""
    return Event(
        seq=seq,
        type=EventType.LLM_TEXT_DELTA,
        session_id="bench-session",
        execution_id="exec-0001",
        data={"content": TEXT[:60], "snapshot": TEXT[: 180 + seq % 40], "worker": "researcher"},
    )


def build_log(path: Path, count: int, event: Event) -> int:
    """Write ``count`` contiguous lines shaped like ``event``; return the file size."""
    template = event.to_json().replace(b'{"seq":%d,' % event.seq, b'{"seq":%d,', 1) + b"\n"
    with path.open("wb") as file:
        for first in range(1, count + 1, 10_000):
            stop = min(first + 10_000, count + 1)
            file.write(b"".join(template % seq for seq in range(first, stop)))
    return path.stat().st_size


async def bench_appends(tmpdir: Path, n: int, durability: Durability, concurrency: int) -> dict:
    """``concurrency`` tasks each awaiting its own appends until ``n`` events are durable."""
    log = EventLog(tmpdir / f"append-{durability}-{concurrency}.jsonl", durability)
    await log.open()
    remaining = n

    async def appender() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await log.append(realistic_event(log.last_seq + 1))

    started = time.perf_counter()
    await asyncio.gather(*(appender() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    await log.close()
    return {
        "durability": str(durability),
        "events": n,
        "concurrency": concurrency,
        "seconds": elapsed,
        "appends_per_s": n / elapsed,
    }


async def bench_streamed_appends(tmpdir: Path, n: int, durability: Durability) -> dict:
    """One producer appending without waiting (as deltas stream), then awaiting them all."""
    log = EventLog(tmpdir / f"stream-{durability}.jsonl", durability)
    await log.open()
    futures = []
    started = time.perf_counter()
    for seq in range(1, n + 1):
        futures.append(log.append(realistic_event(seq)))
        await asyncio.sleep(0)
    await asyncio.gather(*futures)
    elapsed = time.perf_counter() - started
    await log.close()
    return {
        "durability": str(durability),
        "events": n,
        "seconds": elapsed,
        "appends_per_s": n / elapsed,
    }


def raw_write_flush(path: Path, n: int) -> float:
    """Seconds for ``n`` synchronous ``write()+flush()`` of the same lines (the baseline)."""
    started = time.perf_counter()
    with path.open("ab") as file:
        for seq in range(1, n + 1):
            file.write(realistic_event(seq).to_json() + b"\n")
            file.flush()
    return time.perf_counter() - started


async def acked_appends(path: Path, n: int, durability: Durability) -> float:
    """Seconds for one publisher to append ``n`` events, awaiting each one's storage."""
    log = EventLog(path, durability)
    await log.open()
    started = time.perf_counter()
    for seq in range(1, n + 1):
        await log.append(realistic_event(seq))
    elapsed = time.perf_counter() - started
    await log.close()
    return elapsed


async def bench_acked_vs_raw(tmpdir: Path, n: int, durability: Durability,
                             rounds: int = 5) -> dict:
    """One publisher awaiting each append, against ``write()+flush()`` of the same lines in
    the same run: the two alternate, ``rounds`` times each, and the best of each counts, so a
    noisy neighbour skews neither side."""
    raw_s, acked_s = [], []
    for i in range(rounds):
        raw_s.append(raw_write_flush(tmpdir / f"raw-{durability}-{i}.jsonl", n))
        acked_s.append(await acked_appends(tmpdir / f"acked-{durability}-{i}.jsonl", n,
                                           durability))
    return {
        "durability": str(durability),
        "events": n,
        "acked_per_s": n / min(acked_s),
        "raw_per_s": n / min(raw_s),
        "ratio": min(raw_s) / min(acked_s),
    }


async def bench_read_tail(tmpdir: Path, size_mb: int = 50, limit: int = 2000) -> dict:
    """Open a ``size_mb`` log (last seq from its end) and read its last ``limit`` events."""
    path = tmpdir / "tail.jsonl"
    line = realistic_event(1).to_json()
    count = size_mb * 1024 * 1024 // (len(line) + 1)
    size = build_log(path, count, realistic_event(1))
    log = EventLog(path, Durability.NONE)
    started = time.perf_counter()
    info = await log.open()
    opened = time.perf_counter()
    events = await log.read_tail(limit)
    done = time.perf_counter()
    await log.close()
    assert info.last_seq == count and events[-1].seq == count and len(events) == limit
    return {
        "bytes": size,
        "events": count,
        "limit": limit,
        "open_s": opened - started,
        "read_tail_s": done - opened,
    }


async def bench_replay(tmpdir: Path, n: int = 1_000_000, replay: int = 10_000) -> dict:
    """Replay ``replay`` events after the middle seq of an ``n``-event log, in chunks."""
    path = tmpdir / "replay.jsonl"
    small = Event(seq=1, type=EventType.LLM_TEXT_DELTA, session_id="s", data={"content": "hi"})
    size = build_log(path, n, small)
    log = EventLog(path, Durability.NONE)
    await log.open()
    middle = n // 2
    started = time.perf_counter()
    [first] = await log.read_after(middle, limit=1)
    seek_s = time.perf_counter() - started
    assert first.seq == middle + 1
    got = 0
    first_chunk_s = 0.0
    started = time.perf_counter()
    async for chunk in log.iter_after(middle, chunk=1000):
        if got == 0:
            first_chunk_s = time.perf_counter() - started
        got += len(chunk)
        if got >= replay:
            break
    elapsed = time.perf_counter() - started
    await log.close()
    return {
        "bytes": size,
        "events": n,
        "after_seq": middle,
        "replayed": got,
        "seek_s": seek_s,
        "first_chunk_s": first_chunk_s,
        "events_per_s": got / elapsed,
    }


async def run(quick: bool) -> None:
    scale = 10 if quick else 1
    with tempfile.TemporaryDirectory(prefix="bench-eventlog-") as tmp:
        tmpdir = Path(tmp)
        for durability, n, concurrency in APPEND_RUNS:
            r = await bench_appends(tmpdir, n // scale, durability, concurrency)
            print(
                f"eventlog.append[{durability}]: {r['appends_per_s']:.0f} appends/s "
                f"({r['events']} events, {concurrency} concurrent appenders awaiting each)"
            )
        for durability in (Durability.BATCH, Durability.NONE):
            r = await bench_acked_vs_raw(tmpdir, 20_000 // scale, durability)
            print(
                f"eventlog.append[{durability}]: {r['acked_per_s']:.0f} appends/s, 1 publisher "
                f"awaiting each = {r['ratio']:.2f}x write()+flush() of the same lines "
                f"({r['raw_per_s']:.0f}/s)"
            )
        for durability in Durability:
            r = await bench_streamed_appends(tmpdir, 20_000 // scale, durability)
            print(
                f"eventlog.append[{durability}]: {r['appends_per_s']:.0f} appends/s "
                f"({r['events']} events, 1 producer not awaiting, streamed)"
            )
        r = await bench_read_tail(tmpdir, size_mb=50 // scale)
        mb = r["bytes"] / 1e6
        print(f"eventlog.open[{mb:.0f} MB]: {r['open_s'] * 1000:.2f} ms")
        print(f"eventlog.read_tail[{r['limit']} of {mb:.0f} MB]: {r['read_tail_s'] * 1000:.1f} ms")
        r = await bench_replay(tmpdir, n=1_000_000 // scale, replay=10_000)
        events = r["events"]
        print(f"eventlog.replay[seek to mid of {events}]: {r['seek_s'] * 1000:.2f} ms")
        print(f"eventlog.replay[first 1000-event chunk]: {r['first_chunk_s'] * 1000:.2f} ms")
        print(f"eventlog.replay[{r['replayed']} events]: {r['events_per_s']:.0f} events/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a run about 10x smaller")
    asyncio.run(run(parser.parse_args().quick))


if __name__ == "__main__":
    main()
