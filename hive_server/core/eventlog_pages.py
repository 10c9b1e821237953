"""Pages of ``events.jsonl`` as ``/events/history`` serves them (``EventPage``): the last
``limit`` kept events before a cursor, or the first ``limit`` after a seq, of some types, none
after ``upto_seq``. Read by ``eventlog_reader.LogReader`` (bad lines are skipped there); on
Redis, ``eventlog_redis_pages`` answers the same pages from a stream."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator
from pathlib import Path

from hive_server.core.eventlog_lines import Line
from hive_server.core.eventlog_reader import BLOCK_SIZE, LogReader, open_reader
from hive_server.models.events import Event


@dataclasses.dataclass(frozen=True, slots=True)
class EventPage:
    """A page of a log: ``lines`` ascending (kept event lines: their seq, type and bytes;
    ``events`` builds their ``Event``s); ``start_offset`` is the byte offset of the first
    one (0 when the page is empty); ``last_seq`` is the last seq considered;
    ``more_older``: whether an older event of the wanted types exists (older than the first
    one, or than the cursor when the page is empty); ``more_newer``: whether a newer one does
    (forward pages only: a backward page is the newest before its cursor)."""

    lines: list[Line]
    start_offset: int
    last_seq: int
    more_older: bool = False
    more_newer: bool = False

    @property
    def events(self) -> list[Event]:
        return [line.to_event() for line in self.lines]

    @property
    def first_seq(self) -> int:
        """The seq of the first event (0 for an empty page)."""
        return self.lines[0].seq if self.lines else 0


Types = frozenset[str] | None


def _of_types(found: Iterator[Line], types: Types) -> Iterator[Line]:
    return found if types is None else (line for line in found if line.type in types)


def _bounds(reader: LogReader, upto_seq: int | None) -> tuple[int, int, int | None]:
    """End offset, last seq and seq bound of the events at or below ``upto_seq``."""
    end, last = reader.good_end()
    last_seq = last.seq if last is not None else 0
    if upto_seq is not None and upto_seq < last_seq:
        return reader.offset_of(upto_seq + 1, end), upto_seq, upto_seq + 1
    return end, last_seq, None


def _page(page: list[Line], last_seq: int, **more: bool) -> EventPage:
    return EventPage(page, page[0].start if page else 0, last_seq, **more)


def read_page_file(
    path: Path, limit: int, *, before_seq: int | None = None, before_offset: int | None = None,
    upto_seq: int | None = None, types: Types = None, block_size: int = BLOCK_SIZE,
) -> EventPage:
    """The last ``limit`` kept events (of ``types``, when given) before ``before_seq`` (else
    before the line at or after byte ``before_offset``), none after ``upto_seq``. Bad lines
    are skipped."""
    with open_reader(path, block_size) as reader:
        if reader is None or limit <= 0:
            return EventPage([], 0, 0)
        end, last_seq, below = _bounds(reader, upto_seq)
        if before_seq is not None:
            end = reader.offset_of(before_seq, end)
            below = before_seq if below is None else min(below, before_seq)
        elif before_offset is not None:
            end = reader.line_start_after(min(before_offset, end), end)
        found = list(itertools.islice(_of_types(reader.backward(end, below), types), limit + 1))
        return _page(found[:limit][::-1], last_seq, more_older=len(found) > limit)


def read_forward_page_file(
    path: Path, limit: int, after_seq: int, *, upto_seq: int | None = None,
    types: Types = None, block_size: int = BLOCK_SIZE,
) -> EventPage:
    """The first ``limit`` kept events (of ``types``, when given) with seq > ``after_seq``,
    none after ``upto_seq``. Bad lines are skipped."""
    with open_reader(path, block_size) as reader:
        if reader is None or limit <= 0:
            return EventPage([], 0, 0)
        end, last_seq, _ = _bounds(reader, upto_seq)
        start = reader.offset_of(after_seq + 1, end) if after_seq > 0 else 0
        newer = _of_types(reader.forward(start, end, above=after_seq), types)
        found = list(itertools.islice(newer, limit + 1))
        older = _of_types(reader.backward(start, after_seq + 1), types)
        return _page(found[:limit], last_seq, more_older=next(older, None) is not None,
                     more_newer=len(found) > limit)
