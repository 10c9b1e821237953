"""How big each part runs: the full run (the issue's sizes) and ``--quick`` (seconds)."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True, slots=True)
class Sizes:
    http_seconds: float = 5.0  # each load run
    http_rounds: int = 3  # ours and raw alternate; the best of each counts
    tail_events: int = 2000  # events/history?limit= at the tail of a log
    tail_repeats: int = 20
    appends: int = 20_000  # acknowledged appends, batch mode
    fsync_appends: int = 1000
    replay_log: int = 1_000_000  # events in the log replayed from its middle
    replay_events: int = 10_000
    sse_subscribers: tuple[int, ...] = (100, 1000)
    sse_rate: int = 300  # events per second
    sse_seconds: float = 5.0
    boot_sessions: tuple[int, ...] = (1000, 10_000)
    history_sessions: int = 10_000
    history_repeats: int = 50
    timers: int = 1000
    idle_seconds: float = 10.0
    settle_seconds: float = 1.0  # after a start, before RSS or idle CPU is read (GC settled)
    redis_appends: int = 5000  # --redis: acknowledged appends to each backend, batch mode
    redis_rounds: int = 3  # --redis: rounds of each measure, the Redis and file sides alternating
    redis_chat_rate: int = 20  # --redis: chats a second of the chat -> SSE latency rounds
    redis_chat_seconds: float = 5.0  # --redis: each latency round
    redis_load_seconds: float = 3.0  # --redis: each acknowledged-chats load run


FULL = Sizes()
# --quick checks that every part runs and prints every measure (tests/test_bench.py runs it in
# every ./scripts/test): its figures are not compared, so each wait is short
QUICK = Sizes(http_seconds=0.2, http_rounds=1, tail_events=50, tail_repeats=3, appends=2000,
              fsync_appends=100, replay_log=50_000, replay_events=5000,
              sse_subscribers=(10, 50), sse_seconds=0.2, boot_sessions=(20,),
              history_sessions=100, history_repeats=5, timers=50,
              idle_seconds=0.2, settle_seconds=0.2, redis_appends=500,
              redis_rounds=1, redis_chat_seconds=0.3, redis_load_seconds=0.1)
