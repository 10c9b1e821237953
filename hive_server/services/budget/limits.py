"""The arithmetic of spend limits: a model call's estimate, the limits that apply to a
session with what is spent and reserved against each, and which one a call would cross."""

from __future__ import annotations

import dataclasses
import math

import orjson

from hive_server.llm.base import Usage
from hive_server.llm.pricing import cost_usd
from hive_server.models.budget import WARN_AT, BudgetLimit, LimitKind, LimitLevel, LimitView
from hive_server.services.budget.ledger import Spend
from hive_server.services.journal.spend_gate import CallRequest

KINDS: tuple[LimitKind, ...] = ("tokens", "cost_usd")
CHARS_PER_TOKEN = 4  # a request's input tokens are estimated from its JSON size


@dataclasses.dataclass(slots=True, frozen=True)
class Applied:
    """One level's limit as it applies to a session now."""

    level: LimitLevel
    scope: str
    limit: BudgetLimit
    spent: Spend
    reserved: Spend

    def views(self) -> list[LimitView]:
        return [LimitView(level=self.level, scope=self.scope, kind=kind, limit=cap,
                          spent=_round(self.spent.of(kind)),
                          remaining=_round(max(0.0, cap - self.spent.of(kind))),
                          reserved=_round(self.reserved.of(kind)))
                for kind in KINDS if (cap := self.limit.of(kind)) is not None]


@dataclasses.dataclass(slots=True, frozen=True)
class Crossing:
    """The limit a call would cross (or a spend has crossed 80% of)."""

    level: LimitLevel
    scope: str
    kind: LimitKind
    limit: float
    spent: float


def _round(value: float) -> float:
    return round(value, 6)


def estimate(request: CallRequest) -> Spend:
    """The expected spend of a call: its input (JSON size / 4) plus ``max_tokens`` out,
    priced by the one price table (a model without a price: 0)."""
    size = (len(request.system) + len(orjson.dumps(request.messages))
            + len(orjson.dumps([tool.to_api() for tool in request.tools])))
    tokens_in = math.ceil(size / CHARS_PER_TOKEN)
    cost = cost_usd(request.model, Usage(tokens_in, request.max_tokens)) or 0.0
    return Spend(tokens_in + request.max_tokens, cost)


def actual(model: str, usage: Usage) -> Spend:
    """What a finished call spent: input plus output tokens and its priced cost."""
    return Spend(usage.input_tokens + usage.output_tokens, cost_usd(model, usage) or 0.0)


def crossed(applied: list[Applied], need: Spend) -> Crossing | None:
    """The first limit that spent + reserved + ``need`` would go over."""
    for level in applied:
        for kind in KINDS:
            cap = level.limit.of(kind)
            if cap is None:
                continue
            used = level.spent.of(kind) + level.reserved.of(kind)
            if used + need.of(kind) > cap + 1e-12:
                return Crossing(level.level, level.scope, kind, cap,
                                _round(level.spent.of(kind)))
    return None


def warnings_due(applied: list[Applied], spend: Spend) -> list[Crossing]:
    """The limits that ``spend`` (just added to each level's spent) took to 80% or more."""
    due = []
    for level in applied:
        for kind in KINDS:
            cap = level.limit.of(kind)
            now = level.spent.of(kind)
            if cap is not None and now >= WARN_AT * cap > now - spend.of(kind):
                due.append(Crossing(level.level, level.scope, kind, cap, _round(now)))
    return due
