"""The timer scheduler on a fake clock: firing, disarm/rearm, misfire policies, failures."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from hive_server.core.clock import FakeClock
from hive_server.errors import Conflict, NotFound, Unavailable
from hive_server.models.triggers import TimerConfig
from hive_server.services.triggers.scheduler import (
    MISSED_CAP,
    FireInfo,
    MissedInfo,
    TriggerScheduler,
)

START = 1_800_000_000.0
EVERY_MINUTE = TimerConfig(interval_minutes=1)


class Recorder:
    """Collects callback calls; can be told to fail or to take (fake) time."""

    def __init__(self, clock: FakeClock, *, fail: bool = False, work_seconds: float = 0.0):
        self.clock = clock
        self.fail = fail
        self.work_seconds = work_seconds
        self.fires: list[FireInfo] = []
        self.fired_at: list[float] = []  # the clock when each fire was dispatched
        self.missed: list[MissedInfo] = []
        self.running = 0
        self.max_running = 0

    async def on_fire(self, info: FireInfo) -> None:
        self.fires.append(info)
        self.fired_at.append(self.clock.time())
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        try:
            if self.work_seconds:
                await self.clock.sleep_until(self.clock.time() + self.work_seconds)
            if self.fail:
                raise RuntimeError("callback exploded")
        finally:
            self.running -= 1

    async def on_missed(self, info: MissedInfo) -> None:
        self.missed.append(info)

    @property
    def ticks(self) -> list[float]:
        return [f.tick for f in self.fires]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
async def scheduler(clock: FakeClock) -> AsyncIterator[TriggerScheduler]:
    sched = TriggerScheduler(clock)
    yield sched
    await sched.close()


def arm(sched: TriggerScheduler, rec: Recorder, key: str = "s1/t1",
        cfg: TimerConfig = EVERY_MINUTE, anchor: float = START,
        last_tick: float | None = None) -> float:
    return sched.arm(key, cfg, anchor=anchor, last_tick=last_tick, on_fire=rec.on_fire,
                     on_missed=rec.on_missed)


async def test_interval_timer_fires_on_the_anchor_lattice(
    clock: FakeClock, scheduler: TriggerScheduler
) -> None:
    rec = Recorder(clock)
    assert arm(scheduler, rec, anchor=START - 30) == START + 30
    assert scheduler.next_fire_at("s1/t1") == START + 30
    await clock.advance(600)
    assert rec.ticks == [START + 30 + 60 * k for k in range(10)]
    assert rec.fired_at == rec.ticks and all(f.missed == 0 for f in rec.fires)
    assert scheduler.next_fire_at("s1/t1") == START + 630
    assert rec.missed == []


async def test_cron_timer_fires_at_local_wall_time_across_dst(clock: FakeClock) -> None:
    zone = ZoneInfo("Europe/Berlin")
    start = datetime(2026, 3, 27, 12, 0, tzinfo=zone).timestamp()
    clock = FakeClock(start)
    sched = TriggerScheduler(clock)
    rec = Recorder(clock)
    arm(sched, rec, cfg=TimerConfig(cron="0 9 * * *", timezone="Europe/Berlin"), anchor=start)
    await clock.advance(4 * 86400)
    await sched.close()
    local = [datetime.fromtimestamp(t, zone).isoformat() for t in rec.ticks]
    assert local == [
        "2026-03-28T09:00:00+01:00",
        "2026-03-29T09:00:00+02:00",
        "2026-03-30T09:00:00+02:00",
        "2026-03-31T09:00:00+02:00",
    ]


async def test_disarm_stops_firing_and_releases_the_sleeper(
    clock: FakeClock, scheduler: TriggerScheduler
) -> None:
    rec = Recorder(clock)
    arm(scheduler, rec)
    await clock.advance(120)
    assert len(rec.fires) == 2 and len(scheduler) == 1 and clock.pending == 1
    assert await scheduler.disarm("s1/t1") is True
    assert await scheduler.disarm("s1/t1") is False
    await clock.advance(3600)
    assert len(rec.fires) == 2
    assert len(scheduler) == 0 and scheduler.armed_keys == frozenset()
    assert scheduler.next_fire_at("s1/t1") is None
    assert clock.pending == 0


async def test_arming_a_key_twice_is_a_conflict(clock: FakeClock,
                                                scheduler: TriggerScheduler) -> None:
    rec = Recorder(clock)
    arm(scheduler, rec)
    with pytest.raises(Conflict):
        arm(scheduler, rec)
    assert scheduler.armed_keys == frozenset({"s1/t1"})


async def test_rearm_swaps_the_config_and_keeps_callbacks(
    clock: FakeClock, scheduler: TriggerScheduler
) -> None:
    rec = Recorder(clock)
    arm(scheduler, rec, cfg=TimerConfig(interval_minutes=10))
    await clock.advance(600)
    assert rec.ticks == [START + 600]
    nxt = await scheduler.rearm("s1/t1", TimerConfig(interval_minutes=1))
    assert nxt == START + 660 == scheduler.next_fire_at("s1/t1")
    await clock.advance(180)
    assert rec.ticks == [START + 600, START + 660, START + 720, START + 780]
    assert rec.missed == []
    with pytest.raises(NotFound):
        await scheduler.rearm("nope", EVERY_MINUTE)


async def test_rearm_with_a_new_anchor_never_refires_a_handled_tick(
    clock: FakeClock, scheduler: TriggerScheduler
) -> None:
    rec = Recorder(clock)
    arm(scheduler, rec)
    await clock.advance(60)
    await scheduler.rearm("s1/t1", TimerConfig(interval_minutes=1), anchor=START + 30)
    await clock.advance(60)
    assert rec.ticks == [START + 60, START + 90]


async def test_fire_once_after_an_outage_reports_and_fires_the_latest_missed_tick(
    clock: FakeClock, scheduler: TriggerScheduler
) -> None:
    rec = Recorder(clock)
    cfg = TimerConfig(interval_minutes=5)
    anchor = START - 86400 - 120  # ticks at START - 120 + 300 k
    # The server was down for an hour: the last handled tick was an hour before the latest.
    nxt = arm(scheduler, rec, cfg=cfg, anchor=anchor, last_tick=START - 120 - 3600)
    assert nxt == START + 180
    await clock.advance(0)
    assert rec.missed == [
        MissedInfo("s1/t1", 12, START - 3420, START - 120, "fire_once", True, False)
    ]
    assert rec.fires == [FireInfo("s1/t1", START - 120, 12)] and rec.fired_at == [START]
    await clock.advance(600)
    assert rec.ticks == [START - 120, START + 180, START + 480]
    assert len(rec.missed) == 1


async def test_skip_after_an_outage_only_reports(
    clock: FakeClock, scheduler: TriggerScheduler
) -> None:
    rec = Recorder(clock)
    cfg = TimerConfig(interval_minutes=5, misfire="skip")
    arm(scheduler, rec, cfg=cfg, anchor=START, last_tick=START - 3600)
    await clock.advance(0)
    assert rec.missed == [MissedInfo("s1/t1", 12, START - 3300, START, "skip", False, False)]
    assert rec.fires == []
    await clock.advance(300)
    assert rec.ticks == [START + 300]


async def test_no_missed_ticks_means_no_report(clock: FakeClock,
                                               scheduler: TriggerScheduler) -> None:
    rec = Recorder(clock)
    arm(scheduler, rec, anchor=START - 30, last_tick=START - 30)
    await clock.advance(30)
    assert rec.missed == [] and rec.ticks == [START + 30]


async def test_a_long_cron_outage_is_capped_and_still_fires_the_latest_tick(
    clock: FakeClock, scheduler: TriggerScheduler
) -> None:
    rec = Recorder(clock)
    cfg = TimerConfig(cron="* * * * *")
    arm(scheduler, rec, cfg=cfg, anchor=START, last_tick=START - 30 * 86400)
    await clock.advance(0)
    [missed] = rec.missed
    assert (missed.count, missed.capped, missed.last) == (MISSED_CAP, True, START)
    assert rec.fires == [FireInfo("s1/t1", START, MISSED_CAP)] and rec.fired_at == [START]


async def test_a_raising_callback_neither_stops_the_schedule_nor_spins(
    clock: FakeClock, scheduler: TriggerScheduler, caplog: pytest.LogCaptureFixture
) -> None:
    rec = Recorder(clock, fail=True)
    arm(scheduler, rec)
    with caplog.at_level(logging.ERROR):
        await clock.advance(6 * 3600)  # 360 raising fires (a traceback logged for each)
    assert len(rec.fires) == 360
    assert rec.ticks == [START + 60 * k for k in range(1, 361)]
    assert clock.pending == 1
    failures = [r for r in caplog.records if r.exc_info is not None]
    assert len(failures) == 360
    assert "callback exploded" in caplog.text and "Traceback" in caplog.text


async def test_a_raising_on_missed_still_lets_fire_once_fire(clock: FakeClock,
                                                             scheduler: TriggerScheduler) -> None:
    rec = Recorder(clock)

    async def broken(info: MissedInfo) -> None:
        raise ValueError("disk full")

    scheduler.arm("k", EVERY_MINUTE, anchor=START, last_tick=START - 600,
                  on_fire=rec.on_fire, on_missed=broken)
    await clock.advance(60)
    assert rec.ticks == [START, START + 60]


async def test_slow_callbacks_never_overlap_and_a_backlog_is_coalesced(
    clock: FakeClock, scheduler: TriggerScheduler
) -> None:
    rec = Recorder(clock, work_seconds=150)
    arm(scheduler, rec)
    await clock.advance(1800)
    assert rec.max_running == 1
    assert all(b > a for a, b in zip(rec.ticks, rec.ticks[1:], strict=False))
    assert len(rec.fires) < 15  # one fire per 150 s of work, not one per 60 s tick
    assert rec.missed and all(m.count >= 2 and m.fired for m in rec.missed)
    assert [f.tick for f in rec.fires if f.missed] == [m.last for m in rec.missed]


async def test_a_callback_may_disarm_its_own_timer(clock: FakeClock,
                                                   scheduler: TriggerScheduler) -> None:
    fired: list[float] = []

    async def once(info: FireInfo) -> None:
        fired.append(info.tick)
        assert await scheduler.disarm(info.key) is True

    scheduler.arm("once", EVERY_MINUTE, anchor=START, last_tick=None, on_fire=once)
    await clock.advance(600)
    assert fired == [START + 60]
    assert "once" not in scheduler
    assert clock.pending == 0


async def test_a_callback_may_rearm_its_own_timer(clock: FakeClock,
                                                  scheduler: TriggerScheduler) -> None:
    fired: list[float] = []

    async def slow_down(info: FireInfo) -> None:
        fired.append(info.tick)
        if len(fired) == 1:
            await scheduler.rearm(info.key, TimerConfig(interval_minutes=10))

    scheduler.arm("k", EVERY_MINUTE, anchor=START, last_tick=None, on_fire=slow_down)
    await clock.advance(1200)
    assert fired == [START + 60, START + 600, START + 1200]


async def test_close_stops_everything_and_refuses_new_timers(clock: FakeClock) -> None:
    sched = TriggerScheduler(clock)
    rec = Recorder(clock)
    for i in range(50):
        arm(sched, rec, key=f"k{i}", anchor=START + i)
    await clock.advance(0)
    assert len(sched) == 50 and clock.pending == 50
    await sched.close()
    assert len(sched) == 0 and clock.pending == 0
    await clock.advance(3600)
    assert rec.fires == []
    with pytest.raises(Unavailable):
        arm(sched, rec)


async def test_an_unschedulable_config_fails_at_arm_instead_of_looping(
    clock: FakeClock, scheduler: TriggerScheduler
) -> None:
    # Bypasses validation on purpose: February 30th never comes.
    never = TimerConfig.model_construct(cron="0 0 30 2 *", timezone="UTC",
                                        interval_minutes=None, misfire="fire_once")
    with pytest.raises(ValueError):
        arm(scheduler, Recorder(clock), cfg=never)
    assert len(scheduler) == 0 and clock.pending == 0


async def test_a_tick_due_between_arming_and_the_catch_up_fires(
        clock: FakeClock, scheduler: TriggerScheduler) -> None:
    """A resume arms a timer with a backlog; its task starts a moment later. A tick that
    comes due in that moment is neither in the backlog nor skipped: it fires (late)."""
    rec = Recorder(clock)
    clock.step(150)  # last handled START + 60; START + 120 is missed
    arm(scheduler, rec, last_tick=START + 60)
    clock.step(35)  # START + 180 comes due before the timer's task runs
    await clock.advance(0)
    assert [(m.first, m.last, m.count) for m in rec.missed] == [(START + 120, START + 120, 1)]
    assert rec.ticks == [START + 120, START + 180]  # the catch-up fire, then the due tick
    await clock.advance(60)
    assert rec.ticks[-1] == START + 240
