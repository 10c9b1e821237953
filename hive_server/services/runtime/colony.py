"""A colony: one agent folder loaded into a session, and the workers it runs.

The colony pins the ``AgentEntry`` it was loaded from (a catalog reload does not change it
until the colony is unloaded and loaded again). The queen gets a ``run_worker(task, worker?)``
tool; each call runs one worker agent loop on its own stream (``worker:<id>``), at most
``max_parallel_workers`` at a time. A worker runs inside the queen's tool call, so cancelling
the queen's execution (or stopping the session) cancels it and nothing is left running.
"""

from __future__ import annotations

import asyncio
import dataclasses

from hive_server.core.clock import Clock
from hive_server.errors.backend import unrecordable
from hive_server.llm.base import LLMClient, ToolSpec
from hive_server.models.agent import AgentManifest, WorkerSpec
from hive_server.models.agent_views import ColonyView
from hive_server.models.event_data import (
    LlmTextDelta,
    WorkerCompleted,
    WorkerFailed,
    WorkerStarted,
)
from hive_server.services.catalog.agent_folder import AgentEntry
from hive_server.services.catalog.agents import AgentCatalog
from hive_server.services.journal.journal import SessionJournal
from hive_server.services.runtime.agent_loop import LoopContext, run_agent_loop
from hive_server.services.runtime.worker_ids import WorkerIds
from hive_server.services.runtime.worker_runs import WorkerRuns
from hive_server.services.tools.base import Tool, ToolError, bind_tools, tool_from_function
from hive_server.services.tools.builtins import builtin_tools

DEFAULT_WORKER = "default"


@dataclasses.dataclass(slots=True)
class WorkerStats:
    started: int = 0
    completed: int = 0
    failed: int = 0
    running: int = 0


class Colony:
    def __init__(self, session: SessionJournal, entry: AgentEntry, llm: LLMClient,
                 clock: Clock, *, ids: WorkerIds,
                 model_override: str | None = None):
        assert entry.manifest is not None, "a colony loads a valid entry (catalog.get_valid)"
        self.session = session
        self.entry = entry
        self.manifest: AgentManifest = entry.manifest
        self.llm = llm
        self.model = model_override or self.manifest.model or session.meta.model
        self.available = {**builtin_tools(session.workspace, clock),
                          **bind_tools(entry.tools, session.workspace)}
        self.workers = self._worker_specs()
        self._tools = {name: self._select(spec.tools) for name, spec in self.workers.items()}
        self._slots = asyncio.Semaphore(self.manifest.max_parallel_workers)
        self._ids = ids  # the session's: ids never repeat in its log
        self.stats = WorkerStats()
        self.runs = WorkerRuns()  # for GET .../workers
        self._clock = clock
        self._run_worker_tool = self._build_run_worker_tool()

    @property
    def agent_id(self) -> str:
        return self.entry.agent_id

    def _worker_specs(self) -> dict[str, WorkerSpec]:
        default = WorkerSpec(description=self.manifest.description,
                             system_prompt=self.manifest.system_prompt, tools=self.manifest.tools)
        return {DEFAULT_WORKER: default, **self.manifest.workers}

    def _select(self, names: list[str]) -> dict[str, Tool]:
        """The named tools (the catalog has checked that each exists); every tool the agent
        has when the list is empty."""
        if not names:
            return dict(self.available)
        return {name: self.available[name] for name in names}

    def describe(self) -> str:
        workers = ", ".join(f"{name} ({spec.description or 'no description'})"
                            for name, spec in self.workers.items())
        return (f"{self.manifest.name}: {self.manifest.description} Goal: {self.manifest.goal} "
                f"Hand tasks to its workers with run_worker. Workers: {workers}.")

    def run_worker_tool(self) -> Tool:
        """The queen's ``run_worker`` tool (built once: its arguments are validated like any
        tool's, so a misspelt or extra argument is an error result, never ignored)."""
        return self._run_worker_tool

    def _build_run_worker_tool(self) -> Tool:
        spec = ToolSpec(
            name="run_worker",
            description=(f"Run a worker of the {self.manifest.name} colony on a task and return "
                         f"its result. Up to {self.manifest.max_parallel_workers} run in "
                         "parallel when you call this tool several times in one turn."),
            input_schema={"type": "object", "properties": {
                "task": {"type": "string", "description": "what the worker should do"},
                "worker": {"type": "string", "enum": sorted(self.workers),
                           "description": "which worker (default: the agent itself)"},
            }, "required": ["task"], "additionalProperties": False},
        )
        return Tool(spec, tool_from_function(self._run_worker_call, name="run_worker").run)

    async def _run_worker_call(self, task: str, worker: str | None = None) -> str:
        """Check the arguments, then run the worker."""
        worker = worker or DEFAULT_WORKER
        if not task.strip():
            raise ToolError("run_worker needs a non-empty task")
        if worker not in self.workers:
            raise ToolError(f"unknown worker {worker!r}; known: {sorted(self.workers)}")
        return await self.run_worker(task.strip(), worker)

    async def run_worker(self, task: str, worker: str = DEFAULT_WORKER) -> str:
        """Run one worker to completion; its failure raises ToolError for the queen."""
        async with self._slots:
            worker_id = self._ids.next(worker)
            run = self.runs.start(worker_id, worker, task, self._clock.time())
            try:
                result = await self._run(worker_id, worker, task)
            except asyncio.CancelledError:
                self.runs.finish(run, "cancelled", self._clock.time(), error="cancelled")
                raise
            except ToolError as exc:
                self.runs.finish(run, "failed", self._clock.time(), error=str(exc))
                raise
            self.runs.finish(run, "completed", self._clock.time(), result=result)
            return result

    async def _run(self, worker_id: str, worker: str, task: str) -> str:
        stream_id = f"worker:{worker_id}"
        emit = self.session.emit
        emit(WorkerStarted(worker_id=worker_id, worker=worker, task=task), stream_id=stream_id)
        self.stats.started += 1
        self.stats.running += 1
        ctx = LoopContext(self.session, self.llm, self.model, stream_id, worker_id,
                          LlmTextDelta)
        try:
            outcome = await run_agent_loop(ctx, self._system(worker),
                                           [{"role": "user", "content": task}],
                                           self._tools[worker])
        except asyncio.CancelledError:
            self._failed(stream_id, worker_id, worker, "cancelled")
            raise
        except Exception as exc:  # a worker is a task boundary: its failure is the queen's result
            if unrecordable(exc):  # the session's log failed meanwhile: nothing to record
                raise
            self._failed(stream_id, worker_id, worker, f"{type(exc).__name__}: {exc}")
            raise ToolError(f"worker {worker_id} failed: {exc}") from exc
        finally:
            self.stats.running -= 1
        self.stats.completed += 1
        emit(WorkerCompleted(worker_id=worker_id, worker=worker, result=outcome.text,
                             turns=outcome.turns), stream_id=stream_id)
        return outcome.text or "(the worker returned no text)"

    def _failed(self, stream_id: str, worker_id: str, worker: str, error: str) -> None:
        self.stats.failed += 1
        self.session.emit(WorkerFailed(worker_id=worker_id, worker=worker, error=error),
                          stream_id=stream_id)

    def _system(self, worker: str) -> str:
        spec = self.workers[worker]
        goal = f"\n\nGoal of the colony: {self.manifest.goal}" if self.manifest.goal else ""
        return (spec.system_prompt or self.manifest.system_prompt or
                f"You are a worker of {self.manifest.name}.") + goal

    def view(self) -> ColonyView:
        return ColonyView(
            agent_id=self.agent_id, name=self.manifest.name, agent_path=str(self.entry.path),
            description=self.manifest.description, goal=self.manifest.goal,
            version=self.entry.version, loaded_at=self.entry.loaded_at,
            workers=sorted(self.workers), tools=sorted(self.available),
            max_parallel_workers=self.manifest.max_parallel_workers,
            workers_running=self.stats.running)


def find_agent(catalog: AgentCatalog, agent_id: str | None, agent_path: str | None) -> AgentEntry:
    """The loadable catalog entry named by ``agent_id`` or ``agent_path`` (one of them)."""
    return catalog.get_valid(catalog.lookup(agent_id, agent_path).agent_id)
