"""The gate every model call passes (``services/runtime/agent_loop.py``): admitted before the
call, settled after it. ``SessionJournal.gate`` is ``UNLIMITED`` until the budget
(``services/budget/budgets.py``) attaches its own; this module only defines the contract, so a
session needs no budget."""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

from hive_server.llm.base import LLMError, ToolSpec, TurnResult
from hive_server.models.event_data import ExecutionFailed


@dataclasses.dataclass(slots=True, frozen=True)
class CallRequest:
    """What a model call will send (its estimate is made from this)."""

    stream_id: str  # queen or worker:<id>
    system: str
    messages: list[dict[str, Any]]
    tools: list[ToolSpec]
    model: str
    max_tokens: int


class Ticket(Protocol):
    def settle(self, result: TurnResult | None) -> None:
        """The call ended (``result`` None: it failed or was cancelled)."""


class SpendGate(Protocol):
    async def admit(self, request: CallRequest) -> Ticket:
        """Reserve the call's expected spend, or raise ``BudgetRefused``."""
        ...


class BudgetRefused(LLMError):
    """A model call was not made: it would have crossed a spend limit. ``failed`` is how the
    execution that asked for it ends."""

    def __init__(self, failed: ExecutionFailed):
        super().__init__(failed.error, error_type="budget_exceeded")
        self.failed = failed


class _Free:
    def settle(self, result: TurnResult | None) -> None:
        return None


class _Unlimited:
    async def admit(self, request: CallRequest) -> Ticket:
        return _FREE


_FREE = _Free()
UNLIMITED: SpendGate = _Unlimited()
