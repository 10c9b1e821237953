"""Request bodies of the HTTP API. Unknown keys are rejected so typos surface as 422."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, JsonValue, model_validator

from hive_server.models.session import QueenPhase, normalize_phase


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


def _phase(value: object) -> object:
    """Hive's phases (``independent`` | ``colony``); legacy names are normalised."""
    if isinstance(value, str):
        return normalize_phase(value) or value  # an unknown name fails the Literal: 422
    return value


Phase = Annotated[QueenPhase | None, BeforeValidator(_phase)]


class CreateSessionBody(_Body):
    """``colony_id`` is Hive's name for the agent id (an alias of ``agent_id``)."""

    session_id: str | None = Field(default=None, max_length=128)
    agent_id: str | None = Field(default=None, max_length=64)
    agent_path: str | None = Field(default=None, max_length=4096)
    colony_id: str | None = Field(default=None, max_length=64)
    model: str | None = Field(default=None, max_length=200)
    initial_prompt: str | None = None
    queen_name: str | None = Field(default=None, max_length=200)
    queen_resume_from: str | None = Field(default=None, max_length=128)
    initial_phase: Phase = None

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


class QueenSessionBody(BaseModel):
    """``POST /api/queen/{queen_id}/session`` and ``/session/new``. Other keys Hive's UI
    sends (``crm_setup``, ``park_others``, ...) are accepted and ignored."""

    model_config = ConfigDict(extra="ignore")

    initial_prompt: str | None = None
    initial_phase: Phase = None


class SelectQueenSessionBody(BaseModel):
    """``POST /api/queen/{queen_id}/session/select``. An empty or unsafe ``session_id`` is 400
    ``invalid_session_id``, as everywhere a session id is named."""

    model_config = ConfigDict(extra="ignore")

    session_id: str = Field(max_length=128)


class ChatBody(_Body):
    message: str


class LoadColonyBody(_Body):
    agent_id: str | None = Field(default=None, max_length=64)
    agent_path: str | None = Field(default=None, max_length=4096)


class DeleteAgentBody(_Body):
    agent_id: str | None = Field(default=None, max_length=64)
    agent_path: str | None = Field(default=None, max_length=4096)


class AgentMetadataBody(_Body):
    agent_id: str | None = Field(default=None, max_length=64)
    agent_path: str | None = Field(default=None, max_length=4096)
    name: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=10_000)
    goal: str | None = Field(default=None, max_length=10_000)
    icon: str | None = Field(default=None, max_length=200)
    tags: list[str] | None = None
    category: str | None = Field(default=None, max_length=100)


class PatchTriggerBody(_Body):
    task: str | None = Field(default=None, max_length=20_000)
    trigger_config: dict[str, JsonValue] | None = None


class RunTriggerBody(_Body):
    payload: JsonValue = None
