"""A session's accounting (turns, tool calls, tokens, cost, LLM latency, workers, trigger
fires), derived from its events only.

- Live: ``LiveAccounting`` is fed every event the session emits (``SessionJournal.emit``) and starts
  from the totals ``meta.json`` held (``usage``, counted through ``through_seq``). When a
  previous run logged events after that seq (a crash before its meta was written, or a meta
  from before ``usage`` existed), the first read counts that gap from the log, once.
- Stored: ``SessionJournal`` writes ``persisted()`` into ``meta.json`` with every meta write, so a
  cold session and ``GET /api/usage`` read totals without reading logs.
- Cold: the meta's totals when they reach the log's last seq; otherwise the rest is counted by
  streaming the log from the stored seq (``LogScan``: only the lines of the counted types are
  parsed; bad lines skipped and logged), cached by the log's size and mtime.

Latencies go into histograms with buckets ``HISTOGRAM_BASE`` wide in ratio (5%), so totals
add up exactly across sessions and a percentile is the upper edge of the bucket holding its
rank, clamped to the exact minimum and maximum.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

import orjson
from pydantic import ValidationError

from hive_server.core.eventlog import EventLog
from hive_server.core.eventlog_lines import Line
from hive_server.core.eventlog_reader import last_seq_file
from hive_server.core.log_scan import LogScan
from hive_server.llm.base import Usage
from hive_server.llm.pricing import cost_usd
from hive_server.models.agent_views import WorkerStats
from hive_server.models.event_data import LlmTurnComplete, ToolCallCompleted, parse_data
from hive_server.models.events import Event, EventType
from hive_server.models.usage import (
    Histogram,
    Percentiles,
    TokenCounts,
    UsageTotals,
    UsageView,
)

log = logging.getLogger(__name__)
HISTOGRAM_BASE = 1.05
COLD_CACHE_MAX = 4096
Data = dict[str, Any]


# -- counting events ------------------------------------------------------------------------------
def _turn(totals: UsageTotals, data: Data) -> None:
    turn = parse_data(LlmTurnComplete, data)
    totals.turns += 1
    totals.input_tokens += turn.input_tokens
    totals.output_tokens += turn.output_tokens
    totals.cache_read_tokens += turn.cached_tokens
    totals.cache_write_tokens += turn.cache_creation_tokens
    cost = turn.cost_usd
    if cost is None:  # a log from before cost_usd, or a model without a price
        cost = cost_usd(turn.model, Usage(turn.input_tokens, turn.output_tokens,
                                          turn.cached_tokens, turn.cache_creation_tokens))
    if cost is None:
        totals.unpriced_turns += 1
    else:
        totals.cost_usd = round(totals.cost_usd + cost, 8)
    _record(totals.latency, turn.latency_ms)
    _record(totals.ttft, turn.ttft_ms)


def _tool_done(totals: UsageTotals, data: Data) -> None:
    if parse_data(ToolCallCompleted, data).is_error:
        totals.tool_errors += 1


def _fired(totals: UsageTotals, data: Data) -> None:
    trigger_id = data.get("trigger_id")
    if isinstance(trigger_id, str):
        totals.trigger_fires[trigger_id] = totals.trigger_fires.get(trigger_id, 0) + 1


def _counter(field: str) -> Callable[[UsageTotals, Data], None]:
    def count(totals: UsageTotals, data: Data) -> None:
        setattr(totals, field, getattr(totals, field) + 1)
    return count


COUNTED: dict[str, Callable[[UsageTotals, Data], None]] = {
    EventType.LLM_TURN_COMPLETE: _turn,
    EventType.TOOL_CALL_STARTED: _counter("tool_calls"),
    EventType.TOOL_CALL_COMPLETED: _tool_done,
    EventType.WORKER_STARTED: _counter("workers_started"),
    EventType.WORKER_COMPLETED: _counter("workers_completed"),
    EventType.WORKER_FAILED: _counter("workers_failed"),
    EventType.TRIGGER_FIRED: _fired,
}


def count_event(totals: UsageTotals, seq: int, kind: str, data: Data) -> None:
    """Add one event to ``totals`` (a payload that does not fit its model is not counted)."""
    handler = COUNTED.get(kind)
    if handler is not None:
        try:
            handler(totals, data)
        except ValidationError:
            log.warning("event %d (%s): payload not counted (does not fit its model)", seq, kind)
    totals.through_seq = max(totals.through_seq, seq)


# -- histograms -----------------------------------------------------------------------------------
def _record(hist: Histogram, value: float | None) -> None:
    if value is None or value < 0 or not math.isfinite(value):
        return
    index = 0 if value <= 1 else math.ceil(math.log(value, HISTOGRAM_BASE) - 1e-9)
    hist.buckets[index] = hist.buckets.get(index, 0) + 1
    hist.count += 1
    hist.min_ms = value if hist.min_ms is None else min(hist.min_ms, value)
    hist.max_ms = value if hist.max_ms is None else max(hist.max_ms, value)


def _merge_hists(hists: list[Histogram]) -> Histogram:
    buckets: dict[int, int] = {}
    for hist in hists:
        for index, count in hist.buckets.items():
            buckets[index] = buckets.get(index, 0) + count
    lows = [hist.min_ms for hist in hists if hist.min_ms is not None]
    highs = [hist.max_ms for hist in hists if hist.max_ms is not None]
    return Histogram(buckets=buckets, count=sum(hist.count for hist in hists),
                     min_ms=min(lows, default=None), max_ms=max(highs, default=None))


def percentile(hist: Histogram, q: float) -> float | None:
    """The ``q`` quantile (0..1): the upper edge of the bucket holding its rank, clamped to
    the exact extremes; None for an empty histogram."""
    if hist.count == 0 or hist.min_ms is None or hist.max_ms is None:
        return None
    rank, seen = max(1, math.ceil(q * hist.count)), 0
    for index in sorted(hist.buckets):
        seen += hist.buckets[index]
        if seen >= rank:
            edge = HISTOGRAM_BASE ** index if index else 1.0
            return round(min(max(edge, hist.min_ms), hist.max_ms), 3)
    return round(hist.max_ms, 3)


# -- sums -----------------------------------------------------------------------------------------
_SUMMED = ("turns", "tool_calls", "tool_errors", "input_tokens", "output_tokens",
           "cache_read_tokens", "cache_write_tokens", "unpriced_turns", "workers_started",
           "workers_completed", "workers_failed")


def merge(parts: Iterable[UsageTotals]) -> UsageTotals:
    """The sum of several totals (``through_seq``: the highest). Built in one go, not field
    by field: every meta write of a live session merges its totals (10,000 at a shutdown)."""
    parts = list(parts)
    cost, fires = 0.0, {}
    for part in parts:
        cost = round(cost + part.cost_usd, 8)
        for trigger_id, count in part.trigger_fires.items():
            fires[trigger_id] = fires.get(trigger_id, 0) + count
    sums = {name: sum(getattr(part, name) for part in parts) for name in _SUMMED}
    return UsageTotals(**sums, cost_usd=cost, trigger_fires=fires,
                       latency=_merge_hists([part.latency for part in parts]),
                       ttft=_merge_hists([part.ttft for part in parts]),
                       through_seq=max([0, *(part.through_seq for part in parts)]))


def usage_view(totals: UsageTotals) -> UsageView:
    ended = totals.workers_completed + totals.workers_failed
    return UsageView(
        turns=totals.turns, tool_calls=totals.tool_calls, tool_errors=totals.tool_errors,
        tokens=TokenCounts(input=totals.input_tokens, output=totals.output_tokens,
                           cache_read=totals.cache_read_tokens,
                           cache_write=totals.cache_write_tokens),
        cost_usd=round(totals.cost_usd, 6), unpriced_turns=totals.unpriced_turns,
        llm_latency_ms=_percentiles(totals.latency), ttft_ms=_percentiles(totals.ttft),
        workers=WorkerStats(started=totals.workers_started, completed=totals.workers_completed,
                            failed=totals.workers_failed,
                            running=max(0, totals.workers_started - ended)),
        trigger_fires=dict(sorted(totals.trigger_fires.items())))


def _percentiles(hist: Histogram) -> Percentiles:
    return Percentiles(count=hist.count, p50=percentile(hist, 0.5), p95=percentile(hist, 0.95))


# -- from the log ---------------------------------------------------------------------------------
def scan_totals(path: Path, after_seq: int, upto_seq: int,
                base: UsageTotals | None = None) -> UsageTotals:
    """``base`` plus the events of ``path`` with ``after_seq < seq <= upto_seq``, streaming
    the file (blocking: run it in a thread). Lines out of seq order are skipped."""
    totals = base.model_copy(deep=True) if base is not None else UsageTotals()
    scan, last = LogScan(COUNTED), after_seq
    if path.exists():
        for offset, line in scan.lines(path):
            try:
                event = orjson.loads(line)
                seq, kind, data = event["seq"], event["type"], event.get("data") or {}
            except (orjson.JSONDecodeError, KeyError, TypeError):
                scan.mark_bad(offset, line)
                continue
            if type(seq) is int and last < seq <= upto_seq and isinstance(data, dict):
                last = seq
                count_event(totals, seq, kind, data)
    if scan.bad:
        log.warning("event log %s: %d bad lines skipped while counting usage", path,
                    len(scan.bad))
    totals.through_seq = max(totals.through_seq, upto_seq)
    return totals


class LiveAccounting:
    """The running totals of a live session (see the module docstring)."""

    def __init__(self, stored: UsageTotals | None) -> None:
        self.stored = stored
        # never changed in place (``scan_totals`` sums into a copy): no copy needed here
        self.base = stored if stored is not None else UsageTotals()
        self.live = UsageTotals()
        self.first_seq: int | None = None
        self._lock = asyncio.Lock()

    def observe(self, event: Event) -> None:
        if self.first_seq is None:
            self.first_seq = event.seq
        count_event(self.live, event.seq, event.type, event.data)

    @property
    def gap(self) -> tuple[int, int] | None:
        """Seqs ``(after, upto)`` logged by an earlier run and not counted yet."""
        if self.first_seq is None or self.first_seq <= self.base.through_seq + 1:
            return None
        return self.base.through_seq, self.first_seq - 1

    def persisted(self) -> UsageTotals | None:
        """What ``meta.json`` should hold now: the stored totals while a gap is not counted."""
        if self.gap is not None:
            return self.stored
        return merge((self.base, self.live))

    async def totals(self, log: GapSource) -> UsageTotals:
        """The totals now; the gap (if any) counted first, once, from ``log``
        (``gap_source``)."""
        async with self._lock:
            if (gap := self.gap) is not None:
                if isinstance(log, Path):
                    self.base = await asyncio.to_thread(scan_totals, log, *gap, self.base)
                else:
                    self.base = await _count_log(log, *gap, self.base)
        return merge((self.base, self.live))


class LineReader(Protocol):
    """A log that reads its own lines (the Redis backend's stream)."""

    def iter_lines_after(self, after_seq: int,
                         chunk: int = 1000) -> AsyncIterator[list[Line]]: ...


GapSource = Path | LineReader


def gap_source(log: LineReader, directory: Path) -> GapSource:
    """Where a live session's uncounted gap is read: its ``events.jsonl`` for the file log
    (streamed in a thread, only the counted types parsed), else the log's own lines (on
    Redis, the stream: the session may have been run by another node before)."""
    return directory / "events.jsonl" if isinstance(log, EventLog) else log


def count_lines(totals: UsageTotals, lines: Iterable[Line], upto_seq: int) -> None:
    """Add the counted events of ``lines`` (ascending) with seq <= ``upto_seq`` to
    ``totals``."""
    for line in lines:
        if line.seq <= upto_seq and line.type in COUNTED:
            data = (line.fields or {}).get("data")  # parsed here: only the counted types
            if isinstance(data, dict):
                count_event(totals, line.seq, line.type, data)


async def _count_log(log: LineReader, after_seq: int, upto_seq: int,
                     base: UsageTotals) -> UsageTotals:
    """``scan_totals`` over a log's own lines."""
    totals = base.model_copy(deep=True)
    async for lines in log.iter_lines_after(after_seq):
        count_lines(totals, lines, upto_seq)
        if lines[-1].seq >= upto_seq:
            break
    totals.through_seq = max(totals.through_seq, upto_seq)
    return totals


class ColdTotals:
    """Totals of sessions that are not live, from ``meta.json`` or, past its totals, the log."""

    def __init__(self) -> None:
        self._cache: dict[Path, tuple[tuple[int, int, int], UsageTotals]] = {}

    def totals(self, folder: Path, stored: UsageTotals | None) -> UsageTotals:
        """(Blocking.) Reads only the log's tail when the stored totals are complete."""
        path = folder / "events.jsonl"
        last = last_seq_file(path)
        if stored is not None and stored.through_seq >= last:
            return stored
        try:
            stat = path.stat()
        except FileNotFoundError:
            return stored or UsageTotals()
        key = (stat.st_size, stat.st_mtime_ns, stored.through_seq if stored else 0)
        cached = self._cache.get(path)
        if cached is not None and cached[0] == key:
            return cached[1]
        found = scan_totals(path, key[2], last, stored)
        if len(self._cache) >= COLD_CACHE_MAX:
            self._cache.pop(next(iter(self._cache)))
        self._cache[path] = (key, found)
        return found
