"""Session metadata (``meta.json``) and session id rules."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

SAFE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


RESERVED_IDS = frozenset({"history"})  # /api/sessions/history is the history listing


def is_safe_id(value: str) -> bool:
    """A single safe path segment: no separators, no dot-only names, bounded length."""
    return bool(SAFE_ID_RE.match(value)) and ".." not in value


def new_session_id(now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return f"session_{now.strftime('%Y%m%d_%H%M%S')}_{secrets.token_hex(4)}"


class SessionMeta(BaseModel):
    """What ``meta.json`` holds. Written atomically on every change."""

    model_config = ConfigDict(extra="ignore")

    session_id: str
    created_at: str
    updated_at: str
    queen_id: str
    queen_name: str
    agent_id: str | None = None
    agent_path: str | None = None
    model: str
    phase: str = "planning"
    status: Literal["live", "stopped"] = "live"
    stopped_at: str | None = None
