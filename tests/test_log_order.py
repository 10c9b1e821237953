"""``classify_blocks`` decides each line of a log as ``in_order`` does from the whole file (the
event lines two on each side, a bad line never kept), whatever blocks the lines come in, from
any starting line, in either reading direction. The readers take lines a block at a time and
decide a block whose seqs go strictly up without a call per line: these are the cases that
shortcut has to agree with."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from hive_server.core.eventlog_lines import Line, classify, classify_blocks, in_order, nearest_seqs


def reference(seqs: list[int]) -> list[bool]:
    """Whether each line (in file order; seq 0: a bad line) is kept, from the whole file."""
    events = [index for index, seq in enumerate(seqs) if seq]
    kept = [False] * len(seqs)

    def seq_at(k: int) -> int | None:
        return seqs[events[k]] if 0 <= k < len(events) else None

    for k, index in enumerate(events):
        kept[index] = in_order(seq_at(k - 2), seq_at(k - 1), seqs[index], seq_at(k + 1),
                               seq_at(k + 2))
    return kept


@st.composite
def logs(draw: st.DrawFn) -> list[int]:
    """Mostly ascending seqs (long runs take the shortcut) with duplicates, strays, gaps and
    bad lines put in."""
    seqs = list(range(1, draw(st.integers(0, 40)) + 1))
    edits = draw(st.lists(st.tuples(st.integers(0, 40), st.sampled_from(
        ["bad", "dup", "stray", "drop"]), st.integers(1, 60)), max_size=6))
    for position, kind, value in edits:
        at = min(position, len(seqs))
        if kind == "bad":
            seqs.insert(at, 0)
        elif kind == "dup" and seqs:
            seqs.insert(at, seqs[min(at, len(seqs) - 1)])
        elif kind == "stray":
            seqs.insert(at, value)
        elif kind == "drop" and at < len(seqs):
            del seqs[at]
    return seqs


def cut(lines: list[Line], sizes: list[int]) -> list[list[Line]]:
    """``lines`` in consecutive blocks of the given sizes (the rest in one last block)."""
    blocks, start = [], 0
    for size in sizes:
        blocks.append(lines[start:start + size])
        start += size
    return [*blocks, lines[start:]]


@settings(max_examples=300, derandomize=True, database=None)
@given(seqs=logs(), first=st.integers(0, 50), backward=st.booleans(),
       sizes=st.lists(st.integers(0, 12), max_size=8))
def test_blocks_decide_every_line_as_the_whole_file_would(seqs, first, backward, sizes):
    expected = reference(seqs)
    lines = [Line(index, b"", seq) for index, seq in enumerate(seqs)]
    if backward:  # read from line ``first`` (exclusive) down to the start
        end = min(first, len(lines))
        before, reading = lines[end:], lines[:end][::-1]
    else:  # read from line ``first`` up to the end
        start = min(first, len(lines))
        before, reading = lines[:start][::-1], lines[start:]
    behind = nearest_seqs(before)  # nearest first, in reading order

    decided = []
    for block_lines, kept in classify_blocks(cut(reading, sizes), behind, backward=backward):
        decided += zip(block_lines, kept or itertools.repeat(True), strict=False)

    assert [line.start for line, _ in decided] == [line.start for line in reading]
    assert [ok for _, ok in decided] == [expected[line.start] for line in reading]
    assert list(classify(reading, behind, backward=backward)) == decided
