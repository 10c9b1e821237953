"""Tool schemas from Python functions: the docstring's summary and ``Args:`` descriptions, and
a pydantic JSON schema without the generated ``title`` noise."""

from __future__ import annotations

import re
from typing import Any

_ARGS_SECTIONS = frozenset({"Args", "Arguments", "Parameters"})
_SECTION_RE = re.compile(
    r"^(Args|Arguments|Parameters|Returns?|Raises|Yields?|Examples?|Notes?|Example usage):\s*$")
_ARG_LINE_RE = re.compile(r"^\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_SCHEMA_VALUE_KEYS = frozenset({"default", "enum", "const", "examples"})


def parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """The first paragraph, and per-argument descriptions from a Google-style ``Args:``."""
    lines = doc.splitlines()
    summary: list[str] = []
    for line in lines:
        if not line.strip() or _SECTION_RE.match(line.strip()):
            break
        summary.append(line.strip())
    return " ".join(summary), _parse_args_section(lines)


def _parse_args_section(lines: list[str]) -> dict[str, str]:
    docs: dict[str, str] = {}
    current: str | None = None
    in_args = False
    arg_indent = 0
    for line in lines:
        stripped = line.strip()
        if _SECTION_RE.match(stripped):
            in_args = stripped.rstrip(":") in _ARGS_SECTIONS
            current = None
            continue
        if not in_args or not stripped:
            continue
        indent = len(line) - len(line.lstrip())
        match = _ARG_LINE_RE.match(stripped)
        if match and (current is None or indent <= arg_indent):
            current, arg_indent = match.group(1), indent
            docs[current] = match.group(2)
        elif current is not None:
            docs[current] = f"{docs[current]} {stripped}".strip()
    return docs


def strip_titles(node: Any) -> Any:
    """Drop pydantic's generated ``title`` keys (noise for the model), keep property names."""
    if isinstance(node, list):
        return [strip_titles(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "title":
            continue
        if key in ("properties", "$defs"):
            out[key] = {name: strip_titles(sub) for name, sub in value.items()}
        elif key in _SCHEMA_VALUE_KEYS:
            out[key] = value
        else:
            out[key] = strip_titles(value)
    return out
