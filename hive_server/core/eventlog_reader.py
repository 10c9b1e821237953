"""Reading ``events.jsonl`` without a writer: cold sessions, and ``EventLog``'s reads.

Seqs are contiguous from 1 in file order, so a seq is found by bisecting byte offsets and the
last seq is read from the end of the file; nothing here scans a whole log. A torn or invalid
tail (what a crash leaves) is ignored here; only ``EventLog.open`` repairs it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import os
import re
from collections.abc import Iterator
from io import FileIO
from pathlib import Path

import orjson

from hive_server.models.events import Event

BLOCK_SIZE = 64 * 1024
PROBE_SIZE = 512
_SEQ_PREFIX = re.compile(rb'\{"seq":(\d+)[,}]')


def parse_event(line: bytes) -> Event | None:
    """The event on one log line, or None when the line is not a valid event."""
    try:
        event = Event.from_json(line)
    except (ValueError, TypeError):
        return None
    return event if type(event.seq) is int else None


def line_seq(line: bytes) -> int:
    """The seq of a log line: read from its prefix when it has orjson's layout, else parsed."""
    match = _SEQ_PREFIX.match(line)
    if match is not None:
        return int(match.group(1))
    seq = orjson.loads(line)["seq"]
    if type(seq) is not int:
        raise ValueError(f"log line without an integer seq: {line[:80]!r}")
    return seq


class LogReader:
    """Random-access reads over one open log file. ``bytes_read`` counts every byte read."""

    def __init__(self, file: FileIO, block_size: int = BLOCK_SIZE):
        self._file = file
        self.block_size = block_size
        self.size = os.fstat(file.fileno()).st_size
        self.bytes_read = 0

    def read_at(self, offset: int, size: int) -> bytes:
        self._file.seek(offset)
        data = self._file.read(size) or b""
        self.bytes_read += len(data)
        return data

    def pieces_backward(self, end: int) -> Iterator[tuple[int, bytes]]:
        """``(start, piece)`` for ``file[:end].split(b"\\n")``, last piece first."""
        chunks: list[bytes] = []
        pos = end
        while pos > 0:
            size = min(self.block_size, pos)
            pos -= size
            parts = self.read_at(pos, size).split(b"\n")
            chunks.append(parts[-1])
            if len(parts) == 1:
                continue
            start = pos + size - len(parts[-1])
            yield start, b"".join(reversed(chunks))
            for part in reversed(parts[1:-1]):
                start -= len(part) + 1
                yield start, part
            chunks = [parts[0]]
        yield 0, b"".join(reversed(chunks))

    def lines_forward(self, start: int, end: int) -> Iterator[tuple[int, bytes]]:
        """``(start, line)`` for each complete line in ``[start, end)``; both are line starts."""
        carry: list[bytes] = []
        pos = line_start = start
        while pos < end:
            block = self.read_at(pos, min(self.block_size, end - pos))
            if not block:
                return
            pos += len(block)
            parts = block.split(b"\n")
            carry.append(parts[0])
            if len(parts) == 1:
                continue
            parts[0] = b"".join(carry)
            for part in parts[:-1]:
                yield line_start, part
                line_start += len(part) + 1
            carry = [parts[-1]]

    def good_end(self) -> tuple[int, Event | None]:
        """End offset of the last complete, valid event line, and that event.

        An unterminated tail and any invalid lines after the last good one are excluded.
        """
        pieces = self.pieces_backward(self.size)
        next(pieces)  # the bytes after the last newline: b"" or a torn line
        for start, line in pieces:
            event = parse_event(line)
            if event is not None:
                return start + len(line) + 1, event
        return 0, None

    def line_start_after(self, pos: int, end: int) -> int:
        """The first line start at or after ``pos`` (``end`` if there is none)."""
        if pos == 0:
            return 0
        scan = pos - 1
        while scan < end:
            block = self.read_at(scan, min(PROBE_SIZE, end - scan))
            newline = block.find(b"\n")
            if newline >= 0:
                return scan + newline + 1
            scan += len(block)
        return end

    def seq_at(self, start: int, end: int) -> int:
        """The seq of the line starting at ``start``, reading only its prefix when possible."""
        head = self.read_at(start, min(PROBE_SIZE, end - start))
        match = _SEQ_PREFIX.match(head)
        if match is not None:
            return int(match.group(1))
        _, line = next(self.lines_forward(start, end))
        return line_seq(line)

    def offset_of(self, seq: int, end: int) -> int:
        """Byte offset of the first line with a seq >= ``seq`` (``end`` if none), by bisection."""
        lo, hi = 0, end
        while hi - lo > self.block_size:
            mid = (lo + hi) // 2
            start = self.line_start_after(mid, end)
            if start < hi and self.seq_at(start, end) < seq:
                lo = start
            else:
                hi = mid
        for start, line in self.lines_forward(lo, end):
            if line_seq(line) >= seq:
                return start
        return end


@contextlib.contextmanager
def open_reader(path: Path, block_size: int = BLOCK_SIZE) -> Iterator[LogReader | None]:
    """A reader over ``path``, or None when the file does not exist."""
    try:
        file = FileIO(path, "r")
    except FileNotFoundError:
        yield None
        return
    with file:
        yield LogReader(file, block_size)


def last_seq_file(path: Path) -> int:
    """The seq of the last valid event in ``path``; 0 when missing or empty."""
    with open_reader(path) as reader:
        if reader is None:
            return 0
        _, last = reader.good_end()
        return last.seq if last is not None else 0


def scan_after(
    path: Path,
    after_seq: int,
    limit: int | None = None,
    start: int | None = None,
    block_size: int = BLOCK_SIZE,
) -> tuple[list[Event], int]:
    """Events with seq > ``after_seq`` (at most ``limit``) and the offset just past them.

    ``start``, when given, is the offset returned by the previous call (no search needed).
    """
    with open_reader(path, block_size) as reader:
        if reader is None:
            return [], 0
        end, last = reader.good_end()
        if last is None or after_seq >= last.seq:
            return [], end
        if start is None:
            start = reader.offset_of(after_seq + 1, end) if after_seq > 0 else 0
        events: list[Event] = []
        for line_start, line in reader.lines_forward(start, end):
            if limit is not None and len(events) >= limit:
                return events, line_start
            event = Event.from_json(line)
            if event.seq > after_seq:
                events.append(event)
        return events, end


def read_after_file(
    path: Path, after_seq: int, limit: int | None = None, *, block_size: int = BLOCK_SIZE
) -> list[Event]:
    """Events with seq > ``after_seq`` in order, at most ``limit``; no writer needed."""
    return scan_after(path, after_seq, limit, block_size=block_size)[0]


def read_tail_file(
    path: Path, limit: int, before_seq: int | None = None, *, block_size: int = BLOCK_SIZE
) -> list[Event]:
    """The last ``limit`` events with seq < ``before_seq`` (all if None), ascending."""
    with open_reader(path, block_size) as reader:
        if reader is None or limit <= 0:
            return []
        end, last = reader.good_end()
        if last is None:
            return []
        if before_seq is not None and before_seq <= last.seq:
            end = reader.offset_of(before_seq, end)
        pieces = reader.pieces_backward(end)
        next(pieces)  # b"": end is a line start
        events = [Event.from_json(line) for _, line in itertools.islice(pieces, limit)]
        events.reverse()
        return events


@dataclasses.dataclass(frozen=True, slots=True)
class EventPage:
    """A backward page of a log: ``events`` ascending; ``start_offset`` is the byte offset of
    the first one's line (0 when the page is empty); ``last_seq`` is the last seq considered."""

    events: list[Event]
    start_offset: int
    last_seq: int


def read_page_file(
    path: Path, limit: int, *, before_seq: int | None = None, before_offset: int | None = None,
    upto_seq: int | None = None, block_size: int = BLOCK_SIZE,
) -> EventPage:
    """The last ``limit`` valid events before ``before_seq`` (else before the line at or after
    byte ``before_offset``), none after ``upto_seq``. Invalid lines are skipped."""
    with open_reader(path, block_size) as reader:
        if reader is None or limit <= 0:
            return EventPage([], 0, 0)
        end, last = reader.good_end()
        if last is None:
            return EventPage([], 0, 0)
        last_seq = last.seq
        if upto_seq is not None and upto_seq < last_seq:
            end, last_seq = reader.offset_of(upto_seq + 1, end), upto_seq
        if before_seq is not None:
            end = reader.offset_of(before_seq, end)
        elif before_offset is not None:
            end = reader.line_start_after(min(before_offset, end), end)
        events: list[Event] = []
        start_offset = 0
        pieces = reader.pieces_backward(end)
        next(pieces)  # b"": end is a line start
        for start, line in pieces:
            if (event := parse_event(line)) is not None:
                events.append(event)
                start_offset = start
                if len(events) >= limit:
                    break
        events.reverse()
        return EventPage(events, start_offset, last_seq)
