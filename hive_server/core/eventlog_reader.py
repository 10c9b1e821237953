"""Reading ``events.jsonl`` without a writer: cold sessions, and ``EventLog``'s reads.

Seqs ascend in file order, so a seq is found by bisecting byte offsets and the last seq is read
from the end of the file; nothing here scans a whole log. Every reader skips the lines that are
not kept events (``eventlog_lines``: bad lines and out-of-order seqs) and logs each one once
(a warning with the file and offset); none raises on one. Their seqs are simply missing: the
events around them are returned in seq order. A torn or invalid tail (what a crash leaves) is
ignored here; only ``EventLog.open`` repairs it.
"""

from __future__ import annotations

import bisect
import contextlib
import itertools
import logging
import operator
import os
from collections.abc import Callable, Iterable, Iterator
from io import FileIO
from pathlib import Path

from hive_server.core.eventlog_lines import Line, classify_blocks, nearest_seqs, to_line
from hive_server.models.events import Event

BLOCK_SIZE = 64 * 1024
PROBE_SIZE = 512
PROBE_BLOCK = 4096
WARNED_MAX = 4096

logger = logging.getLogger(__name__)
_warned: dict[tuple[str, int, int], None] = {}  # bad lines already logged (bounded)

def _warn_skipped(path: str, line: Line) -> None:
    key = (path, line.start, line.length)
    if key in _warned:
        return
    if len(_warned) >= WARNED_MAX:
        _warned.pop(next(iter(_warned)))
    _warned[key] = None
    what = f"seq {line.seq} out of order" if line.seq else "not a valid event"
    logger.warning("event log %s: skipped the line at offset %d (%d bytes): %s",
                   path, line.start, line.length, what)


def _lines(pieces: Iterable[tuple[int, bytes]]) -> Iterator[Line]:
    return itertools.starmap(to_line, pieces)


def _line_blocks(blocks: Iterable[list[tuple[int, bytes]]]) -> Iterator[list[Line]]:
    """Each block of ``(start, bytes)`` pieces as its lines."""
    return (list(itertools.starmap(to_line, block)) for block in blocks)


_START = operator.attrgetter("start")


def _starts(lines: list[bytes], first: int) -> Iterator[int]:
    """The offsets of consecutive ``lines`` (newline-separated) from ``first`` (C speed)."""
    return itertools.accumulate(map((1).__add__, map(len, lines)), initial=first)


class LogReader:
    """Random-access reads over one open log file. ``bytes_read`` counts every byte read."""

    def __init__(self, file: FileIO, block_size: int = BLOCK_SIZE, path: Path | None = None):
        self._file = file
        self._name = str(path) if path is not None else str(file.name)
        self.block_size = block_size
        self.size = os.fstat(file.fileno()).st_size
        self.bytes_read = 0
        self._lines_end: int | None = None
        self._tail: tuple[int, Line | None] | None = None

    def read_at(self, offset: int, size: int) -> bytes:
        self._file.seek(offset)
        data = self._file.read(size) or b""
        self.bytes_read += len(data)
        return data

    def pieces_backward(self, end: int) -> Iterator[tuple[int, bytes]]:
        """``(start, piece)`` for ``file[:end].split(b"\\n")``, last piece first."""
        return itertools.chain.from_iterable(self._blocks_backward(end))

    def _blocks_backward(self, end: int) -> Iterator[list[tuple[int, bytes]]]:
        """``pieces_backward`` a block at a time (the pieces of one block: no Python work per
        line)."""
        chunks: list[bytes] = []
        pos = end
        for block_size in self._growing(self.block_size):
            if pos <= 0:
                break
            size = min(block_size, pos)
            pos -= size
            parts = self.read_at(pos, size).split(b"\n")
            chunks.append(parts[-1])
            if len(parts) == 1:
                continue
            pieces = parts[1:]
            pieces[-1] = b"".join(reversed(chunks))
            starts = list(_starts(pieces, pos + len(parts[0]) + 1))
            starts.pop()  # the offset past the last piece
            yield list(zip(reversed(starts), reversed(pieces), strict=True))
            chunks = [parts[0]]
        yield [(0, b"".join(reversed(chunks)))]

    @staticmethod
    def _growing(block_size: int) -> Iterator[int]:
        """Read sizes: from ``PROBE_BLOCK`` doubling up to ``block_size``, so that what needs a
        few lines near an offset (the last seq, a page's neighbours, a small page) reads a few
        KiB, and a long read is still done in large blocks."""
        size = min(PROBE_BLOCK, block_size)
        while size < block_size:
            yield size
            size *= 2
        yield from itertools.repeat(block_size)

    def lines_forward(self, start: int, end: int,
                      block_size: int | None = None) -> Iterator[tuple[int, bytes]]:
        """``(start, line)`` for each complete line in ``[start, end)``; both are line starts."""
        return itertools.chain.from_iterable(self._blocks_forward(start, end, block_size))

    def _blocks_forward(self, start: int, end: int,
                        block_size: int | None) -> Iterator[list[tuple[int, bytes]]]:
        carry: list[bytes] = []
        pos = line_start = start
        for size in self._growing(block_size or self.block_size):
            if pos >= end:
                break
            block = self.read_at(pos, min(size, end - pos))
            if not block:
                return
            pos += len(block)
            parts = block.split(b"\n")
            carry.append(parts[0])
            if len(parts) == 1:
                continue
            parts[0] = b"".join(carry)
            carry = [parts.pop()]
            yield list(zip(_starts(parts, line_start), parts, strict=False))  # one start more
            line_start = pos - len(carry[0])

    # -- kept events, forward and backward ----------------------------------------------------

    @property
    def lines_end(self) -> int:
        """The offset just past the last newline: what follows it is a torn line."""
        if self._lines_end is None:
            self._lines_end = next(self.pieces_backward(self.size))[0]
        return self._lines_end

    def good_end(self) -> tuple[int, Line | None]:
        """End offset of the last kept event line, and that line.

        An unterminated tail and any bad lines after the last kept one are excluded.
        """
        if self._tail is None:
            found = next(self.backward(self.lines_end), None)
            self._tail = (0, None) if found is None else (found.end, found)
        return self._tail

    def forward(self, start: int, end: int, above: int | None = None) -> Iterator[Line]:
        """The kept event lines starting in ``[start, end)``, with seq > ``above``."""
        before = self.pieces_backward(start)
        next(before)  # b"": start is a line start
        behind = nearest_seqs(_lines(before))
        blocks = _line_blocks(self._blocks_forward(start, self.lines_end, None))
        for lines, kept in classify_blocks(blocks, behind):
            last = bool(lines) and lines[-1].start >= end
            if last:
                lines = lines[:bisect.bisect_left(lines, end, key=_START)]
                kept = kept[:len(lines)] if kept is not None else None
            found = self._kept(lines, kept, above, operator.gt)
            if found:
                above = found[-1].seq
                yield from found
            if last:
                return

    def backward(self, end: int, below: int | None = None) -> Iterator[Line]:
        """The kept event lines before ``end`` (a line start) with seq < ``below``, last
        first."""
        behind = nearest_seqs(_lines(self.lines_forward(end, self.lines_end)))
        blocks = self._blocks_backward(end)
        first = next(blocks)
        first.pop(0)  # b"": end is a line start
        for lines, kept in classify_blocks(_line_blocks(itertools.chain([first], blocks)),
                                           behind, backward=True):
            found = self._kept(lines, kept, below, operator.lt)
            if found:
                below = found[-1].seq
                yield from found

    def _kept(self, lines: list[Line], kept: list[bool] | None, bound: int | None,
              beyond: Callable[[int, int], bool]) -> list[Line]:
        """The kept lines of one decided block (in reading order) whose seqs lie ``beyond``
        the last one taken (``bound``); the others are logged as skipped. A block that is all
        kept has its seqs strictly in reading order: only its first line needs the check."""
        if kept is None and (not lines or bound is None or beyond(lines[0].seq, bound)):
            return lines
        found = []
        for line, ok in zip(lines, kept or itertools.repeat(True), strict=False):
            if ok and (bound is None or beyond(line.seq, bound)):
                bound = line.seq
                found.append(line)
            else:
                _warn_skipped(self._name, line)
        return found

    # -- bisection ------------------------------------------------------------------------------

    def line_start_after(self, pos: int, end: int) -> int:
        """The first line start at or after ``pos`` (``end`` if there is none). The reads
        double from ``PROBE_SIZE`` up to ``BLOCK_SIZE``: a probe inside a line of megabytes (a
        large tool result) takes tens of reads, not one per 512 bytes of it."""
        if pos == 0:
            return 0
        scan, size = pos - 1, PROBE_SIZE
        while scan < end:
            block = self.read_at(scan, min(size, end - scan))
            newline = block.find(b"\n")
            if newline >= 0:
                return scan + newline + 1
            scan += len(block)
            size = min(size * 2, BLOCK_SIZE)
        return end

    def probe_seq(self, start: int, end: int) -> int | None:
        """The median seq of the three event lines from ``start``: right even when one of them
        is a stray; None when fewer than three lie before ``end``. Lines are parsed whole: the
        prefix of a half-written line may carry any seq."""
        seqs: list[int] = []
        for _, raw in self.lines_forward(start, end, PROBE_BLOCK):
            seq = to_line(0, raw).seq
            if seq:
                seqs.append(seq)
                if len(seqs) == 3:
                    return sorted(seqs)[1]
        return None

    def offset_of(self, seq: int, end: int) -> int:
        """Byte offset of the first kept line with a seq >= ``seq`` (``end`` if none), by
        bisection; a probe that finds no seq moves the upper bound (always safe)."""
        lo, hi = 0, end
        while hi - lo > self.block_size:
            mid = (lo + hi) // 2
            start = self.line_start_after(mid, end)
            probe = self.probe_seq(start, end) if start < hi else None
            if probe is not None and probe < seq:
                lo = start
            else:
                hi = mid
        for line in self.forward(lo, end):
            if line.seq >= seq:
                return line.start
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
        yield LogReader(file, block_size, path)


def last_seq_file(path: Path) -> int:
    """The seq of the last kept event in ``path``; 0 when missing or empty."""
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
    lines, offset = scan_lines_after(path, after_seq, limit, start, block_size)
    return [line.to_event() for line in lines], offset


def scan_lines_after(path: Path, after_seq: int, limit: int | None = None,
                     start: int | None = None,
                     block_size: int = BLOCK_SIZE) -> tuple[list[Line], int]:
    """``scan_after``'s kept event lines: no ``Event`` built (SSE replay sends their bytes)."""
    with open_reader(path, block_size) as reader:
        if reader is None:
            return [], 0
        end, last = reader.good_end()
        if last is None or after_seq >= last.seq:
            return [], end
        if start is None:
            start = reader.offset_of(after_seq + 1, end) if after_seq > 0 else 0
        found = reader.forward(start, end, above=after_seq)
        lines = list(itertools.islice(found, limit))
        following = next(found, None) if limit is not None and len(lines) == limit else None
        return lines, end if following is None else following.start


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
        found = itertools.islice(reader.backward(end, before_seq), limit)
        events = [line.to_event() for line in found]
        events.reverse()
        return events
