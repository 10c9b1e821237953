"""Schedule math for timer triggers: pure functions of a ``TimerConfig`` and epoch seconds.

Interval timers tick on a fixed lattice ``anchor + k * interval`` (k any integer): the anchor
only fixes the phase, and every tick is computed from it, never from "now + interval", so
ticks never drift however late a fire runs.

Cron timers are evaluated with croniter on time-zone-aware datetimes in the trigger's zone.
Daylight-saving rules (as in Vixie cron):

* Spring forward: a wall time that does not exist (``30 2 * * *`` in Europe/Berlin on
  2026-03-29) fires once, at the first instant after the gap (03:00 local) — croniter's
  behaviour, kept on purpose so a daily job is never lost.
* Fall back: a wall time that happens twice fires only at its first occurrence, so a daily
  job runs exactly once. Jobs whose minute or hour field starts with ``*`` (``*/15 * * * *``,
  ``0 * * * *``) are "elapsed-time" jobs and keep firing through the repeated hour.
* A fixed local time (``0 9 * * *``) stays at 09:00 local, so consecutive fires are 23 h or
  25 h apart in UTC across a change.

The croniter objects are cached per (expression, zone) and guarded by a lock, so the functions
are safe to call from threads.
"""

from __future__ import annotations

import math
import threading
from datetime import datetime, timedelta
from functools import lru_cache
from typing import NamedTuple
from zoneinfo import ZoneInfo

from croniter import croniter

from hive_server.models.triggers import TimerConfig, cron_fields

_CRON_LOCK = threading.Lock()
FOLD_REACH = 3 * 3600  # seconds before a tick where a repeated wall time is looked for
_MAX_CRON_SKIPS = 512
"""Repeated-hour matches skipped in a row before giving up (an hour holds at most 60)."""


class MissedTicks(NamedTuple):
    """Ticks in ``(last_tick, now]``. For cron, ``count`` saturates at the cap."""

    count: int
    first: float | None
    last: float | None


def next_fire(cfg: TimerConfig, after: float, anchor: float | None = None) -> float:
    """The first tick strictly after ``after``. ``anchor`` (interval only) defaults to ``after``."""
    _require_finite(after)
    period = cfg.interval_seconds
    if period is not None:
        base = after if anchor is None else anchor
        return _lattice(base, period, _first_index_after(base, period, after))
    return _cron_next(cfg, after)


def missed_ticks(
    cfg: TimerConfig,
    last_tick: float,
    now: float,
    anchor: float | None = None,
    cap: int = 1000,
) -> MissedTicks:
    """The ticks in ``(last_tick, now]`` with bounded work.

    Interval: exact, computed arithmetically (``anchor`` defaults to ``last_tick``).
    Cron: iterated up to ``cap`` ticks; beyond that ``count == cap`` and ``last`` is still
    exact (found by bisection).
    """
    _require_finite(last_tick)
    _require_finite(now)
    if now <= last_tick:
        return MissedTicks(0, None, None)
    period = cfg.interval_seconds
    if period is not None:
        base = last_tick if anchor is None else anchor
        first_k = _first_index_after(base, period, last_tick)
        last_k = _first_index_after(base, period, now) - 1
        if last_k < first_k:
            return MissedTicks(0, None, None)
        first, last = _lattice(base, period, first_k), _lattice(base, period, last_k)
        return MissedTicks(last_k - first_k + 1, first, last)
    return _cron_missed(cfg, last_tick, now, max(1, cap))


def _require_finite(value: float) -> None:
    if not math.isfinite(value):
        raise ValueError(f"time must be finite, got {value!r}")


def _lattice(anchor: float, period: float, k: int) -> float:
    return anchor + k * period


def _first_index_after(anchor: float, period: float, after: float) -> int:
    """Smallest k with ``anchor + k * period > after`` (robust to float rounding)."""
    k = math.floor((after - anchor) / period) + 1
    while _lattice(anchor, period, k) <= after:
        k += 1
    while _lattice(anchor, period, k - 1) > after:
        k -= 1
    return k


@lru_cache(maxsize=4096)
def _cron_iter(expr: str, zone_name: str) -> croniter:
    return croniter(expr, datetime.now(ZoneInfo(zone_name)))


@lru_cache(maxsize=4096)
def _is_elapsed_time_job(expr: str) -> bool:
    minute, hour = cron_fields(expr)[:2]
    return minute.startswith("*") or hour.startswith("*")


def _cron_next(cfg: TimerConfig, after: float) -> float:
    expr = cfg.cron
    if expr is None:
        raise ValueError("not a cron timer")
    zone = cfg.zone
    it = _cron_iter(expr, cfg.timezone)
    keep_repeats = _is_elapsed_time_job(expr)
    start = datetime.fromtimestamp(after, zone)
    for _ in range(_MAX_CRON_SKIPS):
        with _CRON_LOCK:
            ts = float(it.get_next(float, start_time=start))
        local = datetime.fromtimestamp(ts, zone)
        if ts > after and keep_repeats:
            return _repeat_before(expr, zone, after, ts)
        if ts > after and local.fold == 0:
            return ts
        # Skip a repeated wall time; should croniter ever not advance, step a minute ourselves.
        start = local if ts > start.timestamp() else start + timedelta(minutes=1)
    raise ValueError(f"cron {expr!r} yields no usable time after {after}")


def _repeat_before(expr: str, zone: ZoneInfo, after: float, ts: float) -> float:
    """``ts``, or an earlier tick croniter skipped: an elapsed-time job fires through a
    repeated wall time, but croniter leaves out the repeat of a change that is not a whole hour
    (Australia/Lord_Howe goes back 30 minutes). When the clocks went back between ``after``
    (or up to ``FOLD_REACH`` before it) and ``ts``, the first minute of the repeated span after
    ``after`` that is on the schedule, if any, comes first."""
    earlier = datetime.fromtimestamp(after - FOLD_REACH, zone).utcoffset()
    later = datetime.fromtimestamp(ts, zone).utcoffset()
    if earlier is None or later is None or later >= earlier:
        return ts
    change = _offset_change(zone, math.floor(after - FOLD_REACH), math.ceil(ts))
    repeat_end = min(ts, change + (earlier - later).total_seconds())
    minute = max(change, (math.floor(after) // 60 + 1) * 60)
    minute = -(-minute // 60) * 60  # ticks fall on whole minutes
    while minute < repeat_end:
        if croniter.match(expr, datetime.fromtimestamp(minute, zone)):
            return float(minute)
        minute += 60
    return ts


def _offset_change(zone: ZoneInfo, lo: int, hi: int) -> int:
    """The first whole second in ``(lo, hi]`` whose UTC offset is ``hi``'s (one change)."""
    target = datetime.fromtimestamp(hi, zone).utcoffset()
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, zone).utcoffset() == target:
            hi = mid
        else:
            lo = mid
    return hi


def _cron_missed(cfg: TimerConfig, last_tick: float, now: float, cap: int) -> MissedTicks:
    first = _cron_next(cfg, last_tick)
    if first > now:
        return MissedTicks(0, None, None)
    count, last = 1, first
    while count < cap:
        following = _cron_next(cfg, last)
        if following > now:
            return MissedTicks(count, first, last)
        count, last = count + 1, following
    return MissedTicks(count, first, _cron_last_until(cfg, last, now))


def _cron_last_until(cfg: TimerConfig, known: float, now: float) -> float:
    """The last cron tick <= ``now``, given a tick ``known`` <= now, by bisection.

    Cron ticks fall on whole seconds, so bisecting integer start points converges on the
    largest ``lo`` whose next tick is still <= now; that next tick is the answer.
    """
    lo, hi = math.floor(known) - 1, math.ceil(now)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _cron_next(cfg, mid) <= now:
            lo = mid
        else:
            hi = mid
    return _cron_next(cfg, lo)
