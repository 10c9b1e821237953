"""Response bodies of the HTTP API: agents, colonies, workers, triggers, webhook deliveries.

Like ``models/responses.py``: each model is the published schema of an answer and the way it
is serialised.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import ConfigDict, Field, JsonValue, RootModel

from hive_server.models.base import Model
from hive_server.models.trigger_events import TriggerOutcome


class Response(Model):
    """A response body, frozen once built; a key the model does not declare is a programming
    error."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    OMIT_NONE: ClassVar[bool] = False
    """Leave out keys whose value is None (optional keys of the wire shape)."""

    def wire_bytes(self) -> bytes:
        """The answer's bytes: compact UTF-8 JSON written by the model's own serializer
        (``model_dump_json`` would decode them to a str first)."""
        return self.__pydantic_serializer__.to_json(self, exclude_none=self.OMIT_NONE)


# -- agents ---------------------------------------------------------------------------------------
class WorkerEntry(Response):
    """Hive's ``WorkerEntry`` for a worker spec of an agent (none has run: no task)."""

    name: str
    task: str
    queen_name: str
    spawned_at: str
    description: str
    tool_count: int
    config_path: str
    colony_id: str


class AgentView(Response):
    """An agent folder that could not be loaded: the base keys and its ``error``."""

    agent_id: str
    path: str
    is_loaded: bool
    version: str
    valid: bool
    error: str | None
    has_triggers: bool
    has_readme: bool
    session_count: int
    run_count: int
    last_active: str | None = Field(description="ISO time of the last session using it")
    created_at: None


class ValidAgentView(AgentView):
    """A loadable agent folder in Hive's discover shape (plus our keys)."""

    name: str
    description: str
    goal: str
    category: str
    tags: list[str]
    icon: str | None
    model: str | None
    tool_count: int
    node_count: int
    worker_count: int
    worker_names: list[str]
    workers: list[WorkerEntry]
    tools: list[str]


class AgentList(Response):
    agents: list[ValidAgentView | AgentView]


class Discover(RootModel[dict[str, list[ValidAgentView]]]):
    """``GET /api/discover``: the valid agents by category, categories at the top level."""

    model_config = ConfigDict(frozen=True)


class AgentDeleted(Response):
    agent_id: str
    deleted: str
    purged: Literal[True]
    stopped_sessions: list[str]


# -- colonies and workers -------------------------------------------------------------------------
class ColonyView(Response):
    """A colony loaded in a session (``services/runtime/colony.py`` ``Colony.view``)."""

    agent_id: str
    name: str
    agent_path: str
    description: str
    goal: str
    version: str
    loaded_at: float = Field(description="epoch seconds")
    workers: list[str]
    tools: list[str]
    max_parallel_workers: int
    workers_running: int


class ColonyLoaded(Response):
    session_id: str
    colony: ColonyView


class ColonyUnloaded(Response):
    session_id: str
    agent_id: str
    unloaded: Literal[True]


class ColonyList(Response):
    session_id: str
    colonies: list[ColonyView]


class QueenStats(Response):
    busy: bool
    queued: int
    executions: int


class WorkerStats(Response):
    started: int
    completed: int
    failed: int
    running: int


RunStatus = Literal["running", "completed", "failed", "cancelled"]


class WorkerResult(Response):
    status: RunStatus
    summary: str
    error: str | None
    tokens_used: int
    duration_seconds: float


class WorkerView(Response):
    """One worker in the fields of Hive's ``LiveWorker`` and ``WorkerSummary``."""

    worker_id: str
    worker: str
    task: str
    goal: None
    status: RunStatus
    is_active: bool
    started_at: float
    finished_at: float | None
    duration_seconds: float
    result_status: RunStatus | None
    result_summary: str | None
    result: WorkerResult | None
    explicit_report: None
    task_summary: None
    batch: None


class WorkerList(Response):
    session_id: str
    workers: list[WorkerView]


# -- triggers and webhooks ------------------------------------------------------------------------
class TriggerCard(Response):
    """A trigger card: the ``trigger_*`` event fields plus ``id`` and ``error``. A
    triggers.json entry that could not be used has only its id, ``error`` and the defaults
    (nulls, inactive, never fired); every key is always sent."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    id: str | None
    trigger_id: str | None
    name: str | None
    trigger_type: Literal["timer", "webhook"] | None = None
    trigger_config: dict[str, JsonValue] | None = None
    task: str | None = None
    active: bool = False
    next_fire_in: float | None = Field(default=None, description="seconds; null when not armed")
    next_fire_at: int | None = Field(default=None, description="epoch ms; null when not armed")
    fire_count: int = 0
    last_fired_at: int | None = Field(default=None, description="epoch ms")
    source: Literal["folder", "api"]
    enabled: bool = False
    error: str | None
    last_outcome: TriggerOutcome | None = Field(
        default=None,
        description="what became of the latest fire or delivery: fired, coalesced (merged "
                    "into the pending input), held (webhook kept in the inbox), rejected "
                    "(webhook refused), failed (the queen could not take it), skipped "
                    "(misfire: skip)")
    last_outcome_at: int | None = Field(default=None, description="epoch ms")
    last_error: str | None = Field(default=None, description="the latest rejection or "
                                   "failure, '<code>: <message>'")
    last_error_at: int | None = Field(default=None, description="epoch ms")


class TriggerList(Response):
    session_id: str
    triggers: list[TriggerCard]


class EntryPoints(Response):
    session_id: str
    entry_points: list[TriggerCard]


class TriggerDeleted(Response):
    trigger_id: str
    deleted: Literal[True]


class TriggerRun(Response):
    trigger_id: str
    fired: Literal[True]
    seq: int
    trigger: TriggerCard


class WebhookReceipt(Response):
    """A delivery: taken (202), or ``duplicate`` (200, seen before), or ``held`` (202, no live
    session yet; delivered when one starts). Absent keys are left out, not null."""

    OMIT_NONE = True

    delivery_id: str
    delivered_to: list[str]
    duplicate: bool | None = None
    held: bool | None = None
