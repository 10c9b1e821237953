"""``./scripts/bench [--quick] [--only PART ...] [--out FILE]``: every part beside its raw
baseline in the same run; prints a table (measure, ours, raw, ratio, target, result) and
writes it into docs/benchmarks.md (a full run; ``--quick`` writes only with ``--out``).

Parts: http (our server and a raw aiohttp app as processes, loaded by a third), appends
(event log against write()+flush()), sse (fan-out to subscribers in another process against
a raw aiohttp SSE app), sessions (boot with many live sessions, the history list, RSS per
session, idle CPU with armed timers). Exit status 0 when every part ran (a missed target is
reported, not an error); 1 when a part failed.
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

from benchmarks import appends, http, sessions, sse
from benchmarks.report import write_report
from benchmarks.sizes import FULL, QUICK, Sizes
from benchmarks.table import ROOT, Row, render_text

Part = Callable[[Path, Sizes, list[Row]], Awaitable[None]]  # appends its rows as measured
PARTS: dict[str, Part] = {"http": http.run, "appends": appends.run, "sse": sse.run,
                          "sessions": sessions.run}
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: seconds, a smoke run")
    parser.add_argument("--only", nargs="+", choices=list(PARTS), default=list(PARTS),
                        metavar="PART", help=f"run these parts only ({', '.join(PARTS)})")
    parser.add_argument("--boot-sessions", type=int, nargs="+", metavar="N",
                        help="live sessions of the boot measures (default: 1000 10000; "
                             "--quick: 20)")
    parser.add_argument("--out", type=Path, default=None,
                        help="the report to write (default: docs/benchmarks.md on a full run, "
                             "none with --quick)")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    if args.boot_sessions:
        sizes = dataclasses.replace(sizes, boot_sessions=tuple(args.boot_sessions))
    rows, failed = asyncio.run(run_parts(args.only, sizes))
    print("\n" + render_text(rows), flush=True)
    out = args.out or (None if args.quick else DOC)
    command = " ".join(["./scripts/bench", *(["--quick"] if args.quick else []),
                        *(["--only", *args.only] if args.only != list(PARTS) else []),
                        *(["--boot-sessions", *map(str, args.boot_sessions)]
                          if args.boot_sessions else [])])
    if out is not None:
        write_report(out, rows, command, failed)
        print(f"written: {out}")
    if failed:
        print(f"parts that failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
