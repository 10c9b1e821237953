"""Which sessions a list (or a usage sum) covers: the filters of ``GET /api/sessions/history``.

``SessionFilterQuery`` is the query string as it arrives (strings, published in the OpenAPI
document); ``to_filter()`` turns it into ``SessionFilter``, the typed filter the sessions index
answers (``SessionIndex.query`` / ``SessionIndex.matching``). Times are ISO 8601 (a time
without an offset is UTC) or epoch seconds; bounds are inclusive (``after``: at or after).
``q`` is a case-insensitive substring of the title, the first or the last user message.
``SessionListQuery`` adds the page: ``limit`` with an opaque ``cursor`` (keyset on the last
activity, stable while sessions are created) or a ``page`` number.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import cast

from pydantic import ConfigDict, Field

from hive_server.errors.requests import InvalidQuery
from hive_server.models.base import Model
from hive_server.models.session import SESSION_STATUSES, SessionStatus

_STATUS = "|".join(SESSION_STATUSES)
STATUS_LIST = rf"^(?:{_STATUS})(?:,(?:{_STATUS}))*$"
EPOCH = r"-?\d{1,12}(?:\.\d{1,9})?"
ISO = (r"([1-9]\d{3})-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])"
       r"(?:[T ]([01]\d|2[0-3]):([0-5]\d)(?::([0-5]\d)(?:\.(\d{1,6}))?)?"
       r"(Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)?)?")
TIME = rf"^(?:({EPOCH})|{ISO})$"  # groups: epoch | year month day hour minute second fraction zone
TIME_RE = re.compile(TIME)
TIME_HELP = ("ISO 8601 (YYYY-MM-DD[THH:MM[:SS[.ffffff]]][Z|+HH:MM], no offset: UTC; a day past "
             "the month's end rolls over) or epoch seconds; inclusive")
SESSION_KEY = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}"
CURSOR = rf"^(-?\d{{1,16}}(?:\.\d{{1,17}})?)~({SESSION_KEY})$"
CURSOR_RE = re.compile(CURSOR)
MAX_PAGE = 1_000_000
DEFAULT_LIMIT, MAX_LIMIT = 50, 500


class SessionFilter(Model):
    """The typed filter (every given condition holds; None: no condition)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    status: frozenset[SessionStatus] | None = None
    agent_id: str | None = None
    queen_id: str | None = None
    created_after: float | None = None  # epoch seconds
    created_before: float | None = None
    active_after: float | None = None
    active_before: float | None = None
    q: str | None = None


class SessionFilterQuery(Model):
    """The filters as query parameters (unknown parameters: 400 ``invalid_query``)."""

    model_config = ConfigDict(extra="forbid")

    status: str | None = Field(default=None, pattern=STATUS_LIST,
                               description="one status or several, comma-separated")
    agent_id: str | None = Field(default=None, min_length=1, max_length=200,
                                 description="the colony's agent id")
    queen_id: str | None = Field(default=None, min_length=1, max_length=200)
    created_after: str | None = Field(default=None, pattern=TIME, description=TIME_HELP)
    created_before: str | None = Field(default=None, pattern=TIME, description=TIME_HELP)
    active_after: str | None = Field(default=None, pattern=TIME, description=TIME_HELP)
    active_before: str | None = Field(default=None, pattern=TIME, description=TIME_HELP)
    q: str | None = Field(default=None, max_length=200, description=(
        "case-insensitive text in the title, the first or the last user message"))

    def to_filter(self) -> SessionFilter:
        """The typed filter."""
        times = {name: parse_time(getattr(self, name)) for name in (
            "created_after", "created_before", "active_after", "active_before")}
        return SessionFilter(
            status=frozenset(cast(list[SessionStatus], self.status.split(",")))
            if self.status else None,
            agent_id=self.agent_id, queen_id=self.queen_id, q=self.q or None, **times)


class SessionListQuery(SessionFilterQuery):
    """``GET /api/sessions/history``: the filters and the page (``cursor`` or ``page``)."""

    model_config = ConfigDict(json_schema_extra={"not": {"required": ["cursor", "page"]}})

    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    cursor: str | None = Field(default=None, pattern=CURSOR,
                               description="next_cursor of the previous page (opaque)")
    page: int | None = Field(default=None, ge=1, le=MAX_PAGE,
                             description="1-based page number (instead of a cursor)")


def parse_time(raw: str | None) -> float | None:
    """Epoch seconds of ``raw`` (matching ``TIME``: checked by the query model)."""
    if raw is None or raw == "":
        return None
    found = TIME_RE.fullmatch(raw)
    if found is None:
        raise ValueError(f"not ISO 8601 nor epoch seconds: {raw!r}")
    epoch, year, month, day, hour, minute, second, fraction, zone = found.groups()
    if epoch is not None:
        return float(epoch)
    moment = datetime(int(year), int(month), 1, int(hour or 0), int(minute or 0),
                      int(second or 0), int((fraction or "0").ljust(6, "0")), tzinfo=_zone(zone))
    return (moment + timedelta(days=int(day) - 1)).timestamp()


def _zone(raw: str | None) -> timezone:
    if raw is None or raw == "Z":
        return UTC
    sign = -1 if raw[0] == "-" else 1
    return timezone(sign * timedelta(hours=int(raw[1:3]), minutes=int(raw[4:6])))


class Cursor(Model):
    """Where a page ended: the last row's activity time and id (newest first), written
    ``<epoch seconds>~<session id>`` (clients pass it back as is)."""

    model_config = ConfigDict(frozen=True)

    active: float
    session_id: str

    def encode(self) -> str:
        return f"{self.active!r}~{self.session_id}"

    @classmethod
    def decode(cls, raw: str) -> Cursor:
        """400 ``invalid_query`` for anything that is not a cursor this server gave."""
        found = CURSOR_RE.fullmatch(raw)
        if found is None:
            raise InvalidQuery("cursor: not a cursor from a previous page")
        return cls(active=float(found[1]), session_id=found[2])
