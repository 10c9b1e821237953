"""Write the table into a Markdown file, between two markers (the rest of the file stays)."""

from __future__ import annotations

from pathlib import Path

from benchmarks.table import Row, machine, now_utc, render_markdown

START = "<!-- scripts/bench: start (generated; edits here are overwritten) -->"
END = "<!-- scripts/bench: end -->"
INTRO = """\
Each measure is taken beside its raw baseline in the same run, so the ratio holds while the
machine's speed varies (a busy machine moves both). The server under test runs as its own
process (`python -m hive_server serve`, HIVE_HOME in a temp dir, durability `batch`); HTTP
load comes from another process (benchmarks/load.py: raw sockets, keep-alive, 16
connections pipelining 4 requests each; chat: 4 connections, one request at a time); SSE
subscribers read in another process. Baselines produce the same bytes: the history tail's is
the raw app answering the log's last lines (seek, parse, dump) over HTTP to the same client;
the raw SSE app sends our frames' bytes. The CPU rows (the servers' own CPU time) move far
less on a busy machine than the wall-clock ones. A missed target says FAIL; the command
still exits 0."""


def section(rows: list[Row], command: str, failed: list[str]) -> str:
    broken = [f"Parts that failed in this run (their rows measured before the failure are "
              f"shown): {', '.join(failed)}.", ""] if failed else []
    return "\n".join([
        START, "## Ratios: `./scripts/bench`", "",
        f"Command: `{command}`. Date: {now_utc()}. Machine: {machine()}.", "",
        INTRO, "", *broken, render_markdown(rows), END])


def write_report(path: Path, rows: list[Row], command: str, failed: list[str]) -> None:
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    generated = section(rows, command, failed)
    if START in text and END in text:
        before, rest = text.split(START, 1)
        after = rest.split(END, 1)[1]
        text = before + generated + after
    else:
        title, _, body = text.partition("\n")
        text = f"{title}\n\n{generated}\n{body}"
    path.write_text(text)
