"""Tool schemas from Python functions: the docstring's summary and per-argument descriptions
(read by ``docstring_parser``: Google, reST, NumPy and Epydoc styles), and a pydantic JSON
schema without the generated ``title`` noise."""

from __future__ import annotations

from typing import Any

import docstring_parser

_SCHEMA_VALUE_KEYS = frozenset({"default", "enum", "const", "examples"})


def parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """The first paragraph (lines joined by spaces), and each documented argument's
    description. A docstring the parser trips over is only a summary, never an error."""
    try:
        parsed = docstring_parser.parse(doc)
    except (docstring_parser.ParseError, IndexError):
        return _one_line(doc.split("\n\n")[0]), {}
    summary = _one_line((parsed.description or "").split("\n\n")[0])
    return summary, {param.arg_name: _one_line(param.description or "")
                     for param in parsed.params if param.args[0] != "attribute"}


def _one_line(text: str) -> str:
    return " ".join(line.strip() for line in text.strip().splitlines() if line.strip())


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
