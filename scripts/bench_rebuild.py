"""Benchmark the cold-resume rebuild of a queen's conversation from ``events.jsonl``.

Run: ``.venv/bin/python scripts/bench_rebuild.py [--events N] [--repeats R]``. The log is a
realistic session: per execution a chat, streamed deltas (most of the file: each carries the
growing snapshot), ``llm_turn_complete`` with the whole message, and about one execution in
three calls two tools in parallel; a worker stream runs alongside. The figure is the best of
``R`` runs of ``rebuild_from_file`` in a thread (as the server calls it), page cache warm.
``bench_rebuild`` is importable for a combined benchmark script.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hive_server.models.events import Event, EventType
from hive_server.services.runtime.conversation import rebuild_from_file

SENTENCE = ("the queen reads the notes, plans the next step and hands the research to a worker "
            "who reports back with a short summary of what changed since yesterday")
WORDS = SENTENCE.split(" ")
DELTAS_PER_TURN = 30
WORDS_PER_DELTA = 3


class _Writer:
    def __init__(self) -> None:
        self.lines: list[bytes] = []
        self.execution = ""

    def emit(self, kind: EventType, data: dict[str, Any], stream_id: str = "queen") -> int:
        seq = len(self.lines) + 1
        self.lines.append(Event(seq=seq, type=kind, session_id="bench-session",
                                stream_id=stream_id, execution_id=self.execution,
                                data=data).to_json())
        return seq


def _text(start: int, words: int) -> str:
    return " ".join(WORDS[(start + i) % len(WORDS)] for i in range(words))


def _turn(log: _Writer, number: int, tools: list[dict[str, Any]],
          stream_id: str = "queen") -> None:
    snapshot = ""
    kind = EventType.CLIENT_OUTPUT_DELTA if stream_id == "queen" else EventType.LLM_TEXT_DELTA
    for delta in range(DELTAS_PER_TURN):
        piece = " " + _text(number + delta, WORDS_PER_DELTA)
        snapshot += piece
        log.emit(kind, {"content": piece, "snapshot": snapshot}, stream_id)
    content = [{"type": "text", "text": snapshot.strip()}, *tools]
    log.emit(EventType.LLM_TURN_COMPLETE, {
        "message": {"role": "assistant", "content": content},
        "usage": {"input_tokens": 1200 + number, "output_tokens": 90},
        "stop_reason": "tool_use" if tools else "end_turn", "model": "claude-bench"},
        stream_id)


def _execution(log: _Writer, number: int) -> None:
    log.execution = f"exec-{number:06d}"
    seq = log.emit(EventType.CLIENT_INPUT_RECEIVED,
                   {"message": f"request {number}: " + _text(number, 25), "source": "user"})
    log.emit(EventType.EXECUTION_STARTED, {"trigger": "user", "input_seq": seq, "coalesced": 0})
    if number % 3 == 0:
        uses = [{"type": "tool_use", "id": f"toolu_{number}_{i}", "name": name,
                 "input": {"path": "notes.txt"}} for i, name in enumerate(("read_file",
                                                                           "get_time"))]
        _turn(log, number, uses)
        for use in uses:
            log.emit(EventType.TOOL_CALL_STARTED, {"tool_use_id": use["id"],
                                                   "tool_name": use["name"],
                                                   "tool_input": use["input"]})
        for use in reversed(uses):
            log.emit(EventType.TOOL_CALL_COMPLETED, {
                "tool_use_id": use["id"], "tool_name": use["name"],
                "result": _text(number, 60), "is_error": False})
    if number % 5 == 0:
        _turn(log, number, [], stream_id="worker:researcher")
    _turn(log, number + 1, [])
    log.emit(EventType.EXECUTION_COMPLETED, {"turns": 2, "usage": {"input_tokens": 2400,
                                                                    "output_tokens": 180}})


def _lines(events: int) -> Iterator[bytes]:
    log = _Writer()
    number = 0
    while len(log.lines) < events:
        _execution(log, number)
        number += 1
    yield from log.lines[:events]


def build_session_log(path: Path, events: int) -> int:
    """Write an ``events``-line session log to ``path``; return its size in bytes."""
    with path.open("wb") as handle:
        for line in _lines(events):
            handle.write(line + b"\n")
    return path.stat().st_size


async def bench_rebuild(tmpdir: Path, events: int = 100_000, repeats: int = 3) -> dict:
    """Build the log, then time ``rebuild_from_file`` ``repeats`` times; the best run counts."""
    path = tmpdir / "events.jsonl"
    size = await asyncio.to_thread(build_session_log, path, events)
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        rebuilt = await asyncio.to_thread(rebuild_from_file, path)
        runs.append(time.perf_counter() - started)
    assert rebuilt.messages and rebuilt.messages[0]["role"] == "user"
    return {"events": events, "bytes": size, "messages": len(rebuilt.messages),
            "pending": len(rebuilt.pending), "best_s": min(runs), "runs_s": runs}


async def run(events: int, repeats: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-rebuild-") as tmp:
        r = await bench_rebuild(Path(tmp), events, repeats)
    label = f"{events // 1000}k" if events % 1000 == 0 else str(events)
    print(f"rebuild[{label} events]: {r['best_s'] * 1000:.0f} ms "
          f"({r['bytes'] / 1e6:.0f} MB log, {r['messages']} messages rebuilt, "
          f"best of {repeats})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(run(args.events, args.repeats))


if __name__ == "__main__":
    main()
