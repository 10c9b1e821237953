"""``PATCH /api/sessions/{id}``: a session's title and/or its own spend limit."""

from __future__ import annotations

from hive_server.models.api import RenameSessionBody
from hive_server.models.responses import SessionRenamed
from hive_server.services.budget import Budgets, SessionBudget
from hive_server.services.live_session import LiveSession
from hive_server.services.sessions import SessionManager


async def patch_session(sessions: SessionManager, budgets: Budgets, session_id: str,
                        body: RenameSessionBody) -> SessionRenamed:
    """Apply the body. A budget is set on a live session only (checked before anything
    changes); a raised or cleared limit resumes a session it parked when the refused call
    now fits."""
    budget = _live_budget(sessions, budgets, session_id) if body.budget_given else None
    title, live = None, budget is not None
    if body.title is not None:
        renamed = await sessions.rename(session_id, body.title)
        live = isinstance(renamed, LiveSession)
        title = renamed.session.meta.title if isinstance(renamed, LiveSession) else renamed.title
    if budget is None:
        return SessionRenamed(session_id=session_id, title=title or "", live=live)
    await budget.set_limit(body.budget)
    return SessionRenamed(session_id=session_id, title=budget.session.meta.title or "",
                          live=True, budget=await budget.current_view())


def _live_budget(sessions: SessionManager, budgets: Budgets, session_id: str) -> SessionBudget:
    """404 ``session_not_live`` for a cold session (409 while it loads)."""
    sessions.get(session_id)
    return budgets.get(session_id)
