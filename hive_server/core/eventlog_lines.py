"""Which lines of ``events.jsonl`` are events, and which events are out of order.

A line is an event when it is a JSON object with the envelope's fields and an integer seq >= 1
(``parse_event``). Any other line (half JSON, NUL bytes, invalid UTF-8, a blank line, JSON
without an integer seq) is a bad line; every reader skips it. U+2028/U+2029 are ordinary
characters here: lines end at ``\\n`` only.

An event line whose seq breaks the ascending order (a duplicate, a stray copy of an old line,
a seq from nowhere) is skipped too. That is decided from its neighbours alone, the two event
lines on each side (``in_order``), so a reader that starts anywhere, forward or backward, takes
the same decision without reading the whole file. A line is kept when its seq lies between its
neighbours', allowing for one stray neighbour on either side; a line with the same seq as the
event line just before it is a duplicate.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections import deque
from collections.abc import Iterable, Iterator, Sequence

import orjson

from hive_server.models.events import Event


@dataclasses.dataclass(frozen=True, slots=True)
class Line:
    """One complete line: its byte offset, its length without the newline, its event (None
    when the line is not an event)."""

    start: int
    length: int
    event: Event | None

    @property
    def end(self) -> int:
        """The offset just past the line's newline."""
        return self.start + self.length + 1


def parse_event(raw: bytes) -> Event | None:
    """The event on one log line, or None when the line is not a valid event."""
    try:
        event = Event.from_json(raw)
    except (ValueError, TypeError):
        return None
    if type(event.seq) is not int or event.seq < 1 or not isinstance(event.type, str):
        return None
    return event


def to_line(start: int, raw: bytes) -> Line:
    return Line(start, len(raw), parse_event(raw))


def bad_kind(raw: bytes) -> str:
    """Why a line that ``parse_event`` refused is not an event."""
    if not raw.strip():
        return "blank"
    if not raw.strip(b"\x00"):
        return "nul"
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return "invalid_utf8"
    try:
        orjson.loads(raw)
    except orjson.JSONDecodeError:
        return "invalid_json"
    return "not_an_event"


def _above(seq: int, low: int | None) -> bool:
    return low is None or seq > low


def _below(seq: int, high: int | None) -> bool:
    return high is None or seq < high


def in_order(prev2: int | None, prev1: int | None, seq: int,
             next1: int | None, next2: int | None) -> bool:
    """Whether an event line with ``seq`` is kept, given the seqs of the event lines around it
    in file order (None where the file has none)."""
    if prev1 == seq:
        return False  # a duplicate: the first copy is kept
    return ((_above(seq, prev1) and _below(seq, next1))
            or (_above(seq, prev2) and _below(seq, next1))  # the line before is a stray
            or (_above(seq, prev1) and _below(seq, next2)))  # the line after is a stray


def nearest_seqs(lines: Iterable[Line]) -> list[int]:
    """The seqs of the first two event lines of ``lines``."""
    events = (line.event.seq for line in lines if line.event is not None)
    return list(itertools.islice(events, 2))


def _pad(seqs: list[int]) -> tuple[int | None, int | None]:
    return (seqs[0] if seqs else None, seqs[1] if len(seqs) > 1 else None)


def classify(lines: Iterable[Line], behind: Sequence[int], *,
             backward: bool = False) -> Iterator[tuple[Line, bool]]:
    """Each of ``lines`` (in reading order) with whether it is a kept event.

    ``behind``: the seqs of up to two event lines just before the first line in reading order,
    nearest first (``nearest_seqs``). Reads at most two event lines ahead.
    """
    seen = list(behind[:2])
    source = iter(lines)
    ahead: deque[Line] = deque()
    while True:
        if not ahead:
            first = next(source, None)
            if first is None:
                return
            ahead.append(first)
        line = ahead.popleft()
        if line.event is None:
            yield line, False
            continue
        coming = [other.event.seq for other in ahead if other.event is not None][:2]
        while len(coming) < 2 and (other := next(source, None)) is not None:
            ahead.append(other)
            if other.event is not None:
                coming.append(other.event.seq)
        before, after = _pad(seen), _pad(coming)
        if backward:
            before, after = after, before
        yield line, in_order(before[1], before[0], line.event.seq, after[0], after[1])
        seen = [line.event.seq, *seen[:1]]
