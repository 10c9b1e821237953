"""``./scripts/bench [--quick] [--only PART ...] [--redis] [--out FILE]``: every part beside
its raw baseline in the same run; prints a table (measure, ours, raw, ratio, target, result)
and writes it into docs/benchmarks.md (a full run; ``--quick`` writes only with ``--out``).

Parts: http (our server and a raw aiohttp app as processes, loaded by a third), appends
(event log against write()+flush()), sse (fan-out to subscribers in another process against
a raw aiohttp SSE app), sessions (boot with many live sessions, the history list, RSS per
session, idle CPU with armed timers); with ``--redis`` also redis (the Redis backend beside
the file backend, on a redis-server of its own; benchmarks/redis_backend.py). Exit status 0
when every part ran (a missed target is reported, not an error); 1 when a part failed; 2 when
--redis is asked and redis-server is not installed.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path

from benchmarks import appends, http, redis_backend, sessions, sse
from benchmarks.redis_proc import INSTALL, redis_binary
from benchmarks.report import write_report
from benchmarks.sizes import FULL, QUICK, Sizes
from benchmarks.table import ROOT, Row, render_text

Part = Callable[[Path, Sizes, list[Row]], Awaitable[None]]  # appends its rows as measured
PARTS: dict[str, Part] = {"http": http.run, "appends": appends.run, "sse": sse.run,
                          "sessions": sessions.run, "redis": redis_backend.run}
DEFAULT = [name for name in PARTS if name != "redis"]  # redis runs only when asked
DOC = ROOT / "docs" / "benchmarks.md"


async def run_parts(names: list[str], sizes: Sizes) -> tuple[list[Row], list[str]]:
    """Every part in turn; a part that fails keeps the rows it measured before failing."""
    rows: list[Row] = []
    failed: list[str] = []
    for name in names:
        root = Path(tempfile.mkdtemp(prefix=f"hive-bench-{name}-"))
        started = time.monotonic()
        print(f"== {name}", flush=True)
        got: list[Row] = []
        try:
            await PARTS[name](root, sizes, got)
        except Exception:
            traceback.print_exc()
            failed.append(name)
        finally:
            shutil.rmtree(root, ignore_errors=True)
        rows += got
        print(render_text(got), flush=True)
        print(f"   ({time.monotonic() - started:.1f} s)", flush=True)
    return rows, failed


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: seconds, a smoke run")
    parser.add_argument("--only", nargs="+", choices=list(PARTS), default=DEFAULT,
                        metavar="PART", help=f"run these parts only ({', '.join(PARTS)})")
    parser.add_argument("--redis", action="store_true",
                        help="also the Redis backend beside the file backend (needs Debian's "
                             "redis-server; the part starts and stops its own)")
    parser.add_argument("--boot-sessions", type=int, nargs="+", metavar="N",
                        help="live sessions of the boot measures (default: 1000 10000; "
                             "--quick: 20)")
    parser.add_argument("--out", type=Path, default=None,
                        help="the report to write (default: docs/benchmarks.md on a full run, "
                             "none with --quick)")
    return parser


def command(args: argparse.Namespace) -> str:
    """The command line the report names."""
    return " ".join(["./scripts/bench", *(["--quick"] if args.quick else []),
                     *(["--only", *args.only] if args.only != DEFAULT else []),
                     *(["--redis"] if args.redis else []),
                     *(["--boot-sessions", *map(str, args.boot_sessions)]
                       if args.boot_sessions else [])])


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    names = [*args.only, *(["redis"] if args.redis and "redis" not in args.only else [])]
    if "redis" in names and redis_binary() is None:
        print(f"scripts/bench --redis: {INSTALL}", file=sys.stderr)
        return 2
    sizes = QUICK if args.quick else FULL
    if args.boot_sessions:
        sizes = dataclasses.replace(sizes, boot_sessions=tuple(args.boot_sessions))
    rows, failed = asyncio.run(run_parts(names, sizes))
    print("\n" + render_text(rows), flush=True)
    out = args.out or (None if args.quick else DOC)
    if out is not None:
        write_report(out, rows, command(args), failed)
        print(f"written: {out}")
    if failed:
        print(f"parts that failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
