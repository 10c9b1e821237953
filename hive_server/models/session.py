"""Session metadata (``meta.json``) and session id rules."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime
from typing import Literal, cast, get_args

from pydantic import ConfigDict, Field, field_validator

from hive_server.models.base import Model
from hive_server.models.budget import BudgetLimit, BudgetPark
from hive_server.models.handoff import Handoff
from hive_server.models.usage import UsageTotals

SAFE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


RESERVED_IDS = frozenset({"history", "live"})  # /api/sessions/history and /live are routes

QueenPhase = Literal["independent", "colony"]
QUEEN_PHASES: frozenset[str] = frozenset({"independent", "colony"})
# Phases written before Hive's two-phase model (ours: "planning"; Hive's incubating/working/
# reviewing) and what they mean now.
LEGACY_PHASES: dict[str, QueenPhase] = {
    "planning": "independent", "incubating": "independent",
    "working": "colony", "reviewing": "colony",
}
PREVIEW_CHARS = 120
TITLE_CHARS = 80  # a title drawn from the first user message

# A session's status: the one list (extend it here; the index, the filters and the answers
# follow). ``live`` is what a meta.json written before it held for a session not stopped.
SessionStatus = Literal["active", "awaiting_input", "idle", "failed", "cancelled", "stopped",
                        "budget_exceeded"]
SESSION_STATUSES: tuple[str, ...] = get_args(SessionStatus)
LEGACY_STATUSES: dict[str, SessionStatus] = {"live": "idle"}
KEPT_ON_RESUME: frozenset[str] = frozenset({"failed", "cancelled", "budget_exceeded"})


def resumed_status(status: SessionStatus) -> SessionStatus:
    """The status a session starts (or resumes) with: a failed or cancelled turn stays shown
    until the next one, a session parked by its budget stays parked; anything else (a turn a
    restart cut short, a stop) starts idle."""
    return status if status in KEPT_ON_RESUME else "idle"


def normalize_phase(value: str) -> QueenPhase | None:
    """Hive's phase for ``value`` (a current or legacy name); None when it is neither."""
    if value in QUEEN_PHASES:
        return cast(QueenPhase, value)
    return LEGACY_PHASES.get(value)


def preview(text: str, limit: int = PREVIEW_CHARS) -> str:
    """A one-line preview of a message: whitespace collapsed, cut at ``limit`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "\u2026"


def is_safe_id(value: str) -> bool:
    """A single safe path segment: no separators, no dot-only names, bounded length."""
    return bool(SAFE_ID_RE.fullmatch(value)) and ".." not in value


def new_session_id(now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return f"session_{now.strftime('%Y%m%d_%H%M%S')}_{secrets.token_hex(4)}"


class StateWarning(Model):
    """A file of the session found corrupt or unreadable and kept aside, never overwritten
    (in ``meta.json`` and the session's answers until the session is deleted)."""

    file: str = Field(description="e.g. triggers.json")
    error: str
    kept_as: str = Field(description="<file>.corrupt-<UTC timestamp>, beside it")
    at: str = Field(description="when it was found (ISO 8601)")


class CorruptSession(Model):
    """A session folder whose ``meta.json`` is corrupt or unreadable (kept aside): it cannot
    be opened; ``DELETE /api/sessions/history/{id}`` removes it."""

    session_id: str
    status: Literal["corrupt"] = "corrupt"
    file: str = "meta.json"
    kept_as: str
    error: str


class SessionMeta(Model):
    """What ``meta.json`` holds. Written atomically on every change.

    ``message_count``, ``last_message`` and ``last_input_at`` follow the inputs handed to the
    queen (kept in memory and written lazily, see ``SessionJournal.record_input``);
    ``message_count`` is None in a meta.json written before they existed.
    ``status`` follows the queen's turns (``QueenActivity``); ``last_active_at`` moves with
    each input and each status change; ``title`` is given at create or by PATCH, else drawn
    from the first user message (``first_message``).
    """

    model_config = ConfigDict(extra="ignore")

    session_id: str
    created_at: str
    updated_at: str
    queen_id: str
    queen_name: str
    agent_id: str | None = None
    agent_path: str | None = None
    model: str
    phase: QueenPhase = "independent"
    status: SessionStatus = "idle"
    last_error: str | None = None
    stopped_at: str | None = None
    message_count: int | None = None
    last_message: str | None = None
    last_input_at: str | None = None
    last_active_at: str | None = None
    last_seq: int | None = None  # the log's last seq when meta.json was last written
    first_message: str | None = None
    title: str | None = None
    warnings: list[StateWarning] = Field(default_factory=list)
    handoff: Handoff | None = None  # notes of the last stop (services/journal/handoff.py)
    usage: UsageTotals | None = None  # tokens, cost, latency... (services/journal/accounting.py)
    budget: BudgetLimit | None = None  # this session's spend limit (services/budget/budgets.py)
    budget_park: BudgetPark | None = None  # why it is parked in status budget_exceeded

    @field_validator("phase", mode="before")
    @classmethod
    def _legacy_phase(cls, value: object) -> object:
        """Any phase an older server stored loads (unknown ones as ``independent``)."""
        if isinstance(value, str):
            return normalize_phase(value) or "independent"
        return value

    @field_validator("status", mode="before")
    @classmethod
    def _legacy_status(cls, value: object) -> object:
        """``live`` (before the status model) loads as ``idle``."""
        if isinstance(value, str):
            return LEGACY_STATUSES.get(value, value)
        return value

    @property
    def active_iso(self) -> str:
        """The last activity: ``last_active_at``, else (an older meta) the last input, the
        last change, the creation."""
        return self.last_active_at or self.last_input_at or self.updated_at or self.created_at
