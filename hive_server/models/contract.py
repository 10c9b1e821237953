"""JSON Schema fragments that make the published contract (``GET /api/openapi.json``) as strict
as the server: every value a fragment allows is accepted, every value the server refuses is
outside it.

The fragments are written for JSON Schema's regex dialect (ECMA 262): no look-around, and
anchors at both ends. They only describe; the request models and services still validate (so
error codes such as ``invalid_session_id`` or ``empty_message`` are unchanged). A property
marked ``x-hive-limit: <setting>`` gets ``maxLength`` from that setting when the document is
built (``max_message_chars`` is configurable).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from zoneinfo import available_timezones

from hive_server.models.agent import AGENT_ID_RE
from hive_server.models.queen import QUEEN_ID_RE
from hive_server.models.session import RESERVED_IDS

JsonSchema = dict[str, Any]

SAFE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
"""Trigger ids (``models/triggers.py``)."""

SESSION_ID: JsonSchema = {
    # models/session.py is_safe_id: SAFE_ID_RE and no "..", spelled without a look-ahead
    "type": "string", "pattern": r"^[A-Za-z0-9](?:\.?[A-Za-z0-9_-])*\.?$", "maxLength": 128,
}
NEW_SESSION_ID: JsonSchema = {**SESSION_ID, "not": {"enum": sorted(RESERVED_IDS)}}
AGENT_ID: JsonSchema = {"type": "string", "pattern": AGENT_ID_RE.pattern}
QUEEN_ID: JsonSchema = {"type": "string", "pattern": QUEEN_ID_RE.pattern}
TRIGGER_ID: JsonSchema = {"type": "string", "pattern": SAFE_ID_PATTERN}

_SEGMENT = r"(?:[^/.\x00][^/\x00]*|\.[^/.\x00][^/\x00]*|\.\.[^/\x00]+)"
WORKSPACE_PATH: JsonSchema = {"type": "string", "pattern": (
    r"^[^\s\x1c-\x1f\x85/~.\x00][^/\x00]*(?:/" + _SEGMENT + ")*$")}
"""A file path in a session's workspace: relative, no ``.``/``..`` segment, not starting with
``~`` or a blank (``services/workspace_files``: 400 ``invalid_path`` otherwise)."""

PATH_PARAMETERS: dict[str, JsonSchema] = {
    "session_id": SESSION_ID, "agent_id": AGENT_ID, "colony_id": AGENT_ID,
    "queen_id": QUEEN_ID, "trigger_id": TRIGGER_ID, "path": WORKSPACE_PATH,
}
"""The schema of each path parameter name used by a route."""

LIMIT_KEY = "x-hive-limit"
AGENTS_DIR_KEY = "x-hive-agents-dir"


def on_string(fragment: JsonSchema) -> Callable[[JsonSchema], None]:
    """A field's ``json_schema_extra``: ``fragment`` on the string branch of its schema (an
    optional field's ``anyOf: [string, null]`` keeps its null)."""

    def apply(schema: JsonSchema) -> None:
        branches = [b for b in schema.get("anyOf", [schema]) if b.get("type") == "string"]
        for branch in branches:
            branch.update(fragment)

    return apply


def message(limit_setting: str = "max_message_chars") -> JsonSchema:
    """A message for the queen: at least one non-blank character, at most the setting's
    characters (``web/body.py`` check_message: 400 ``empty_message``, 413 otherwise)."""
    return {"minLength": 1, "pattern": r"\S", LIMIT_KEY: limit_setting}


TITLE: JsonSchema = {"minLength": 1, "pattern": r"[^\s\x1c-\x1f\x85]"}
"""A session title: a character that is not blank for Python's ``str.strip`` (ECMA's ``\\S``
also takes U+001C..U+001F and U+0085, which strip removes) (400 ``empty_title`` otherwise)."""


def given(name: str) -> JsonSchema:
    """The key is present with a (non-null) string value."""
    return {"required": [name], "properties": {name: {"type": "string"}}}


def exactly_one(*names: str) -> JsonSchema:
    """Exactly one of ``names`` is given (services: ``agent_required`` / ``agent_ambiguous``)."""
    return {"oneOf": [given(name) for name in names]}


def at_most_one(*names: str) -> JsonSchema:
    """None or exactly one of ``names`` is given."""
    return {"oneOf": [{"not": {"anyOf": [given(name) for name in names]}},
                      *(given(name) for name in names)]}


def agent_path(agents_dir_names: tuple[str, ...] = ("agents",)) -> JsonSchema:
    """``agents/<id>`` or a bare ``<id>`` (services/catalog/agents.py resolve_path); the document
    adds the absolute agents folder when it is built."""
    prefixes = "|".join(escape(name) + "/" for name in agents_dir_names)
    return {"type": "string", "pattern": rf"^(?:{prefixes})?{AGENT_ID_RE.pattern[1:-1]}$",
            AGENTS_DIR_KEY: True}


def escape(text: str) -> str:
    """``text`` as a literal in both Python's and ECMA's regex dialects."""
    return "".join("\\" + ch if ch in ".^$*+?()[]{}|\\" else ch for ch in text)


def _cron_field(value: str) -> str:
    """One cron field: ``*``, a value or a range, each with an optional ``/step``; a list."""
    item = rf"(?:\*|(?:{value})(?:-(?:{value}))?)(?:/[1-9][0-9]?)?"
    return rf"{item}(?:,{item})*"


# Days 1-28 only: every month has them, so no day/month pair is impossible ("0 0 30 2 *" is
# refused by the server because it never fires).
_CRON_VALUES = (r"[1-5]?[0-9]", r"1?[0-9]|2[0-3]", r"[1-9]|1[0-9]|2[0-8]", r"[1-9]|1[0-2]",
                r"[0-7]")
CRON_PATTERN = "^(?:" + " ".join(_cron_field(v) for v in _CRON_VALUES) + ")$"
"""Five fields (minute hour day month weekday), numbers only."""



def zone_schema() -> JsonSchema:
    """An IANA time zone this machine knows (``ZoneInfo`` accepts every one of them)."""
    return {"type": "string", "default": "UTC", "enum": sorted(available_timezones())}
