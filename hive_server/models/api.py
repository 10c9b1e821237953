"""Request bodies of the HTTP API. Unknown keys are rejected so typos surface as 422."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, JsonValue


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class CreateSessionBody(_Body):
    session_id: str | None = Field(default=None, max_length=128)
    agent_id: str | None = Field(default=None, max_length=64)
    agent_path: str | None = Field(default=None, max_length=4096)
    model: str | None = Field(default=None, max_length=200)
    initial_prompt: str | None = None
    queen_name: str | None = Field(default=None, max_length=200)
    queen_resume_from: str | None = Field(default=None, max_length=128)
    initial_phase: str | None = Field(default=None, max_length=64)


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
