"""One pass over ``events.jsonl`` that finds the lines of some event types and every invalid
line, with regular expressions over large blocks (C speed, no Python work per line).

A line is well formed when it has the server's own layout, ``{"seq":<n>,"type":"<name>",
... }`` (orjson writes the envelope's fields in that order), and is valid UTF-8. A line that is
not (half JSON, NUL bytes, a cut, invalid UTF-8, an empty line) is recorded in ``bad`` as
``(offset, length)`` and never yielded. The caller parses the yielded lines and reports one
that still fails with ``mark_bad``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Iterator
from io import FileIO
from pathlib import Path
from typing import BinaryIO

BLOCK_SIZE = 8 * 1024 * 1024
_START = b'{"seq":'
_SHAPE = re.compile(rb'\{"seq":\d+,"type":"[a-z_]+",[^\n]*\}')


class LogScan:
    def __init__(self, kinds: Collection[str]) -> None:
        self._wanted = _wanted(frozenset(kinds))
        self.bad: list[tuple[int, int]] = []

    def mark_bad(self, offset: int, line: bytes) -> None:
        self.bad.append((offset, len(line)))

    def lines(self, path: Path, block_size: int = BLOCK_SIZE) -> Iterator[tuple[int, bytes]]:
        """``(offset, line)`` of every well-formed line of a wanted type, in file order (a
        last line without its newline is ignored: only an open log repairs a torn tail)."""
        with open(path, "rb") as fh:
            yield from self.lines_of(fh, block_size)

    def lines_of(self, fh: BinaryIO | FileIO,
                 block_size: int = BLOCK_SIZE) -> Iterator[tuple[int, bytes]]:
        """``lines`` of a file already open for reading (read from its start)."""
        fh.seek(0)
        base, carry = 0, b""
        while chunk := fh.read(block_size):
            block = carry + chunk
            end = block.rfind(b"\n") + 1
            block, carry = block[:end], block[end:]
            yield from self._block(block, base)
            base += len(block)

    def _block(self, block: bytes, base: int) -> Iterator[tuple[int, bytes]]:
        bad = {} if _all_well_formed(block) else _bad_lines(block)
        self.bad.extend((base + start, length) for start, length in sorted(bad.items()))
        framed = b"\n" + block
        for match in self._wanted.finditer(framed):
            start = match.start()  # in ``block``: the line starts one byte later
            if start not in bad:
                yield base + start, block[start:block.index(b"\n", start)]


@functools.lru_cache(maxsize=16)
def _wanted(kinds: frozenset[str]) -> re.Pattern[bytes]:
    """The pattern of a line of one of ``kinds`` (built once per set of kinds: every
    session's resume scans for the same ones)."""
    names = b"|".join(re.escape(kind.encode()) for kind in sorted(kinds))
    # the literal "\n{"seq":" prefix lets the regex engine skip from line to line
    return re.compile(rb'\n\{"seq":\d+,"type":"(?:' + names + rb')",')


def _all_well_formed(block: bytes) -> bool:
    """Every line starts and ends as an event line and the block is UTF-8 (C-speed passes:
    the common case of a clean log does no work per line)."""
    lines = block.count(b"\n")
    starts = block.startswith(_START) + block.count(b"\n" + _START)
    if starts != lines or block.count(b"}\n") != lines:
        return False
    try:
        block.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _bad_lines(block: bytes) -> dict[int, int]:
    """``{offset: length}`` of each line that is not well formed (the slow path)."""
    found: dict[int, int] = {}
    start = 0
    for line in block.split(b"\n")[:-1]:
        if _SHAPE.fullmatch(line) is None or not _is_utf8(line):
            found[start] = len(line)
        start += len(line) + 1
    return found


def _is_utf8(line: bytes) -> bool:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
