"""Request bodies of the HTTP API. Unknown keys are rejected so typos surface as 422."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BeforeValidator, ConfigDict, Field, JsonValue, model_validator

from hive_server.models import contract
from hive_server.models.base import Model
from hive_server.models.budget import BudgetLimit
from hive_server.models.events import EventType
from hive_server.models.session import QueenPhase, normalize_phase
from hive_server.models.triggers import timer_schema, webhook_schema


class _Body(Model):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class OptionalBody:
    """Marks a body that may be left out: an empty request body reads as ``{}``
    (``web/body.py`` ``parse_json``) and the OpenAPI document says it is not required."""


def _phase(value: object) -> object:
    """Hive's phases (``independent`` | ``colony``); legacy names are normalised."""
    if isinstance(value, str):
        return normalize_phase(value) or value  # an unknown name fails the Literal: 422
    return value


Phase = Annotated[QueenPhase | None, BeforeValidator(_phase)]


# The published schema (``json_schema_extra``) is as strict as the services that check these
# fields further (their error codes are unchanged); see ``models/contract.py``.
AGENT_ID = Field(default=None, max_length=64,
                 json_schema_extra=contract.on_string(contract.AGENT_ID))
AGENT_PATH = Field(default=None, max_length=4096,
                   json_schema_extra=contract.on_string(contract.agent_path()))
NEW_SESSION_ID = Field(default=None, max_length=128,
                       json_schema_extra=contract.on_string(contract.NEW_SESSION_ID))
MESSAGE = contract.on_string(contract.message())


class CreateSessionBody(_Body, OptionalBody):
    """``colony_id`` is Hive's name for the agent id (an alias of ``agent_id``): give at most
    one of ``agent_id``, ``agent_path``, ``colony_id``. ``queen_resume_from`` names a session
    on disk; with ``session_id`` as well, both name the same one."""

    model_config = ConfigDict(json_schema_extra={"allOf": [
        contract.at_most_one("agent_id", "agent_path", "colony_id"),
        {"not": {"allOf": [contract.given("session_id"), contract.given("queen_resume_from")]}},
    ]})

    session_id: str | None = NEW_SESSION_ID
    agent_id: str | None = AGENT_ID
    agent_path: str | None = AGENT_PATH
    colony_id: str | None = AGENT_ID
    model: str | None = Field(default=None, max_length=200)
    initial_prompt: str | None = Field(default=None, json_schema_extra=MESSAGE)
    queen_name: str | None = Field(default=None, max_length=200)
    queen_resume_from: str | None = NEW_SESSION_ID
    initial_phase: Phase = None
    title: str | None = Field(default=None, max_length=200,
                              json_schema_extra=contract.on_string(contract.TITLE))

    @model_validator(mode="after")
    def _colony_is_the_agent(self) -> CreateSessionBody:
        if self.colony_id is None:
            return self
        if self.agent_path is not None:
            raise ValueError("colony_id names the agent: give it or agent_path, not both")
        if self.agent_id is not None and self.agent_id != self.colony_id:
            raise ValueError("colony_id and agent_id name different agents")
        self.agent_id = self.colony_id
        return self


class QueenSessionBody(Model, OptionalBody):
    """``POST /api/queen/{queen_id}/session`` and ``/session/new``. Other keys Hive's UI
    sends (``crm_setup``, ``park_others``, ...) are accepted and ignored."""

    model_config = ConfigDict(extra="ignore")

    initial_prompt: str | None = Field(default=None, json_schema_extra=MESSAGE)
    initial_phase: Phase = None


class SelectQueenSessionBody(Model):
    """``POST /api/queen/{queen_id}/session/select``. An empty or unsafe ``session_id`` is 400
    ``invalid_session_id``, as everywhere a session id is named."""

    model_config = ConfigDict(extra="ignore")

    session_id: str = Field(max_length=128,
                            json_schema_extra=contract.on_string(contract.SESSION_ID))


class ChatBody(_Body):
    message: str = Field(json_schema_extra=MESSAGE)
    display_message: str | None = Field(
        default=None, description="what the user's bubble shows when it is not `message` "
                                  "(Hive's UI sends it with attachments)")
    images: list[JsonValue] | None = Field(
        default=None, json_schema_extra={"maxItems": 0},
        description="attachments: not supported here; a non-empty list is 400 "
                    "images_not_supported")
    request_id: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9._:-]{1,128}$",
        description="with --redis: the client's id of this chat; sent again (to any node) "
                    "it is stored once and answers the first seq (kept an hour)")


class RenameSessionBody(_Body):
    """``PATCH /api/sessions/{id}``: a title that is not blank (400 ``empty_title``), kept
    without its surrounding whitespace, and/or the session's spend limit ``budget`` (a cold
    session stores it in its meta.json; ``null`` or ``{}`` clears it; raising or clearing
    it resumes a session parked by it). At least one of them (400 ``empty_patch``)."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    title: str = Field(default=None, max_length=200,  # type: ignore[assignment]  # absent: kept
                       json_schema_extra=contract.on_string(contract.TITLE))
    budget: BudgetLimit | None = Field(default=None, description="tokens and/or cost_usd; "
                                       "null clears the session's own limit")

    @model_validator(mode="before")
    @classmethod
    def _something(cls, data: object) -> object:
        if isinstance(data, dict) and not data:
            raise ValueError("give a title, a budget or both")
        return data

    @property
    def budget_given(self) -> bool:
        return "budget" in self.model_fields_set


ONE_AGENT = ConfigDict(json_schema_extra=contract.exactly_one("agent_id", "agent_path"))


class LoadColonyBody(_Body):
    """Exactly one of ``agent_id`` and ``agent_path``."""

    model_config = ONE_AGENT

    agent_id: str | None = AGENT_ID
    agent_path: str | None = AGENT_PATH


class DeleteAgentBody(_Body):
    """Exactly one of ``agent_id`` and ``agent_path``."""

    model_config = ONE_AGENT

    agent_id: str | None = AGENT_ID
    agent_path: str | None = AGENT_PATH


class AgentMetadataBody(_Body):
    """Exactly one of ``agent_id`` and ``agent_path``, and the fields to change."""

    model_config = ONE_AGENT

    agent_id: str | None = AGENT_ID
    agent_path: str | None = AGENT_PATH
    name: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=10_000)
    goal: str | None = Field(default=None, max_length=10_000)
    icon: str | None = Field(default=None, max_length=200)
    tags: list[str] | None = None
    category: str | None = Field(default=None, max_length=100)


class PatchTriggerBody(_Body):
    """``trigger_config`` must fit the trigger's own type (a timer's or a webhook's)."""

    task: str | None = Field(default=None, max_length=20_000,  # blank: 400 task_required
                             json_schema_extra=contract.on_string(contract.TITLE))
    trigger_config: dict[str, JsonValue] | None = Field(default=None, json_schema_extra={
        "anyOf": [timer_schema(), webhook_schema(), {"type": "null"}]})


class RunTriggerBody(_Body, OptionalBody):
    payload: JsonValue = None


# -- query strings (documented in GET /api/openapi.json; parsed by web/body.py int_query) ----------
MAX_QUERY_INT = 2**63 - 1
"""The largest integer documented for a query parameter (the server takes up to 20 digits;
a JSON document's integers stay within 64 bits)."""
_EVENT_TYPE = "|".join(t.value for t in EventType)


class HistoryQuery(Model):
    """``GET /api/sessions/{id}/events/history``: a page size, one cursor and the event types
    kept. Backward (the default) before ``before_seq`` (``before_index`` is Hive's name of it:
    give one of them) or ``before_offset`` (a byte offset); or forward after ``after_seq``
    (never with a ``before_*`` cursor). ``types``: comma-separated event types."""

    model_config = ConfigDict(json_schema_extra={"allOf": [
        {"not": {"required": ["before_seq", "before_index"]}},
        *({"not": {"required": ["after_seq", before]}}
          for before in ("before_seq", "before_index", "before_offset"))]})

    limit: int = Field(default=2000, ge=1, le=10_000)
    before_seq: int | None = Field(default=None, ge=1, le=MAX_QUERY_INT)
    before_index: int | None = Field(default=None, ge=1, le=MAX_QUERY_INT)
    before_offset: int | None = Field(default=None, ge=0, le=MAX_QUERY_INT)
    after_seq: int | None = Field(default=None, ge=0, le=MAX_QUERY_INT)
    types: str | None = Field(default=None, pattern=rf"^(?:{_EVENT_TYPE})(?:,(?:{_EVENT_TYPE}))*$")


class EventsQuery(Model):
    """``GET /api/sessions/{id}/events`` (SSE): resume after a seq (or ``Last-Event-ID``), and
    only some event types (comma-separated)."""

    after_seq: int | None = Field(default=None, ge=0, le=MAX_QUERY_INT)
    types: str | None = Field(default=None, pattern=rf"^(?:{_EVENT_TYPE})(?:,(?:{_EVENT_TYPE}))*$")


class ExportQuery(Model):
    """``GET /api/sessions/{id}/export``: the transcript's format (another one: 400
    ``invalid_format``)."""

    format: Literal["markdown", "text", "html", "jsonl"] = "markdown"
