"""Which lines of ``events.jsonl`` are events, and which events are out of order.

A line is an event when it is a JSON object with the envelope's fields and an integer seq >= 1
(``to_line``). Any other line (half JSON, NUL bytes, invalid UTF-8, a blank line, JSON
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
from collections.abc import Generator, Iterable, Iterator, Sequence
from typing import Any

import orjson

from hive_server.models.events import Event

ORDER = tuple(field.name for field in dataclasses.fields(Event))  # as orjson writes them
ENVELOPE = frozenset(ORDER)
REQUIRED = frozenset(field.name for field in dataclasses.fields(Event)  # no default
                     if field.default is field.default_factory is dataclasses.MISSING)
FIELD_COUNT = len(ENVELOPE)


@dataclasses.dataclass(slots=True)
class Line:
    """One complete line: its byte offset and bytes (without the newline) and, when the line is
    an event, its seq and type (``seq`` 0: not an event). No ``Event`` is built until one is
    asked for (``to_event``): a page of the log splices the lines' own bytes.

    A line keeps its bytes, not the dict its check parsed (``fields`` parses them again when
    asked). A page of 2,000 lines that kept their dicts held some 30,000 objects for the
    garbage collector to walk, which then ran full collections of the server's heap: in a
    server process that was 5 ms of a 2,000-event ``events/history`` answer, half the time the
    raw read of the same lines takes (docs/benchmarks.md, "Lines keep their bytes")."""

    start: int
    raw: bytes
    seq: int = 0  # an event's seq is >= 1
    type: str = ""
    whole: bool = False  # an event line with every envelope field: ``raw`` is its JSON

    @property
    def length(self) -> int:
        """The line's length without the newline."""
        return len(self.raw)

    @property
    def end(self) -> int:
        """The offset just past the line's newline."""
        return self.start + len(self.raw) + 1

    @property
    def fields(self) -> dict[str, Any] | None:
        """The event's fields, parsed from the bytes on each access (None for a bad line)."""
        if not self.seq:
            return None
        fields: dict[str, Any] = orjson.loads(self.raw)
        return fields

    def to_event(self) -> Event:
        """The line's event, built on each call (an event line only: ValueError otherwise)."""
        fields = self.fields
        if fields is None:
            raise ValueError(f"the line at offset {self.start} is not an event")
        return Event.from_fields(fields, self.raw)

    def to_json(self) -> bytes:
        """The event's JSON (an event line only): the line itself when it holds every envelope
        field and no ``\\r``, else the event re-serialised with the missing fields' defaults."""
        if self.whole and b"\r" not in self.raw:
            return self.raw
        return self.to_event().to_json()

    def sse_frame(self) -> bytes:
        """The event as one SSE frame, as ``Event.sse_frame`` writes it (an event line only)."""
        return b"id: %d\ndata: %s\n\n" % (self.seq, self.to_json())


def to_line(start: int, raw: bytes) -> Line:
    """The line at ``start``: an event when it is a JSON object with the envelope's fields
    (``seq``, ``type`` and ``session_id`` at least, no other key), an integer seq >= 1 and a
    string type. One ``orjson.loads``, no ``Event``; the parsed dict is dropped (``Line``)."""
    try:
        fields = orjson.loads(raw)
        seq, kind = fields["seq"], fields["type"]
    except (orjson.JSONDecodeError, TypeError, KeyError):
        return Line(start, raw)
    if (type(seq) is not int or seq < 1 or type(kind) is not str
            or not (tuple(fields) == ORDER or ENVELOPE >= fields.keys() >= REQUIRED)):
        return Line(start, raw)
    return Line(start, raw, seq, kind, len(fields) == FIELD_COUNT)


def parse_event(raw: bytes) -> Event | None:
    """The event on one log line, or None when the line is not a valid event."""
    line = to_line(0, raw)
    return line.to_event() if line.seq else None


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
    return list(itertools.islice((line.seq for line in lines if line.seq), 2))


def _pad(seqs: Sequence[int]) -> tuple[int | None, int | None]:
    return (seqs[0] if seqs else None, seqs[1] if len(seqs) > 1 else None)


def _kept(behind: tuple[int | None, int | None], seq: int,
          ahead: tuple[int | None, int | None], backward: bool) -> bool:
    """``in_order`` from the seqs nearest first in reading order on each side."""
    if backward:
        behind, ahead = ahead, behind
    if behind[0] is not None and ahead[0] is not None and behind[0] < seq < ahead[0]:
        return True  # the common case, decided without a call
    return in_order(behind[1], behind[0], seq, ahead[0], ahead[1])


def classify(lines: Iterable[Line], behind: Sequence[int], *,
             backward: bool = False) -> Iterator[tuple[Line, bool]]:
    """Each of ``lines`` (in reading order) with whether it is a kept event.

    ``behind``: the seqs of up to two event lines just before the first line in reading order,
    nearest first (``nearest_seqs``). Reads at most two event lines ahead.
    """
    seen = _pad(behind)
    held: deque[Line] = deque()  # read, not yet yielded: empty or an undecided event line first
    coming: deque[int] = deque()  # the seqs of the event lines in ``held``
    for line in lines:
        if not line.seq and not held:
            yield line, False
            continue
        held.append(line)
        if line.seq:
            coming.append(line.seq)
        if len(coming) == 3:  # the first held line has two event lines after it
            seq = coming.popleft()
            yield held.popleft(), _kept(seen, seq, (coming[0], coming[1]), backward)
            seen = (seq, seen[0])
            while not held[0].seq:  # (inline: this runs once per line)
                yield held.popleft(), False
    while coming:  # the last event lines: fewer than two after them
        seen = yield from _decide(held, coming, seen, backward)


def _decide(held: deque[Line], coming: deque[int], seen: tuple[int | None, int | None],
            backward: bool) -> Generator[tuple[Line, bool], None, tuple[int, int | None]]:
    """Decide the first held line (an event line), then yield the bad lines after it; return
    the new ``seen``."""
    seq = coming.popleft()
    yield held.popleft(), _kept(seen, seq, _pad(coming), backward)
    while held and not held[0].seq:
        yield held.popleft(), False
    return seq, seen[0]
