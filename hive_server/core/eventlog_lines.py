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
event line just before it is a duplicate. The readers decide a block of lines at a time
(``classify_blocks``): in a block of event lines whose seqs go strictly up, each lies between
its neighbours and is kept, with no decision per line (tests/test_log_order.py checks every
decision against the whole file's).
"""

from __future__ import annotations

import dataclasses
import itertools
import operator
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
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


Decided = tuple[list[Line], list[bool] | None]  # lines in reading order, whether each is kept


class _Order:
    """``classify``'s state: the seqs of the last two decided event lines (``seen``, nearest
    first) and the lines read but not decided yet (``held``: empty, or an event line first;
    ``coming``: the seqs of the event lines in it; ``held_bad``: how many bad lines it has)."""

    def __init__(self, behind: Sequence[int], backward: bool) -> None:
        self.seen = _pad(behind)
        self.backward = backward
        self.held: deque[Line] = deque()
        self.coming: deque[int] = deque()
        self.held_bad = 0

    def feed(self, block: list[Line]) -> Decided:
        """Take the next lines; what can be decided now."""
        if not self.held_bad:  # held: at most two event lines
            work = [*self.held, *block]
            if len(work) > 1 and self._strictly_in_order(work):
                # every line but the last lies between its neighbours: kept (in_order's first
                # case), decided without a call per line; the last waits for the next block
                before = work[-3].seq if len(work) > 2 else self.seen[0]
                self.seen = (work[-2].seq, before)
                self.held, self.coming = deque(work[-1:]), deque([work[-1].seq])
                return work[:-1], None
        decided: tuple[list[Line], list[bool]] = ([], [])
        for line in block:
            self._push(line, decided)
        return decided

    def finish(self) -> Decided:
        """Decide the last held lines: fewer than two event lines come after them."""
        decided: tuple[list[Line], list[bool]] = ([], [])
        while self.coming:
            self._decide(_pad(list(self.coming)[1:]), decided)
        return decided

    def _strictly_in_order(self, work: list[Line]) -> bool:
        """Every line is an event line and the seqs go strictly up in file order, from the
        last decided one on."""
        seqs = [line.seq for line in work]
        if 0 in seqs:
            return False
        if self.seen[0] is not None:
            seqs.insert(0, self.seen[0])
        step = operator.gt if self.backward else operator.lt
        return all(map(step, seqs, itertools.islice(seqs, 1, None)))

    def _push(self, line: Line, decided: tuple[list[Line], list[bool]]) -> None:
        if not line.seq and not self.held:
            decided[0].append(line)
            decided[1].append(False)
            return
        self.held.append(line)
        if line.seq:
            self.coming.append(line.seq)
        else:
            self.held_bad += 1
        if len(self.coming) == 3:  # the first held line has two event lines after it
            self._decide((self.coming[1], self.coming[2]), decided)

    def _decide(self, ahead: tuple[int | None, int | None],
                decided: tuple[list[Line], list[bool]]) -> None:
        """Decide the first held line (an event line), then pass the bad lines after it."""
        seq = self.coming.popleft()
        decided[0].append(self.held.popleft())
        decided[1].append(_kept(self.seen, seq, ahead, self.backward))
        self.seen = (seq, self.seen[0])
        while self.held and not self.held[0].seq:
            decided[0].append(self.held.popleft())
            decided[1].append(False)
            self.held_bad -= 1


def classify_blocks(blocks: Iterable[list[Line]], behind: Sequence[int], *,
                    backward: bool = False) -> Iterator[Decided]:
    """``classify`` a block of lines at a time: for each block, the lines decided so far (in
    reading order) and whether each is kept, or None when every one of them is (a run of event
    lines whose seqs go strictly up: the common case, decided with no Python work per line)."""
    order = _Order(behind, backward)
    for block in blocks:
        yield order.feed(block)
    yield order.finish()


def classify(lines: Iterable[Line], behind: Sequence[int], *,
             backward: bool = False) -> Iterator[tuple[Line, bool]]:
    """Each of ``lines`` (in reading order) with whether it is a kept event.

    ``behind``: the seqs of up to two event lines just before the first line in reading order,
    nearest first (``nearest_seqs``). Reads at most two event lines ahead.
    """
    for decided, kept in classify_blocks(([line] for line in lines), behind,
                                         backward=backward):
        yield from zip(decided, kept or itertools.repeat(True), strict=False)
