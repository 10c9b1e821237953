"""Queen profiles: ``queens/<queen_id>.yaml``.

A profile gives the session's interactive agent its persona. Unknown keys are kept (and shown
back) but play no part in the prompt. ``DEFAULT_QUEEN`` is used when no profile is installed.
"""

from __future__ import annotations

import re

from pydantic import ConfigDict, Field, JsonValue, field_validator

from hive_server.models.base import Model

QUEEN_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def is_queen_id(value: str) -> bool:
    return QUEEN_ID_RE.fullmatch(value) is not None


class QueenProfile(Model):
    """One queen persona. ``id`` is the file stem."""

    model_config = ConfigDict(extra="allow", frozen=True)

    id: str = Field(pattern=QUEEN_ID_RE.pattern)
    name: str = Field(min_length=1, max_length=200)
    title: str = ""
    core_traits: list[str] = Field(default_factory=list)
    skills: list[str] = Field(default_factory=list)
    model: str | None = None
    system_prompt: str | None = None
    examples: list[JsonValue] = Field(default_factory=list)

    @field_validator("core_traits", "skills", mode="before")
    @classmethod
    def _one_string_is_a_list(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    def system_prompt_text(self, colony: str | None = None) -> str:
        """The queen's system prompt; ``colony`` describes the loaded colony, if any."""
        who = f"You are {self.name}, {self.title}." if self.title else f"You are {self.name}."
        parts = [who]
        if self.core_traits:
            parts.append("Core traits: " + ", ".join(self.core_traits) + ".")
        if self.skills:
            parts.append("Skills: " + ", ".join(self.skills) + ".")
        if self.system_prompt:
            parts.append(self.system_prompt.strip())
        if colony:
            parts.append(f"Loaded colony: {colony.strip()}")
        return "\n\n".join(parts)


DEFAULT_QUEEN = QueenProfile(
    id="default",
    name="Queen",
    title="the coordinator of this hive",
    core_traits=["clear", "practical", "honest about what she does not know"],
    skills=["planning", "delegating tasks to workers", "summarising results"],
    system_prompt=(
        "You talk with the user, break their requests into tasks, run tools when they help, "
        "and hand work to the colony's workers when a colony is loaded. Keep answers short and "
        "say plainly what you did."),
)
