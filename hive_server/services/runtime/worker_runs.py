"""The workers a colony has run: the running ones and the most recent finished ones."""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from typing import Literal

RunStatus = Literal["running", "completed", "failed", "cancelled"]
KEEP_FINISHED = 200


@dataclasses.dataclass(slots=True)
class WorkerRun:
    worker_id: str
    worker: str  # the worker spec's name
    task: str
    started_at: float  # epoch seconds
    status: RunStatus = "running"
    finished_at: float | None = None
    result: str | None = None
    error: str | None = None

    def duration(self, now: float) -> float:
        return max(0.0, (self.finished_at or now) - self.started_at)


class WorkerRuns:
    """Every running worker and the last ``keep`` finished ones, oldest first."""

    def __init__(self, keep: int = KEEP_FINISHED) -> None:
        self.keep = keep
        self._runs: OrderedDict[str, WorkerRun] = OrderedDict()

    def start(self, worker_id: str, worker: str, task: str, now: float) -> WorkerRun:
        run = WorkerRun(worker_id, worker, task, now)
        self._runs[worker_id] = run
        return run

    def finish(self, run: WorkerRun, status: RunStatus, now: float, *,
               result: str | None = None, error: str | None = None) -> None:
        run.status, run.finished_at, run.result, run.error = status, now, result, error
        finished = [key for key, item in self._runs.items() if item.status != "running"]
        for key in finished[: max(0, len(finished) - self.keep)]:
            del self._runs[key]

    def all(self) -> list[WorkerRun]:
        return list(self._runs.values())
