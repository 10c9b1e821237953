"""One row per measure: ours, the raw baseline of the same run, their ratio, the target."""

from __future__ import annotations

import dataclasses
import os
import platform
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TIMES = "\u00d7"  # the ratio sign


@dataclasses.dataclass(frozen=True, slots=True)
class Target:
    """``text`` as printed; ``check(row)`` says whether the row passes."""

    text: str
    check: Callable[[Row], bool]


def ratio_at_least(x: float) -> Target:
    return Target(f"≥ {x}{TIMES}", lambda row: row.ratio is not None and row.ratio >= x)


def ratio_at_most(x: float) -> Target:
    return Target(f"≤ {x}{TIMES}", lambda row: row.ratio is not None and row.ratio <= x)


def at_most(x: float, unit: str) -> Target:
    return Target(f"≤ {x:g} {unit}", lambda row: row.ours <= x)


def over_raw_at_most(x: float, unit: str) -> Target:
    """``ours - raw`` at most ``x`` (a boot beyond the same start on an empty home)."""
    return Target(f"≤ {x:g} {unit} over raw",
                  lambda row: row.raw is not None and row.ours - row.raw <= x)


@dataclasses.dataclass(frozen=True, slots=True)
class Row:
    measure: str
    ours: float
    raw: float | None
    unit: str
    target: Target | None = None

    @property
    def ratio(self) -> float | None:
        return None if self.raw in (None, 0) else self.ours / self.raw

    @property
    def verdict(self) -> str:
        if self.target is None:
            return ""
        return "pass" if self.target.check(self) else "FAIL"

    def cells(self) -> list[str]:
        ratio = "" if self.ratio is None else f"{self.ratio:.2f}{TIMES}"
        raw = "" if self.raw is None else _number(self.raw, self.unit)
        return [self.measure, _number(self.ours, self.unit), raw, ratio,
                self.target.text if self.target else "", self.verdict]


HEADER = ["measure", "ours", "raw", "ratio", "target", "result"]


def _number(value: float, unit: str) -> str:
    text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
    return f"{text} {unit}"


def render_text(rows: list[Row]) -> str:
    table = [HEADER, *(row.cells() for row in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(HEADER))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True))
                     .rstrip() for line in table)


def render_markdown(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row.cells()) + " |"
              for row in rows]
    return "\n".join(lines)


def machine() -> str:
    """Cores, CPU model, Python and the commit, for the report."""
    model = next((line.split(":", 1)[1].strip() for line
                  in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor() or "unknown")
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip() or "unknown"
    return (f"{os.cpu_count()} cores ({model}), {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}, commit {commit}, load average "
            f"{os.getloadavg()[0]:.1f} at the end")


def now_utc() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
