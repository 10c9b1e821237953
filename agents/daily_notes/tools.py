"""Tools of the daily_notes agent: capture notes through the day, list them, write a digest.

Notes live in the session workspace as ``notes.jsonl`` (one JSON object per line:
``{"at": "<UTC ISO time>", "tag": "...", "text": "..."}``); a digest is written to
``digest-YYYY-MM-DD.md``. Standard library only.
"""

from __future__ import annotations

import json
import re
import threading
from collections import defaultdict
from datetime import UTC, date, datetime
from pathlib import Path

NOTES_FILE = "notes.jsonl"
MAX_NOTE_CHARS = 4000
_TAG_RE = re.compile(r"[^a-z0-9_-]+")
_TODO_RE = re.compile(r"^(todo|to do)\b[:\s-]*", re.IGNORECASE)
_NOTES_LOCK = threading.Lock()


def append_note(text: str, workspace: Path, tag: str = "general") -> str:
    """Save one note with the current time.

    Args:
        text: The note itself. Start it with "TODO" to make it an open task in the digest.
        tag: A short label used to group notes in the digest, e.g. "meeting" or "idea".
    """
    text = text.strip()
    if not text:
        raise ValueError("a note needs some text")
    if len(text) > MAX_NOTE_CHARS:
        raise ValueError(f"a note holds at most {MAX_NOTE_CHARS} characters")
    note = {"at": _now().isoformat(timespec="seconds"), "tag": _clean_tag(tag), "text": text}
    workspace.mkdir(parents=True, exist_ok=True)
    with _NOTES_LOCK:  # parallel calls run in threads: append and count as one step
        with (workspace / NOTES_FILE).open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(note, ensure_ascii=False) + "\n")
        count = len(_read_notes(workspace))
    return f"Saved note #{count} [{note['tag']}]: {text}"


def list_notes(workspace: Path, day: str | None = None, tag: str | None = None) -> str:
    """List saved notes, oldest first, optionally only one day or one tag.

    Args:
        day: Only notes of this UTC day, as YYYY-MM-DD.
        tag: Only notes with this tag.
    """
    notes = _read_notes(workspace)
    if day:
        notes = [n for n in notes if n["at"].startswith(_parse_day(day).isoformat())]
    if tag:
        notes = [n for n in notes if n["tag"] == _clean_tag(tag)]
    if not notes:
        return "No notes yet." if not (day or tag) else "No notes match."
    return "\n".join(f"- {n['at']} [{n['tag']}] {n['text']}" for n in notes)


def write_digest(workspace: Path, day: str | None = None) -> str:
    """Write digest-YYYY-MM-DD.md: the day's open todos first, then the notes grouped by tag.

    Args:
        day: The UTC day to digest, as YYYY-MM-DD; today when omitted.
    """
    wanted = _parse_day(day) if day else _now().date()
    notes = [n for n in _read_notes(workspace) if n["at"].startswith(wanted.isoformat())]
    content = _render_digest(wanted, notes)
    name = f"digest-{wanted.isoformat()}.md"
    workspace.mkdir(parents=True, exist_ok=True)
    (workspace / name).write_text(content, encoding="utf-8")
    return f"Wrote {name} ({len(notes)} notes).\n\n{content}"


def _render_digest(day: date, notes: list[dict[str, str]]) -> str:
    """The digest markdown for one day's notes."""
    lines = [f"# Digest for {day.isoformat()}", ""]
    if not notes:
        return "\n".join([*lines, "No notes were taken this day.", ""])
    todos = [n for n in notes if _TODO_RE.match(n["text"])]
    by_tag: dict[str, list[dict[str, str]]] = defaultdict(list)
    for note in notes:
        if note not in todos:
            by_tag[note["tag"]].append(note)
    lines += [f"Notes: {len(notes)}. Open todos: {len(todos)}.", ""]
    if todos:
        lines += ["## Open todos", ""]
        lines += [f"- [ ] {_TODO_RE.sub('', n['text'])} ({_clock(n)})" for n in todos]
        lines.append("")
    for tag in sorted(by_tag):
        lines += [f"## {tag}", ""]
        lines += [f"- {_clock(n)} {n['text']}" for n in by_tag[tag]]
        lines.append("")
    return "\n".join(lines)


def _read_notes(workspace: Path) -> list[dict[str, str]]:
    path = workspace / NOTES_FILE
    if not path.is_file():
        return []
    notes = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            note = json.loads(line)
        except json.JSONDecodeError:
            continue  # a hand-edited or torn line: skip it, keep the rest
        if isinstance(note, dict) and {"at", "tag", "text"} <= note.keys():
            notes.append(note)
    return notes


def _parse_day(day: str) -> date:
    try:
        return date.fromisoformat(day.strip())
    except ValueError:
        raise ValueError(f"day must look like 2025-01-31, not {day!r}") from None


def _clean_tag(tag: str) -> str:
    return _TAG_RE.sub("-", tag.strip().lower()).strip("-")[:32] or "general"


def _clock(note: dict[str, str]) -> str:
    return note["at"][11:16]


def _now() -> datetime:
    return datetime.now(UTC)
