"""``PATCH /api/sessions/{id}``: a session's title and/or its own spend limit."""

from __future__ import annotations

from hive_server.errors import NotFound
from hive_server.errors.sessions import EmptyTitle
from hive_server.models.api import RenameSessionBody
from hive_server.models.budget import BudgetView
from hive_server.models.responses import SessionRenamed
from hive_server.models.session import SessionMeta
from hive_server.services.budget.budgets import Budgets, SessionBudget
from hive_server.services.sessions.manager import SessionManager
from hive_server.services.sessions.session import Session


async def patch_session(sessions: SessionManager, budgets: Budgets, session_id: str,
                        body: RenameSessionBody) -> SessionRenamed:
    """Apply the body. A live session's budget is set through its ``SessionBudget`` (a
    raised or cleared limit resumes a session it parked when the refused call now fits); a
    session on disk has it written into its ``meta.json``, applied when it is resumed."""
    budget = _live_budget(sessions, budgets, session_id) if body.budget_given else None
    if body.budget_given and budget is None:
        return _cold_answer(await sessions.edit_cold(session_id, _cold_changes(body)))
    title, live = None, budget is not None
    if body.title is not None:
        renamed = await sessions.rename(session_id, body.title)
        live = isinstance(renamed, Session)
        title = renamed.journal.meta.title if isinstance(renamed, Session) else renamed.title
    if budget is None:
        return SessionRenamed(session_id=session_id, title=title or "", live=live)
    await budget.set_limit(body.budget)
    return SessionRenamed(session_id=session_id, title=budget.session.meta.title or "",
                          live=True, budget=await budget.current_view())


def _live_budget(sessions: SessionManager, budgets: Budgets,
                 session_id: str) -> SessionBudget | None:
    """The live session's budget; None when it is only on disk (or not at all: the write
    then answers ``session_not_found``); 409 while it loads."""
    try:
        sessions.get(session_id)
    except NotFound:
        return None
    return budgets.get(session_id)


def _cold_changes(body: RenameSessionBody) -> dict[str, object]:
    changes: dict[str, object] = {"budget": None if body.budget is None or body.budget.empty
                                  else body.budget}
    if body.title is not None:
        if not body.title.strip():
            raise EmptyTitle()
        changes["title"] = body.title.strip()
    return changes


def _cold_answer(meta: SessionMeta) -> SessionRenamed:
    """A session on disk: its own limit as stored (what it spends against is counted once it
    is live again), and its park record when its budget stopped it."""
    view = BudgetView(status="budget_exceeded" if meta.budget_park else "ok",
                      session_budget=meta.budget, limits=[], parked=meta.budget_park)
    return SessionRenamed(session_id=meta.session_id, title=meta.title or "", live=False,
                          budget=view)
