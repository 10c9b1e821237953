"""The LLM client protocol: stream one assistant turn.

Messages and content blocks use the Anthropic Messages shapes as plain dicts
(``{"role": "user"|"assistant", "content": str | [blocks]}``), because that is what the log
stores and what the real API takes. A client yields ``TextDelta`` items while the turn streams
and finishes with exactly one ``TurnResult``. Failures raise ``LLMError``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any, Protocol


@dataclasses.dataclass(slots=True, frozen=True)
class ToolSpec:
    """A tool as the model sees it."""

    name: str
    description: str
    input_schema: dict[str, Any]

    def to_api(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description,
                "input_schema": self.input_schema}


@dataclasses.dataclass(slots=True, frozen=True)
class TextDelta:
    text: str


@dataclasses.dataclass(slots=True, frozen=True)
class Usage:
    """Tokens of one turn (or a sum). ``input_tokens`` counts every input token, the cached
    ones included; ``cached_tokens`` of them were read from the prompt cache and
    ``cache_creation_tokens`` written to it."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cache_creation_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.input_tokens + other.input_tokens,
                     self.output_tokens + other.output_tokens,
                     self.cached_tokens + other.cached_tokens,
                     self.cache_creation_tokens + other.cache_creation_tokens)

    def to_dict(self) -> dict[str, int]:
        return {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens}


@dataclasses.dataclass(slots=True, frozen=True)
class TurnResult:
    """The whole assistant message of one turn."""

    content: list[dict[str, Any]]  # Anthropic content blocks: text / tool_use
    stop_reason: str | None
    usage: Usage
    model: str

    @property
    def tool_uses(self) -> list[dict[str, Any]]:
        return [b for b in self.content if b.get("type") == "tool_use"]

    @property
    def text(self) -> str:
        return "".join(b.get("text", "") for b in self.content if b.get("type") == "text")

    def message(self) -> dict[str, Any]:
        return {"role": "assistant", "content": self.content}


StreamItem = TextDelta | TurnResult


class LLMError(Exception):
    """A turn failed. ``error_type`` is the API's error type or a local one."""

    def __init__(self, message: str, *, error_type: str = "api_error", status: int | None = None,
                 retryable: bool = False):
        super().__init__(message)
        self.error_type = error_type
        self.status = status
        self.retryable = retryable


class LLMClient(Protocol):
    """Streams one assistant turn."""

    provider: str  # "anthropic" | "offline"
    default_model: str

    def stream_turn(
        self,
        *,
        system: str,
        messages: list[dict[str, Any]],
        tools: list[ToolSpec],
        model: str | None = None,
        max_tokens: int = 4096,
    ) -> AsyncIterator[StreamItem]:
        """Yield ``TextDelta``s then exactly one ``TurnResult``; raise ``LLMError`` on failure.

        Cancelling the consuming task must close any underlying HTTP stream promptly.
        """
        ...

    async def aclose(self) -> None: ...
