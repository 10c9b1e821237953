"""Response bodies of the HTTP API: sessions, events, the queen, configuration.

Each model is both the published schema of its answer (``GET /api/openapi.json``) and the way
the answer is serialised (``web/body.py`` ``json_response``), so the two cannot drift. Agent,
colony, worker and trigger answers are in ``models/agent_views.py``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, JsonValue, RootModel

from hive_server.models.agent_views import Response, TriggerCard
from hive_server.models.budget import BudgetView
from hive_server.models.handoff import Handoff
from hive_server.models.queen import QueenProfile
from hive_server.models.session import CorruptSession, QueenPhase, SessionStatus, StateWarning


class ErrorBody(Response):
    """Every error answer (4xx, 5xx): a message and a stable code (``docs/api.md``); some
    codes add keys (``loading``, ``details``, ``parameter``, ...)."""

    model_config = ConfigDict(extra="allow")

    error: str
    code: str


class OpenApiDocument(Response):
    """``GET /api/openapi.json``: the OpenAPI 3.1 document of every route."""

    openapi: Literal["3.1.0"]
    info: dict[str, str]
    paths: dict[str, dict[str, JsonValue]]
    components: dict[str, dict[str, JsonValue]]


class LeaseHealth(Response):
    """The session leases of a node on Redis."""

    ttl_ms: int = Field(description="how long a lease outlives its owner's last renewal")
    renew_p50_ms: float | None = Field(description="median duration of this process's renew "
                                       "rounds, estimated from hive_lease_renew_seconds' "
                                       "buckets; null before the first round")
    lost: int = Field(description="leases this process gave up (taken over, lapsed or not "
                      "renewed in time): hive_leases_lost_total")


class Health(Response):
    status: Literal["ok"]
    version: str
    sessions: int
    agents_loaded: int
    provider: str
    model: str
    durability: Literal["fsync", "batch", "none"]
    resuming: int = Field(description="sessions live at the last stop and not resumed yet "
                          "(they answer 409 session_loading meanwhile); 0 once all are")
    node_id: str | None = Field(description="this node's id in the cluster (--node-id); null "
                                "without --redis")
    backend: Literal["file", "redis"] = Field(description="where sessions are kept: files "
                                              "under --home, or Redis (--redis)")
    sessions_owned: int = Field(description="sessions this node runs: the leases it holds "
                                "with Redis, the live sessions with files")
    lease: LeaseHealth | None = Field(description="this node's leases; null without --redis")


WARNINGS = ("files of the session found corrupt or unreadable and kept aside "
            "(<file>.corrupt-<UTC timestamp>), never overwritten")


# -- sessions -------------------------------------------------------------------------------------
class LiveSessionView(Response):
    """A live session (``POST /api/sessions``, ``GET /api/sessions``)."""

    session_id: str
    colony_id: str | None
    colony_name: str | None
    has_worker: bool
    agent_path: str = Field(description="'' without a colony (Hive's UI calls .endsWith on it)")
    description: str
    goal: str
    node_count: int
    loaded_at: float = Field(description="epoch seconds")
    uptime_seconds: float
    intro_message: str
    queen_phase: QueenPhase
    queen_id: str
    queen_name: str
    colony_spawned: bool
    spawned_colony_id: None
    model: str
    last_seq: int
    created_at: str
    title: str | None = None
    status: SessionStatus
    last_error: str | None = None
    last_active_at: str = Field(description="ISO 8601: the last input or status change")
    last_message: str | None = None
    message_count: int | None = None
    live: Literal[True]
    cold: Literal[False]
    warnings: list[StateWarning] = Field(default_factory=list, description=WARNINGS)


class LiveSessionDetail(LiveSessionView):
    """``GET /api/sessions/{id}`` of a live session: with its entry points (trigger cards)."""

    entry_points: list[TriggerCard]


class _SessionOnDisk(Response):
    """The fields a session's ``meta.json`` gives both the cold view and the history row."""

    session_id: str
    colony_id: str | None
    agent_path: str
    queen_id: str
    queen_name: str
    queen_phase: QueenPhase
    colony_spawned: bool
    spawned_colony_id: None
    model: str
    status: SessionStatus
    last_error: str | None = Field(default=None, description="the last failed turn's error")
    first_message: str | None = Field(default=None, description="preview of the first user "
                                                                "message")
    updated_at: str
    stopped_at: str | None
    last_seq: int
    title: str | None = None
    warnings: list[StateWarning] = Field(default_factory=list, description=WARNINGS)
    handoff: Handoff | None = Field(default=None, description="the handoff notes of the last "
                                    "stop (session_summary); null before the first stop")


class ColdSessionView(_SessionOnDisk):
    """``GET /api/sessions/{id}`` of a session on disk that is not live."""

    created_at: str
    live: Literal[False]
    cold: Literal[True]


class RemoteSessionView(_SessionOnDisk):
    """``GET /api/sessions/{id}`` of a session live on another node (``--redis``): its meta as
    Redis holds it (the owner writes it), ``node_id`` the owner (null while a takeover is under
    way)."""

    created_at: str
    live: Literal[True]
    cold: Literal[False]
    node_id: str | None


class HistoryRow(_SessionOnDisk):
    """A row of ``GET /api/sessions/history``: times in epoch seconds, as Hive's UI reads."""

    created_at: float
    live: bool
    cold: bool
    last_active_at: float
    last_message: str | None
    has_messages: bool
    message_count: int | None
    agent_name: None


class SessionLoading(Response):
    """202: the session is being started or resumed; ask again."""

    session_id: str
    loading: Literal[True]


class LiveSessions(Response):
    sessions: list[LiveSessionView | RemoteSessionView]  # remote: on another node (--redis)


class SessionHistory(Response):
    """Sessions, newest activity first: a page (``total`` matching; ``next_cursor`` for the
    next page, None on the last one)."""

    sessions: list[HistoryRow]
    total: int
    next_cursor: str | None = None
    corrupt: list[CorruptSession] = Field(
        default_factory=list, description="sessions whose meta.json is corrupt or unreadable "
        "(kept aside): they cannot be opened; DELETE /api/sessions/history/{id} removes one")


class SessionDeleted(Response):
    session_id: str
    deleted: str


class SessionRenamed(Response):
    """``PATCH /api/sessions/{id}``: the title as kept, whether the session is live, and
    its spend limits now (live sessions)."""

    session_id: str
    title: str
    live: bool
    budget: BudgetView | None = Field(default=None, description="a live session's limits, "
                                      "what is spent and left, and whether it is parked")


class SessionStopped(Response):
    session_id: str
    stopped: Literal[True]


class Presence(Response):
    ok: Literal[True]
    resumed: Literal[False]
    session_id: str


class TaskList(Response):
    """Hive's task list (always empty: there are no task tools)."""

    session_id: str
    role: Literal["session"]
    meta: None
    tasks: list[JsonValue]


# -- events and the queen -------------------------------------------------------------------------
class EventView(Response):
    """The event envelope (``models/events.py`` ``Event``); ``data`` by type in
    ``GET /api/events/schema``."""

    seq: int
    type: str
    session_id: str
    stream_id: str
    node_id: str
    execution_id: str | None
    correlation_id: str | None
    colony_id: str | None
    timestamp: str
    data: dict[str, JsonValue]


class EventPage(Response):
    """A page of a session's event log, backward or forward (``after_seq``), maybe filtered
    by type (``web/history.py``; the keys' meanings: ``services/sessions/event_history.py``)."""

    events: list[EventView]
    session_id: str
    total: int = Field(description="the session's last seq (whatever the filters)")
    returned: int
    truncated: bool = Field(description="more matching events lie beyond the page in its "
                            "direction (older; newer for an after_seq page)")
    limit: int
    start_index: int | None = Field(description="the first event's seq")
    start_offset: int | None = Field(description="byte offset of its line in events.jsonl")
    has_more_older: bool = Field(description="an older matching event exists")


class EventSchemas(Response):
    envelope: list[str]
    types: dict[str, JsonValue]


class ChatAccepted(Response):
    status: Literal["accepted"]
    delivered: Literal[True]
    seq: int = Field(description="seq of the client_input_received event")
    queued: int


class Cancelled(Response):
    session_id: str
    cancelled: bool


class QueueDropped(Response):
    """``DELETE /api/sessions/{id}/queue``: the inputs that were waiting for the queen."""

    session_id: str
    dropped: int = Field(description="how many queued inputs were dropped")
    input_seqs: list[int] = Field(description="their client_input_received seqs")
    seq: int = Field(description="the seq of the queue_cleared event")


class QueenCard(Response):
    id: str
    name: str
    title: str
    has_avatar: bool
    custom: bool


class InvalidQueen(Response):
    id: str
    error: str


class QueenProfiles(Response):
    queens: list[QueenCard]
    profiles: list[QueenProfile]
    invalid: list[InvalidQueen]


class QueenProfileView(Response):
    """A profile as Hive's profile panel reads it (``id, name, title, summary``), plus ours;
    the profile file's other keys are kept."""

    model_config = ConfigDict(extra="allow")

    id: str
    name: str
    title: str
    core_traits: list[str]
    skills: str = Field(description="Hive's comma-joined text (the list: skill_list)")
    model: str | None
    system_prompt: str | None
    examples: list[JsonValue]
    summary: str
    has_avatar: bool
    experience: list[JsonValue]
    skill_list: list[str]


class QueenSession(Response):
    """``POST /api/queen/{id}/session`` (``/new``, ``/select``); ``colony_id`` only for a
    colony session."""

    OMIT_NONE = True

    session_id: str
    queen_id: str
    status: Literal["live", "resumed", "created", "colony"]
    colony_id: str | None = None


# -- configuration ------------------------------------------------------------------------------
class LlmConfig(Response):
    provider: str
    model: str
    has_api_key: bool
    max_tokens: int | None
    max_context_tokens: int
    connected_providers: list[str]
    active_subscription: None
    detected_subscriptions: list[str]
    subscriptions: list[str]
    api_base: str | None
    api_key_env_var: str | None


class ModelOption(Response):
    id: str
    label: str
    recommended: bool
    max_tokens: int | None
    max_context_tokens: int


class ModelList(Response):
    models: dict[str, list[ModelOption]]


class DataTables(Response):
    tables: list[JsonValue]



class SessionAnswer(RootModel[LiveSessionDetail | ColdSessionView | RemoteSessionView]):
    """``GET /api/sessions/{id}``: the live session, the one on disk, or (``--redis``) one
    another node runs."""

    model_config = ConfigDict(frozen=True)
