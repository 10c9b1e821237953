"""CPU of the event log's read paths against raw baselines, in this process; prints one JSON
object.

``python -m benchmarks.log_reads [--log PATH] [--events 20000] [--tail 2000] [--rounds 60]``

- ``history_tail``: ``events/history``'s work for the last ``--tail`` events (``read_page_file``
  and ``page_body``: the body as sent) against ``benchmarks.http.raw_tail`` (seek from the end,
  ``orjson.loads`` each line, ``orjson.dumps`` the list);
- ``replay``: SSE replay of 10,000 events from the middle (``scan_lines_after`` in 1000-event
  chunks, each chunk's frames joined) against a seek to the middle line's offset (known, no
  search) + readline + ``orjson.loads`` as many lines.

Ours and raw alternate round by round and are timed with ``time.process_time`` (CPU, not wall:
a busy machine slows both alike); the ratios are of the medians (and of the minimums). The log
is ``--log`` (e.g. a session's ``events.jsonl``) or a synthetic one of ``--events`` events of
the shapes a chat writes (small deltas, inputs, state changes, a turn's message).
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import orjson

from benchmarks.http import raw_tail
from hive_server.core.eventlog_pages import read_page_file
from hive_server.core.eventlog_reader import scan_lines_after
from hive_server.models.events import Event, EventType
from hive_server.services.sessions.event_history import HistoryPage
from hive_server.web.history import page_body

REPLAY, CHUNK = 10_000, 1000
TEXT = "The colony split the survey into three parts and the scouts report back. " * 4
SHAPES = [
    (EventType.CLIENT_OUTPUT_DELTA, {"content": TEXT[:20], "snapshot": TEXT[:120]}),
    (EventType.CLIENT_INPUT_RECEIVED, {"content": "hello bees", "source": "user"}),
    (EventType.LOOP_STATE_CHANGED, {"activity": "executing", "park_reason": None}),
    (EventType.LLM_TURN_COMPLETE, {"message": {"role": "assistant", "content": [
        {"type": "text", "text": TEXT}]}, "stop_reason": "end_turn"}),
    (EventType.EXECUTION_COMPLETED, {"turns": 1, "usage": {"input_tokens": 155}}),
]


def write_log(path: Path, count: int) -> None:
    shapes = itertools.cycle(SHAPES)
    with path.open("wb") as file:
        for seq in range(1, count + 1):
            kind, data = next(shapes)
            file.write(Event(seq=seq, type=kind, session_id="bench", execution_id="e1",
                             data=data).to_json() + b"\n")


def history_tail(path: Path, limit: int) -> None:
    page = read_page_file(path, limit)
    page_body("bench", limit, HistoryPage(page, page.last_seq))


def replay(path: Path, after: int, events: int) -> None:
    offset, got = None, 0
    while got < events:
        lines, offset = scan_lines_after(path, after, CHUNK, offset)
        if not lines:
            return
        b"".join([line.sse_frame() for line in lines])
        got, after = got + len(lines), lines[-1].seq


def raw_replay(path: Path, offset: int, events: int) -> None:
    with path.open("rb") as file:
        file.seek(offset)
        for _ in range(events):
            orjson.loads(file.readline())


def compare(ours: Callable[[], object], raw: Callable[[], object], rounds: int) -> dict:
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(rounds):
        for fn, into in ((ours, times[0]), (raw, times[1])):
            started = time.process_time()
            fn()
            into.append(time.process_time() - started)
    medians = [statistics.median(t) for t in times]
    return {"ours_ms": round(medians[0] * 1000, 2), "raw_ms": round(medians[1] * 1000, 2),
            "ratio": round(medians[0] / medians[1], 2),
            "ratio_of_minimums": round(min(times[0]) / min(times[1]), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--log", type=Path, help="an events.jsonl to read (default: synthetic)")
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--tail", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hive-log-reads-") as tmp:
        path = Path(tmp) / "events.jsonl"
        if args.log is not None:
            shutil.copyfile(args.log, path)
        else:
            write_log(path, args.events)
        raw_lines = path.read_bytes().split(b"\n")[:-1]
        lines, half = len(raw_lines), len(raw_lines) // 2
        middle = json.loads(raw_lines[half - 1])["seq"]  # replay after it, from the next line
        offset = sum(len(line) + 1 for line in raw_lines[:half])
        events = min(REPLAY, lines - half)
        print(json.dumps({
            "log_bytes": path.stat().st_size, "log_lines": lines,
            "history_tail": {"events": args.tail, **compare(
                lambda: history_tail(path, args.tail), lambda: raw_tail(path, args.tail),
                args.rounds)},
            "replay": {"events": events, **compare(
                lambda: replay(path, middle, events), lambda: raw_replay(path, offset, events),
                max(5, args.rounds // 6))},
        }))


if __name__ == "__main__":
    main()
