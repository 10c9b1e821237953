"""Benchmark the trigger scheduler on the real clock: memory and CPU of many armed timers,
and the overhead and lag of firing.

Run: ``.venv/bin/python scripts/bench_timers.py [--timers 10000] [--seconds 2]``.

* arm: N interval (60 min) or cron timers (mixed expressions and zones) on ``SystemClock``,
  each task sleeping. Memory is tracemalloc's traced growth after every task reached its
  sleep (a separate pass, since tracing slows the code); CPU is process time for ``arm`` plus
  the first run of every task.
* fire: N timers at the shortest interval (1 s) for a few seconds, phases spread over the
  second ("spread") or all equal ("aligned", the worst burst). Lag is the wall-clock time
  from a tick to its callback, for ticks after the first second (which compete with arming);
  fires/s and CPU (share of one core) cover the whole run, arming included.

``measure(timers, seconds)`` is importable and returns the figures as dataclasses.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import tracemalloc
from dataclasses import dataclass

from hive_server.core.clock import SystemClock
from hive_server.models.triggers import TimerConfig
from hive_server.services.triggers.scheduler import FireInfo, TriggerScheduler

CRON_EXPRS = ["*/5 * * * *", "0 9 * * 1-5", "30 2 * * *", "15 */2 * * *"]
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo"]


@dataclass(frozen=True)
class ArmFigures:
    kind: str
    timers: int
    bytes_per_timer: float
    cpu_seconds: float


@dataclass(frozen=True)
class FireFigures:
    mode: str
    timers: int
    seconds: float
    fires: int
    fires_per_second: float
    lag_p50_ms: float
    lag_p99_ms: float
    lag_max_ms: float
    cpu_share: float


@dataclass(frozen=True)
class BenchReport:
    arm: list[ArmFigures]
    fire: list[FireFigures]


def _configs(kind: str, n: int) -> list[TimerConfig]:
    if kind == "interval":
        return [TimerConfig(interval_minutes=60) for _ in range(n)]
    return [
        TimerConfig(cron=CRON_EXPRS[i % len(CRON_EXPRS)], timezone=ZONES[i // 4 % len(ZONES)])
        for i in range(n)
    ]


async def _ignore(info: FireInfo) -> None:
    return None


async def _arm_all(scheduler: TriggerScheduler, configs: list[TimerConfig]) -> None:
    now = time.time()
    for i, cfg in enumerate(configs):
        scheduler.arm(f"s/{i}", cfg, anchor=now + i % 3600, last_tick=None, on_fire=_ignore)
    for _ in range(3):  # let every task run up to its sleep
        await asyncio.sleep(0)


async def measure_arm(kind: str, n: int) -> ArmFigures:
    configs = _configs(kind, n)
    scheduler = TriggerScheduler(SystemClock())
    started = time.process_time()
    await _arm_all(scheduler, configs)
    cpu = time.process_time() - started
    await scheduler.close()

    scheduler = TriggerScheduler(SystemClock())
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    await _arm_all(scheduler, configs)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    await scheduler.close()
    return ArmFigures(kind, n, (after - before) / n, cpu)


async def measure_fire(n: int, seconds: float, *, aligned: bool) -> FireFigures:
    clock = SystemClock()
    lags: list[float] = []
    fires = 0
    base = clock.time()
    settled = base + 1.0  # ticks in the first second compete with arming itself

    async def on_fire(info: FireInfo) -> None:
        nonlocal fires
        fires += 1
        if info.tick >= settled:
            lags.append(clock.time() - info.tick)

    scheduler = TriggerScheduler(clock)
    cfg = TimerConfig(interval_minutes=1 / 60)
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(n):
        anchor = base if aligned else base + i / n
        scheduler.arm(f"s/{i}", cfg, anchor=anchor, last_tick=None, on_fire=on_fire)
    await asyncio.sleep(seconds)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    await scheduler.close()
    ordered = sorted(lags) or [0.0]
    return FireFigures(
        mode="aligned" if aligned else "spread",
        timers=n,
        seconds=wall,
        fires=fires,
        fires_per_second=fires / wall,
        lag_p50_ms=statistics.median(ordered) * 1000,
        lag_p99_ms=ordered[int(0.99 * (len(ordered) - 1))] * 1000,
        lag_max_ms=ordered[-1] * 1000,
        cpu_share=cpu / wall,
    )


async def measure(timers: int = 10_000, seconds: float = 2.0) -> BenchReport:
    arm = [await measure_arm("interval", timers), await measure_arm("cron", timers)]
    fire = [await measure_fire(timers, seconds, aligned=False),
            await measure_fire(timers, seconds, aligned=True)]
    return BenchReport(arm, fire)


def _print(report: BenchReport) -> None:
    for a in report.arm:
        print(f"arm {a.kind:8} {a.timers:>6} timers: {a.bytes_per_timer / 1024:6.2f} KiB/timer "
              f"({a.bytes_per_timer * a.timers / 2**20:5.1f} MiB), "
              f"{a.cpu_seconds:5.2f} s CPU ({a.cpu_seconds / a.timers * 1e6:5.1f} us/timer)")
    for f in report.fire:
        print(f"fire {f.mode:7} {f.timers:>6} timers @1s for {f.seconds:4.1f} s: {f.fires} fires "
              f"({f.fires_per_second:8.0f}/s), lag p50 {f.lag_p50_ms:6.1f} ms "
              f"p99 {f.lag_p99_ms:6.1f} ms max {f.lag_max_ms:6.1f} ms, "
              f"CPU {f.cpu_share:4.0%} of a core")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timers", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    _print(asyncio.run(measure(args.timers, args.seconds)))


if __name__ == "__main__":
    main()
