"""Schedule math: cron in a zone across DST changes, interval lattice, missed ticks."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from hive_server.models.triggers import TimerConfig
from hive_server.services.triggers.schedule import MissedTicks, missed_ticks, next_fire


def local_ts(zone: str, text: str, fold: int = 0) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone), fold=fold).timestamp()


def fires(cfg: TimerConfig, start: float, end: float) -> list[float]:
    out, t = [], next_fire(cfg, start)
    while t <= end:
        out.append(t)
        t = next_fire(cfg, t)
    return out


def field_values(field: str, top: int) -> set[int]:
    """The values a cron minute or hour field (``*``, ``a-b``, ``*/n``, ``a,b``) matches: the
    year test's own oracle (croniter's ``match`` was most of its time; the test's expressions
    leave the day fields ``*``)."""
    out: set[int] = set()
    for part in field.split(","):
        span, _, step = part.partition("/")
        low, _, high = span.partition("-")
        first, last = (0, top - 1) if span == "*" else (int(low), int(high or low))
        out.update(range(first, last + 1, int(step or 1)))
    return out


def as_local(ts: float, zone: str) -> str:
    return datetime.fromtimestamp(ts, ZoneInfo(zone)).isoformat()


def test_cron_is_evaluated_in_the_trigger_zone() -> None:
    cfg = TimerConfig(cron="0 9 * * *", timezone="Asia/Tokyo")
    t = next_fire(cfg, datetime(2026, 5, 1, 12, 0, tzinfo=UTC).timestamp())
    assert datetime.fromtimestamp(t, UTC) == datetime(2026, 5, 2, 0, 0, tzinfo=UTC)


def test_cron_next_is_strictly_after_even_on_a_match_or_a_fraction() -> None:
    cfg = TimerConfig(cron="* * * * *")
    base = datetime(2026, 5, 1, 12, 0, tzinfo=UTC).timestamp()
    assert next_fire(cfg, base) == base + 60
    assert next_fire(cfg, base - 0.25) == base
    assert next_fire(cfg, base + 0.5) == base + 60


@pytest.mark.parametrize(
    "zone,day,expected_local",
    [
        # Spring forward: 02:30 does not exist; croniter fires once at the first instant after
        # the gap (03:00 local), and we keep that so a daily job is never lost.
        ("Europe/Berlin", "2026-03-29", "2026-03-29T03:00:00+02:00"),
        ("America/New_York", "2026-03-08", "2026-03-08T03:00:00-04:00"),
    ],
)
def test_spring_forward_fires_a_missing_wall_time_once_after_the_gap(
    zone: str, day: str, expected_local: str
) -> None:
    cfg = TimerConfig(cron="30 2 * * *", timezone=zone)
    got = fires(cfg, local_ts(zone, f"{day}T00:00:00"), local_ts(zone, f"{day}T23:59:59"))
    assert [as_local(t, zone) for t in got] == [expected_local]


@pytest.mark.parametrize(
    "zone,day,expr,expected_local",
    [
        ("Europe/Berlin", "2026-10-25", "30 2 * * *", "2026-10-25T02:30:00+02:00"),
        ("America/New_York", "2026-11-01", "30 1 * * *", "2026-11-01T01:30:00-04:00"),
    ],
)
def test_fall_back_fires_a_repeated_wall_time_exactly_once(
    zone: str, day: str, expr: str, expected_local: str
) -> None:
    cfg = TimerConfig(cron=expr, timezone=zone)
    got = fires(cfg, local_ts(zone, f"{day}T00:00:00"), local_ts(zone, f"{day}T23:59:59"))
    assert [as_local(t, zone) for t in got] == [expected_local]


@pytest.mark.parametrize(
    "zone,before,after,hours",
    [
        ("Europe/Berlin", "2026-03-28", "2026-03-29", 23),
        ("Europe/Berlin", "2026-10-24", "2026-10-25", 25),
        ("America/New_York", "2026-03-07", "2026-03-08", 23),
        ("America/New_York", "2026-10-31", "2026-11-01", 25),
    ],
)
def test_a_fixed_local_time_stays_put_across_a_change(
    zone: str, before: str, after: str, hours: int
) -> None:
    cfg = TimerConfig(cron="0 9 * * *", timezone=zone)
    first = next_fire(cfg, local_ts(zone, f"{before}T08:00:00"))
    second = next_fire(cfg, first)
    assert as_local(first, zone).startswith(f"{before}T09:00:00")
    assert as_local(second, zone).startswith(f"{after}T09:00:00")
    assert second - first == hours * 3600


def test_elapsed_time_jobs_keep_running_through_the_repeated_hour() -> None:
    zone = "Europe/Berlin"
    cfg = TimerConfig(cron="*/30 * * * *", timezone=zone)
    got = fires(cfg, local_ts(zone, "2026-10-25T01:45:00"), local_ts(zone, "2026-10-25T03:00:00"))
    assert [as_local(t, zone) for t in got] == [
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:30:00+02:00",
        "2026-10-25T02:00:00+01:00",
        "2026-10-25T02:30:00+01:00",
        "2026-10-25T03:00:00+01:00",
    ]
    assert {b - a for a, b in itertools.pairwise(got)} == {1800.0}


def test_fixed_time_job_does_not_rerun_any_minute_of_the_repeated_hour() -> None:
    zone = "Europe/Berlin"
    cfg = TimerConfig(cron="15,45 2 * * *", timezone=zone)
    got = fires(cfg, local_ts(zone, "2026-10-25T00:00:00"), local_ts(zone, "2026-10-26T00:00:00"))
    assert [as_local(t, zone) for t in got] == [
        "2026-10-25T02:15:00+02:00",
        "2026-10-25T02:45:00+02:00",
    ]


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe"])
@pytest.mark.parametrize("expr", ["0 9 * * *", "30 2 * * *", "*/20 1-3 * * *", "5 1-3 * * *"])
def test_cron_ticks_over_a_year_increase_and_match_local_wall_time(zone: str, expr: str) -> None:
    assert expr.split()[2:] == ["*", "*", "*"]  # what field_values covers
    cfg = TimerConfig(cron=expr, timezone=zone)
    start = datetime(2026, 1, 1, tzinfo=ZoneInfo(zone)).timestamp()
    got = fires(cfg, start, start + 366 * 86400)
    assert all(b > a for a, b in itertools.pairwise(got))
    tz = ZoneInfo(zone)
    minute, hour = expr.split()[:2]
    minutes, hours = field_values(minute, 60), field_values(hour, 24)
    off_grid = [t for t in got if (datetime.fromtimestamp(t, tz).minute not in minutes
                                   or datetime.fromtimestamp(t, tz).hour not in hours)]
    # Only wall times pushed out of a spring-forward gap may fall off the expression's grid.
    for t in off_grid:
        before = datetime.fromtimestamp(t - 1, tz)
        assert before.utcoffset() != datetime.fromtimestamp(t, tz).utcoffset()


def test_daily_job_fires_exactly_once_per_local_day_for_a_year() -> None:
    zone = "America/New_York"
    for expr in ["30 2 * * *", "30 1 * * *", "0 9 * * *"]:
        cfg = TimerConfig(cron=expr, timezone=zone)
        start = local_ts(zone, "2026-01-01T00:00:00")
        got = fires(cfg, start, local_ts(zone, "2026-12-31T23:59:59"))
        days = [datetime.fromtimestamp(t, ZoneInfo(zone)).date() for t in got]
        assert len(days) == len(set(days)) == 365


def test_interval_ticks_sit_on_the_anchor_lattice_without_drift() -> None:
    cfg = TimerConfig(interval_minutes=0.7)  # 42 s, not a binary fraction
    anchor = 1_800_000_000.123
    t, ticks = anchor, []
    for _ in range(1000):
        t = next_fire(cfg, t + 3.0 * (len(ticks) % 3 == 0), anchor)  # some fires run late
        ticks.append(t)
    assert ticks == [anchor + k * 42.0 for k in range(1, 1001)]


def test_interval_next_is_computed_from_the_anchor_not_from_now() -> None:
    cfg = TimerConfig(interval_minutes=10)
    anchor = 1_800_000_000.0
    assert next_fire(cfg, anchor + 1234.5, anchor) == anchor + 1800
    assert next_fire(cfg, anchor + 1800, anchor) == anchor + 2400
    assert next_fire(cfg, anchor - 1, anchor) == anchor
    assert next_fire(cfg, anchor + 7.0) == anchor + 607.0  # no anchor: from `after`


def test_non_finite_times_are_refused() -> None:
    with pytest.raises(ValueError, match="finite"):
        next_fire(TimerConfig(interval_minutes=1), float("nan"), 0.0)


def test_missed_interval_ticks_are_counted_arithmetically() -> None:
    cfg = TimerConfig(interval_minutes=1 / 60)
    anchor = 1_800_000_000.0
    month = 30 * 86400
    got = missed_ticks(cfg, anchor + 5, anchor + 5 + month + 0.5, anchor)
    assert got == MissedTicks(month, anchor + 6, anchor + 5 + month)
    assert missed_ticks(cfg, anchor + 5, anchor + 5.9, anchor) == MissedTicks(0, None, None)
    assert missed_ticks(cfg, anchor + 5, anchor + 6, anchor) == MissedTicks(1, anchor + 6,
                                                                            anchor + 6)
    assert missed_ticks(cfg, anchor + 9, anchor + 3, anchor) == MissedTicks(0, None, None)


def test_missed_cron_ticks_agree_with_iteration() -> None:
    zone = "Europe/Berlin"
    cfg = TimerConfig(cron="0 */6 * * *", timezone=zone)
    last = local_ts(zone, "2026-10-20T06:00:00")
    now = local_ts(zone, "2026-10-27T13:00:00")
    expected = fires(cfg, last, now)
    assert missed_ticks(cfg, last, now) == MissedTicks(len(expected), expected[0], expected[-1])


def test_missed_cron_ticks_are_capped_but_last_stays_exact() -> None:
    cfg = TimerConfig(cron="* * * * *")
    last = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    now = last + 30 * 86400 + 59  # 43,200 ticks missed
    got = missed_ticks(cfg, last, now, cap=100)
    assert got == MissedTicks(100, last + 60, last + 30 * 86400)


def test_capped_last_is_exact_for_a_bursty_cron_in_a_zone() -> None:
    zone = "America/New_York"
    cfg = TimerConfig(cron="* 9 * * 1", timezone=zone)  # 60 ticks every Monday morning
    last = local_ts(zone, "2026-01-05T08:00:00")
    now = local_ts(zone, "2026-03-12T12:00:00")
    got = missed_ticks(cfg, last, now, cap=7)
    assert got.count == 7
    assert got.last == local_ts(zone, "2026-03-09T09:59:00")
