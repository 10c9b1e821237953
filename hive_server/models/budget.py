"""Spend limits: what a limit is, how it shows, and the budget events.

A limit caps tokens (input plus output) and/or cost in USD. It is set per session
(``meta.json`` ``budget``, ``PATCH /api/sessions/{id}``), per agent (``agent.json``
``budget``: the sessions running that agent together, per UTC day) and server-wide
(settings: every session together, per UTC day). ``services/budget/budgets.py`` enforces them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from hive_server.models.agent_views import Response
from hive_server.models.base import Model
from hive_server.models.event_base import EventData
from hive_server.models.events import EventType

LimitLevel = Literal["session", "agent", "server"]
LimitKind = Literal["tokens", "cost_usd"]
WARN_AT = 0.8  # budget_warning once spend reaches this share of a limit


class BudgetLimit(Model):
    """A limit: ``tokens`` (input plus output) and/or ``cost_usd``; null means no cap of
    that kind. The offline model costs 0 but counts tokens."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tokens: int | None = Field(default=None, ge=1, le=10**12,
                               description="input plus output tokens")
    cost_usd: float | None = Field(default=None, gt=0, le=10**9,
                                   description="estimated from the price table (llm/pricing.py)")

    def of(self, kind: LimitKind) -> float | None:
        return self.tokens if kind == "tokens" else self.cost_usd

    @property
    def empty(self) -> bool:
        return self.tokens is None and self.cost_usd is None


class BudgetPark(Model):
    """Why a session is parked in ``budget_exceeded`` (kept in ``meta.json``): the limit
    crossed and the call that was refused (its estimate decides when it may go on)."""

    level: LimitLevel
    kind: LimitKind
    limit: float
    spent: float
    needed_tokens: int = Field(description="the refused call's estimate: its input tokens "
                                           "plus max_tokens")
    needed_cost_usd: float
    at: str = Field(description="when it parked (ISO 8601)")


class LimitView(Response):
    """One limit that applies, what has been spent against it and what is left."""

    level: LimitLevel = Field(description="session: this session's lifetime; agent: every "
                                          "session of the agent today (UTC); server: every "
                                          "session today (UTC)")
    scope: str = Field(description="the session id, agent id, or the UTC day")
    kind: LimitKind
    limit: float
    spent: float
    remaining: float = Field(description="limit - spent, at least 0")
    reserved: float = Field(description="estimates of the model calls under way")


class BudgetView(Response):
    """A session's spend limits: each one that applies, and whether it is parked."""

    status: Literal["ok", "budget_exceeded"]
    session_budget: BudgetLimit | None = Field(description="this session's own limit")
    limits: list[LimitView]
    parked: BudgetPark | None = None
    held_fires: int = Field(default=0, description="trigger fires held while parked; handed "
                                                   "over by each trigger's misfire rule on "
                                                   "resume")


class ServerBudgetView(Response):
    """The server-wide and per-agent limits of today (UTC) (``GET /api/usage``)."""

    day: str
    limits: list[LimitView]


# -- events ---------------------------------------------------------------------------------------
class BudgetWarning(EventData):
    """Spend reached 80% of a limit (once per limit; a raised limit warns again)."""

    TYPE = EventType.BUDGET_WARNING
    level: LimitLevel
    kind: LimitKind
    limit: float
    spent: float
    remaining: float


class BudgetExceeded(EventData):
    """A model call was refused: it would have crossed a limit. The session is parked
    (status ``budget_exceeded``) until a limit is raised or cleared."""

    TYPE = EventType.BUDGET_EXCEEDED
    level: LimitLevel
    kind: LimitKind
    limit: float
    spent: float
    needed_tokens: int
    needed_cost_usd: float
    stream_id: str = Field(description="whose call was refused: queen or worker:<id>")


class BudgetResumed(EventData):
    """The limits were raised or cleared: the session goes on (held fires follow)."""

    TYPE = EventType.BUDGET_RESUMED
    held_fires: int


class TriggerHeld(EventData):
    """A trigger fired into a session parked by its budget: held, handed over on resume."""

    TYPE = EventType.TRIGGER_HELD
    trigger_id: str
    reason: Literal["budget_exceeded"] = "budget_exceeded"
    held: int = Field(description="fires of this session held now")
