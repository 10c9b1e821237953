"""Every micro-benchmark script, one after another; each prints its own figures. The ratios
against raw baselines (and the targets of issue 10) are ``./scripts/bench``.

Run: ``.venv/bin/python scripts/bench_events.py [--quick]``. The parts can be run alone:

- ``bench_eventlog.py``: appends/s per durability mode; last 2000 events of a 50 MB log;
  replay from the middle of a 1M-event log.
- ``bench_sse.py``: publish -> SSE delivered events/s with 1, 100 and 1000 subscribers.
- ``bench_rebuild.py``: rebuilding the queen's conversation from a 100k-event log.
- ``bench_timers.py``: 10,000 armed timers (memory, arming CPU, firing lag).
- ``bench_webhooks.py``: signed webhook deliveries/s accepted and fired.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PARTS = ["bench_eventlog.py", "bench_sse.py", "bench_rebuild.py", "bench_timers.py",
         "bench_webhooks.py"]
QUICK_FLAGS = {"bench_timers.py": ["--timers", "1000", "--seconds", "1"],
               "bench_rebuild.py": ["--events", "10000", "--repeats", "1"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    quick = parser.parse_args().quick
    failed = 0
    for part in PARTS:
        script = HERE / part
        if not script.exists():
            print(f"== {part}: missing", flush=True)
            failed += 1
            continue
        flags = (QUICK_FLAGS.get(part, ["--quick"]) if quick else [])
        print(f"== {part} {' '.join(flags)}", flush=True)
        started = time.perf_counter()
        code = subprocess.call([sys.executable, str(script), *flags])
        print(f"   ({time.perf_counter() - started:.1f} s, exit {code})", flush=True)
        failed += code != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
