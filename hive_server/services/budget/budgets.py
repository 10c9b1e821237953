"""Spend limits: enforced before every model call of a session's whole tree (the queen and
all her workers, whatever started the execution: a chat or a trigger fire).

- ``SessionBudget`` is a live session's ``SpendGate``. ``admit`` estimates the call
  (``budget_limits.estimate``) and checks it against what is left of every limit that applies
  (the session's own, its agent's today, the server's today), counting the calls under way
  as reserved, so parallel workers cannot together pass a limit. A call that would cross one
  is not made: the session parks (``budget_exceeded`` event, status ``budget_exceeded``,
  ``meta.budget_park``), the call raises ``BudgetRefused`` and the queen's execution ends
  with ``execution_failed`` (``error_type`` ``budget_exceeded``, ``limit``, ``spent``),
  workers under way cancelled with it. ``settle`` releases the reservation, adds the real
  spend to today's ledger and emits ``budget_warning`` when a limit reaches 80%.
- What a session has spent is its accounting (``services/journal/accounting.py``); today's spend by
  agent and in all is the ledger (``ledger.py``; the cluster's with ``--redis``:
  ``ledger_redis.py``).
- While parked every model call is refused at once; trigger fires are held by the triggers
  (``services/triggers/hold.py``). ``recheck`` resumes the session when the refused call
  would now fit (a limit raised or cleared, a new UTC day): ``budget_resumed``, then the
  held fires are handed over by each trigger's misfire rule.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, Protocol

from hive_server.core.clock import Clock
from hive_server.core.tasks import cancel_and_wait
from hive_server.errors import HiveError, NotFound
from hive_server.errors.sessions import SessionNotLive
from hive_server.llm.base import TurnResult
from hive_server.models.budget import (
    BudgetExceeded,
    BudgetLimit,
    BudgetPark,
    BudgetResumed,
    BudgetView,
    BudgetWarning,
    ServerBudgetView,
)
from hive_server.models.event_data import ExecutionFailed
from hive_server.models.usage import UsageTotals
from hive_server.services.budget.ledger import Ledger, Spend, SpendLedger
from hive_server.services.budget.limits import (
    Applied,
    Crossing,
    actual,
    crossed,
    estimate,
    warnings_due,
)
from hive_server.services.catalog.agents import AgentCatalog
from hive_server.services.journal.accounting import gap_source
from hive_server.services.journal.journal import SessionJournal, utc_iso
from hive_server.services.journal.spend_gate import BudgetRefused, CallRequest, Ticket

log = logging.getLogger(__name__)
FailQueen = Callable[[ExecutionFailed], Awaitable[bool]]


class HeldHandle(Protocol):
    """The trigger fires a parked session holds (``services/triggers/hold.py``)."""

    def held_count(self) -> int: ...

    async def release_held(self) -> None: ...


class _Ticket:
    def __init__(self, budget: SessionBudget, reserved: Spend, model: str):
        self.budget, self.reserved, self.model = budget, reserved, model

    def settle(self, result: TurnResult | None) -> None:
        self.budget.settle(self.reserved, self.model, result)


class SessionBudget:
    """One live session's gate (see the module docstring); a part the session stops."""

    def __init__(self, budgets: Budgets, session: SessionJournal, fail_queen: FailQueen,
                 held: HeldHandle):
        self.budgets = budgets
        self.session = session
        self.fail_queen = fail_queen
        self.held = held
        self.reserved = Spend()
        parked = session.activity.status == "budget_exceeded"  # as the log left it
        self.park: BudgetPark | None = session.meta.budget_park if parked else None
        self._lock = asyncio.Lock()  # rechecks one at a time
        self._failing: asyncio.Task[bool] | None = None

    # -- spend ----------------------------------------------------------------------------------
    async def counted(self) -> None:
        """Count what an earlier run logged and meta.json missed (once)."""
        await self.session.accounting.totals(gap_source(self.session.log, self.session.dir))

    def spent(self) -> Spend:
        totals = self.session.accounting.persisted() or UsageTotals()
        return Spend(totals.input_tokens + totals.output_tokens, totals.cost_usd)

    def applied(self) -> list[Applied]:
        return self.budgets.applied(self)

    # -- the gate -------------------------------------------------------------------------------
    async def admit(self, request: CallRequest) -> Ticket:
        if self.session.meta.budget is not None:  # its own limit counts its accounting
            await self.counted()
        if self.park is not None:
            raise BudgetRefused(_failure(self.park))
        applied = self.applied()
        need = estimate(request) if applied else Spend()
        if (crossing := crossed(applied, need)) is not None:
            await self._park(crossing, need, request.stream_id)
        self._reserve(need)
        return _Ticket(self, need, request.model)

    def _reserve(self, spend: Spend) -> None:
        self.reserved = self.reserved + spend
        self.budgets.reserve(self.session.meta.agent_id, spend)

    def settle(self, reserved: Spend, model: str, result: TurnResult | None) -> None:
        self.reserved = self.reserved - reserved
        self.budgets.release(self.session.meta.agent_id, reserved)
        if result is None:
            return
        spend = actual(model, result.usage)
        self.budgets.ledger.add(self.session.meta.agent_id, spend)
        for due in warnings_due(self.applied(), spend):
            self._warn(due)

    def _warn(self, due: Crossing) -> None:
        key = (due.level, due.scope, due.kind, due.limit)
        if self.budgets.warned(key):
            self.session.emit(BudgetWarning(level=due.level, kind=due.kind, limit=due.limit,
                                            spent=due.spent,
                                            remaining=round(max(0.0, due.limit - due.spent), 6)))

    async def _park(self, crossing: Crossing, need: Spend, stream_id: str) -> None:
        park = BudgetPark(level=crossing.level, kind=crossing.kind, limit=crossing.limit,
                          spent=crossing.spent, needed_tokens=need.tokens,
                          needed_cost_usd=need.cost_usd, at=utc_iso())
        self.park = park
        self.session.emit(BudgetExceeded(
            level=park.level, kind=park.kind, limit=park.limit, spent=park.spent,
            needed_tokens=park.needed_tokens, needed_cost_usd=park.needed_cost_usd,
            stream_id=stream_id))
        failed = _failure(park)
        if stream_id != "queen" and self._failing is None:  # end the tree: queen and workers
            self._failing = asyncio.create_task(self._fail_queen(failed),
                                                name=f"budget-fail:{self.session.id}")
        await self.session.save_meta(budget_park=park)
        raise BudgetRefused(failed)

    async def _fail_queen(self, failed: ExecutionFailed) -> bool:
        try:
            return await self.fail_queen(failed)
        finally:
            self._failing = None

    # -- resume ---------------------------------------------------------------------------------
    async def set_limit(self, limit: BudgetLimit | None) -> bool:
        """Set (or clear, with None or an empty limit) the session's own limit; True when
        that resumed the session."""
        await self.session.save_meta(budget=None if limit is None or limit.empty else limit)
        return await self.recheck()

    async def recheck(self) -> bool:
        """Resume when the refused call would now fit; True when it did."""
        async with self._lock:
            park = self.park
            if park is None:
                if self.held.held_count():  # a hand-over a crash cut short: finish it
                    await self.held.release_held()
                return False
            await self.counted()
            need = Spend(park.needed_tokens, park.needed_cost_usd)
            if crossed(self.applied(), need) is not None:
                return False
            self.park = None
            self.session.emit(BudgetResumed(held_fires=self.held.held_count()))
            await self.session.save_meta(budget_park=None)
            log.info("session %s: spend limit raised, resumed", self.session.id)
            await self.held.release_held()
            return True

    async def current_view(self) -> BudgetView:
        """``view`` once what an earlier run logged is counted."""
        await self.counted()
        return self.view()

    def view(self) -> BudgetView:
        return BudgetView(
            status="budget_exceeded" if self.park is not None else "ok",
            session_budget=self.session.meta.budget,
            limits=[view for level in self.applied() for view in level.views()],
            parked=self.park, held_fires=self.held.held_count())

    async def stop(self) -> None:
        self.budgets.detach(self)
        task, self._failing = self._failing, None
        await cancel_and_wait(task)
        await self.budgets.ledger.flush()  # its spend of today is stored


def _failure(park: BudgetPark) -> ExecutionFailed:
    unit = "tokens" if park.kind == "tokens" else "USD"
    return ExecutionFailed(
        error=(f"{park.level} spend limit of {park.limit:g} {unit} reached ({park.spent:g} "
               f"spent; the next model call needs about {park.needed_tokens} tokens / "
               f"{park.needed_cost_usd:g} USD)"),
        error_type="budget_exceeded", level=park.level, kind=park.kind, limit=park.limit,
        spent=park.spent)



WarnKey = tuple[str, str, str, str, float]


class Budgets:
    """The app's spend limits: the server's and the agents' (today, UTC), each new session's
    default, the live sessions' gates, the reservations of the calls under way; it owns the
    tasks that recheck parked sessions (a catalog change, a new UTC day)."""

    def __init__(self, ledger: Ledger, clock: Clock, *, daily: BudgetLimit | None,
                 session_default: BudgetLimit | None,
                 agent_limit: Callable[[str], BudgetLimit | None],
                 agent_ids: Callable[[], list[str]] = list):
        self.ledger = ledger
        self.clock = clock
        self.daily = None if daily is None or daily.empty else daily
        self.session_default = session_default
        self.agent_limit = agent_limit
        self.agent_ids = agent_ids  # the agents there are (their limits show in /api/usage)
        self.sessions: dict[str, SessionBudget] = {}
        self._reserved = Spend()
        self._reserved_agents: dict[str, Spend] = {}
        self._warned: set[WarnKey] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def attach(self, session: SessionJournal, fail_queen: FailQueen, held: HeldHandle, *,
                     new: bool) -> SessionBudget:
        """The gate of a session starting (a new one gets the default limit)."""
        if new and self.session_default is not None and not self.session_default.empty:
            await session.save_meta(budget=self.session_default)
        budget = SessionBudget(self, session, fail_queen, held)
        self.sessions[session.id] = budget
        session.gate = budget
        return budget

    def detach(self, budget: SessionBudget) -> None:
        if self.sessions.get(budget.session.id) is budget:
            del self.sessions[budget.session.id]

    def get(self, session_id: str) -> SessionBudget:
        budget = self.sessions.get(session_id)
        if budget is None:
            raise SessionNotLive(session_id)
        return budget

    async def view_of(self, session_id: str) -> BudgetView | None:
        """A live session's limits (None when it is not live)."""
        budget = self.sessions.get(session_id)
        return None if budget is None else await budget.current_view()

    # -- limits ---------------------------------------------------------------------------------
    def applied(self, budget: SessionBudget) -> list[Applied]:
        meta, found = budget.session.meta, []
        if meta.budget is not None:
            found.append(Applied("session", meta.session_id, meta.budget, budget.spent(),
                                 budget.reserved))
        if meta.agent_id is not None and (limit := self.agent_limit(meta.agent_id)):
            found.append(self._agent(meta.agent_id, limit))
        if self.daily is not None:
            found.append(Applied("server", self.ledger.day, self.daily, self.ledger.total(),
                                 self._reserved))
        return found

    def _agent(self, agent_id: str, limit: BudgetLimit) -> Applied:
        return Applied("agent", agent_id, limit, self.ledger.agent(agent_id),
                       self._reserved_agents.get(agent_id, Spend()))

    def reserve(self, agent_id: str | None, spend: Spend) -> None:
        self._reserved = self._reserved + spend
        if agent_id is not None:
            self._reserved_agents[agent_id] = self._reserved_agents.get(agent_id, Spend()) + spend

    def release(self, agent_id: str | None, spend: Spend) -> None:
        self.reserve(agent_id, Spend() - spend)

    def warned(self, key: tuple[str, str, str, float]) -> bool:
        """True the first time a limit (of today) is warned about."""
        full = (self.ledger.day, *key)
        if full in self._warned:
            return False
        self._warned.add(full)
        return True

    def server_view(self) -> ServerBudgetView:
        """Today's server-wide limit and the limits of the agents that have one."""
        applied = [self._agent(agent_id, limit) for agent_id in self.agent_ids()
                   if (limit := self.agent_limit(agent_id)) is not None]
        if self.daily is not None:
            applied.append(Applied("server", self.ledger.day, self.daily, self.ledger.total(),
                                   self._reserved))
        return ServerBudgetView(day=self.ledger.day,
                                limits=[view for level in applied for view in level.views()])

    # -- rechecks -------------------------------------------------------------------------------
    async def recheck_all(self) -> None:
        """Resume every parked session whose refused call now fits."""
        for budget in [b for b in self.sessions.values() if b.park is not None]:
            try:
                await budget.recheck()
            except HiveError as exc:  # stopping meanwhile
                log.info("session %s: not resumed: %s", budget.session.id, exc)

    def recheck_soon(self, *_: object) -> None:
        """A limit may have changed (an agent.json reloaded): recheck in an owned task."""
        if any(b.park is not None for b in self.sessions.values()):
            self._spawn(self.recheck_all(), "budget-recheck")

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def start(self) -> None:
        await self.ledger.load()
        self._spawn(self._midnights(), "budget-midnight")

    async def _midnights(self) -> None:
        """At each UTC midnight the day's spend starts at 0: parked sessions may go on."""
        while True:
            now = self.clock.time()
            await self.clock.sleep_until(now - now % 86400 + 86400)
            try:
                await self.recheck_all()
            except Exception:  # a task boundary: the next midnight still comes
                log.exception("budget recheck at midnight failed")

    async def close(self) -> None:
        await cancel_and_wait(*self._tasks)
        await self.ledger.close()


def make_budgets(home: Path, clock: Clock, catalog: AgentCatalog, *, daily: BudgetLimit,
                 session_default: BudgetLimit, ledger: Ledger | None = None) -> Budgets:
    """The app's ``Budgets``: today's ledger (``ledger``, else the file one under
    ``home/budget``), agents' limits from their ``agent.json`` as the catalog has it now (an
    edit applies once reloaded)."""
    def agent_limit(agent_id: str) -> BudgetLimit | None:
        try:
            manifest = catalog.get(agent_id).manifest
        except NotFound:
            return None
        limit = manifest.budget if manifest is not None else None
        return None if limit is None or limit.empty else limit

    return Budgets(ledger or SpendLedger(home / "budget", clock), clock, daily=daily,
                   session_default=None if session_default.empty else session_default,
                   agent_limit=agent_limit,
                   agent_ids=lambda: [entry.agent_id for entry in catalog.entries()])
