"""The agent folder manifest: ``agents/<agent_id>/agent.json``.

Unknown keys are ignored so that manifests written for Hive (or a newer version of this server)
still load. ``METADATA_FIELDS`` are the keys a client may patch over the API.
"""

from __future__ import annotations

import re

from pydantic import ConfigDict, Field

from hive_server.models.base import Model
from hive_server.models.budget import BudgetLimit

AGENT_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")

METADATA_FIELDS = frozenset({"name", "description", "goal", "icon", "tags", "category"})


def is_agent_id(value: str) -> bool:
    """True when ``value`` is a safe agent id (and so a safe single path segment)."""
    return AGENT_ID_RE.fullmatch(value) is not None


class WorkerSpec(Model):
    """A named worker the colony's queen can hand tasks to."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    description: str = ""
    system_prompt: str = ""
    tools: list[str] = Field(default_factory=list)


class AgentManifest(Model):
    """The content of ``agent.json``."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    goal: str = ""
    model: str | None = None
    system_prompt: str = ""
    tools: list[str] = Field(default_factory=list)
    workers: dict[str, WorkerSpec] = Field(default_factory=dict)
    max_parallel_workers: int = Field(default=4, ge=1, le=32)
    budget: BudgetLimit | None = Field(default=None, description="spend limit of the sessions "
                                       "running this agent together, per UTC day")
    icon: str | None = None
    tags: list[str] = Field(default_factory=list)
    category: str = "general"
