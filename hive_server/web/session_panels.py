"""The side panels of Hive's chat pages: presence, tasks, workers.

None of them 404s a session that exists (live or on disk); Hive's UI ignores their errors,
but an answer keeps its panels quiet. We have no task lists: ``tasks`` is always empty.
"""

from __future__ import annotations

from aiohttp import web

from hive_server import keys
from hive_server.models.agent_views import WorkerList, WorkerResult, WorkerView
from hive_server.models.responses import Presence, TaskList
from hive_server.services.runtime.worker_runs import WorkerRun
from hive_server.services.sessions.lookup import live_or_cold
from hive_server.web.body import json_response
from hive_server.web.openapi import doc

routes = web.RouteTableDef()


@routes.post("/api/sessions/{session_id}/presence")
@doc(response=Presence)
async def presence(request: web.Request) -> web.Response:
    """The user (re)entered the chat. Nothing is frozen here, so nothing resumes."""
    session_id = request.match_info["session_id"]
    await live_or_cold(request.app[keys.SESSIONS], session_id)
    return json_response(Presence(ok=True, resumed=False, session_id=session_id))


@routes.get("/api/sessions/{session_id}/tasks")
@doc(response=TaskList)
async def tasks(request: web.Request) -> web.Response:
    """The session's task list in Hive's shape (always empty: there are no task tools)."""
    session_id = request.match_info["session_id"]
    await live_or_cold(request.app[keys.SESSIONS], session_id)
    return json_response(TaskList(session_id=session_id, role="session", meta=None, tasks=[]))


@routes.get("/api/sessions/{session_id}/workers")
@doc(response=WorkerList)
async def workers(request: web.Request) -> web.Response:
    """The colony's running and recent finished workers (none for a cold session)."""
    session_id = request.match_info["session_id"]
    live = await live_or_cold(request.app[keys.SESSIONS], session_id)
    runs = live.colony.runs.all() if live is not None and live.colony is not None else []
    now = request.app[keys.CLOCK].time()
    return json_response(WorkerList(session_id=session_id,
                                    workers=[worker_view(run, now) for run in runs]))


def worker_view(run: WorkerRun, now: float) -> WorkerView:
    """One worker in the fields of Hive's ``LiveWorker`` and ``WorkerSummary``."""
    duration = round(run.duration(now), 3)
    finished = run.status != "running"
    summary = run.result if run.status == "completed" else run.error
    return WorkerView(
        worker_id=run.worker_id, worker=run.worker, task=run.task, goal=None,
        status=run.status, is_active=not finished, started_at=run.started_at,
        finished_at=run.finished_at, duration_seconds=duration,
        result_status=run.status if finished else None,
        result_summary=summary if finished else None,
        result=WorkerResult(status=run.status, summary=run.result or "", error=run.error,
                            tokens_used=0, duration_seconds=duration) if finished else None,
        explicit_report=None, task_summary=None, batch=None,
    )
