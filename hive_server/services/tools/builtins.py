"""The built-in workspace tools every session has: ``get_time``, ``read_file``, ``write_file``,
``list_files``.

The confinement here (no absolute paths, no ``..``, no symlinks leading out, size caps) protects
these file tools, which the model drives with arbitrary paths; it is not a sandbox for agent code
(an agent's ``tools.py`` is trusted, see ``plugins.py``).
"""

from __future__ import annotations

import dataclasses
import functools
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from hive_server.core.clock import Clock, SystemClock
from hive_server.llm.base import ToolSpec
from hive_server.services.tools.base import (
    RESULT_MAX_CHARS,
    FunctionCall,
    Tool,
    ToolError,
    spec_and_call,
)

READ_MAX_BYTES = RESULT_MAX_CHARS - 1024  # 256 KiB: a read and its truncation note fit a result
WRITE_MAX_BYTES = 1024 * 1024
LIST_MAX_ENTRIES = 500
BUILTIN_TOOL_NAMES = frozenset({"get_time", "read_file", "write_file", "list_files"})


def builtin_tools(workspace: Path, clock: Clock) -> dict[str, Tool]:
    """``get_time``, ``read_file``, ``write_file``, ``list_files`` for one session workspace
    (``get_time`` reads ``clock``). Their schemas are the ones built once per process."""

    def now_in(timezone: str | None = None) -> str:
        return iso_time(clock.time(), timezone)

    tools = {}
    for spec, call in _builtin_prototypes():
        own = dataclasses.replace(call, fn=now_in) if call.fn is get_time else call.bind(workspace)
        tools[spec.name] = Tool(spec, own)
    return tools


@functools.cache
def _builtin_prototypes() -> tuple[tuple[ToolSpec, FunctionCall], ...]:
    """Each built-in tool's schema and argument model, built once per process: a pydantic
    model and its JSON schema per session were a fifth of a boot with many sessions."""
    return tuple(spec_and_call(fn) for fn in (get_time, read_file, write_file, list_files))


def get_time(timezone: str | None = None) -> str:
    """Return the current date and time in ISO 8601.

    Args:
        timezone: IANA time zone name such as "Europe/Berlin"; UTC when omitted.
    """
    return iso_time(SystemClock().time(), timezone)  # a session's copy reads the server's clock


def iso_time(now: float, timezone: str | None) -> str:
    if not timezone:
        return datetime.fromtimestamp(now, UTC).isoformat()
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ToolError(f"unknown time zone {timezone!r}; use an IANA name such as "
                        "'Europe/Berlin'") from exc
    return datetime.fromtimestamp(now, zone).isoformat()


def confine(workspace: Path, path: str) -> Path:
    """Resolve ``path`` inside ``workspace``; refuse absolute paths, ``..`` and symlink escapes."""
    if not path.strip():
        raise ToolError("path must not be empty")
    candidate = Path(path)
    if candidate.is_absolute() or path.startswith("~"):
        raise ToolError(f"absolute paths are not allowed: {path!r}; "
                        "use a path relative to the workspace")
    if ".." in candidate.parts:
        raise ToolError(f"'..' is not allowed in paths: {path!r}")
    root = workspace.resolve()
    target = (root / candidate).resolve()
    if not target.is_relative_to(root):
        raise ToolError(f"{path!r} leads outside the workspace (through a symlink)")
    return target


def read_file(path: str, *, workspace: Path) -> str:
    """Read a text file from the session workspace (at most 256 KiB are returned).

    Args:
        path: File path relative to the workspace, e.g. "notes/today.md".
    """
    target = confine(workspace, path)
    if target.is_dir():
        raise ToolError(f"{path!r} is a directory; use list_files")
    if not target.is_file():
        raise ToolError(f"no such file in the workspace: {path!r}")
    with target.open("rb") as handle:
        data = handle.read(READ_MAX_BYTES + 1)
    text = data[:READ_MAX_BYTES].decode("utf-8", errors="replace")
    if len(data) > READ_MAX_BYTES:
        size = target.stat().st_size
        text += f"\n\n[truncated: showing the first {READ_MAX_BYTES} of {size} bytes]"
    return text


def write_file(path: str, content: str, append: bool = False, *, workspace: Path) -> str:
    """Write (or append) text to a file in the session workspace; folders are created.

    Args:
        path: File path relative to the workspace, e.g. "reports/summary.md".
        content: The text to write (at most 1 MiB per call).
        append: Add to the end of the file instead of replacing it.
    """
    data = content.encode("utf-8")
    if len(data) > WRITE_MAX_BYTES:
        raise ToolError(f"content is {len(data)} bytes; the limit is {WRITE_MAX_BYTES} per call")
    target = confine(workspace, path)
    if target.is_dir() or target == workspace.resolve():
        raise ToolError(f"{path!r} is a directory")
    if target.exists() and not target.is_file():  # a FIFO would block this thread
        raise ToolError(f"{path!r} is not a regular file")
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("ab" if append else "wb") as handle:
        handle.write(data)
    verb = "appended" if append else "wrote"
    return f"{verb} {len(data)} bytes to {path}"


def list_files(path: str = ".", *, workspace: Path) -> str:
    """List the files and folders of a workspace folder (folders end with "/").

    Args:
        path: Folder relative to the workspace; the workspace itself when omitted.
    """
    target = confine(workspace, path)
    if not target.exists():
        if target == workspace.resolve():
            return "(the workspace is empty)"
        raise ToolError(f"no such folder in the workspace: {path!r}")
    if not target.is_dir():
        raise ToolError(f"{path!r} is a file; use read_file")
    entries = sorted(target.iterdir(), key=lambda p: p.name)
    lines = [_describe(entry) for entry in entries[:LIST_MAX_ENTRIES]]
    if len(entries) > LIST_MAX_ENTRIES:
        lines.append(f"[{len(entries) - LIST_MAX_ENTRIES} more entries not shown]")
    return "\n".join(lines) if lines else "(empty folder)"


def _describe(entry: Path) -> str:
    if entry.is_symlink():
        return f"{entry.name} (symlink)"
    if entry.is_dir():
        return f"{entry.name}/"
    return f"{entry.name} ({entry.stat().st_size} bytes)"
