"""An ``LLMClient`` that counts what the client it wraps does: turns by outcome, tokens by
kind, and each turn's duration (read by ``GET /metrics``)."""

from __future__ import annotations

import time
from collections import Counter as Tally
from collections.abc import AsyncIterator
from typing import Any

from hive_server.core.stats import LATENCY_BUCKETS, Histogram
from hive_server.llm.base import LLMClient, LLMError, StreamItem, ToolSpec, TurnResult

TOKEN_KINDS = ("input_tokens", "output_tokens", "cached_tokens", "cache_creation_tokens")


class MeteredLLM:
    """Delegates every turn to ``inner``; ``turns`` counts outcomes (``ok``, the
    ``LLMError.error_type``, ``cancelled``), ``tokens`` sums ``Usage`` by kind and
    ``seconds`` holds the duration of every finished turn."""

    def __init__(self, inner: LLMClient):
        self.inner = inner
        self.provider = inner.provider
        self.default_model = inner.default_model
        self.turns: Tally[str] = Tally()
        self.tokens: Tally[str] = Tally()
        self.seconds = Histogram(LATENCY_BUCKETS)

    async def stream_turn(self, *, system: str, messages: list[dict[str, Any]],
                          tools: list[ToolSpec], model: str | None = None,
                          max_tokens: int = 4096) -> AsyncIterator[StreamItem]:
        started = time.perf_counter()
        outcome = "cancelled"  # a consumer that stops early (the turn was stopped)
        try:
            async for item in self.inner.stream_turn(system=system, messages=messages,
                                                     tools=tools, model=model,
                                                     max_tokens=max_tokens):
                if isinstance(item, TurnResult):
                    outcome = "ok"
                    self._count_tokens(item)
                yield item
        except LLMError as exc:
            outcome = exc.error_type
            raise
        finally:
            self.turns[outcome] += 1
            self.seconds.observe(time.perf_counter() - started)

    def _count_tokens(self, result: TurnResult) -> None:
        for kind in TOKEN_KINDS:
            self.tokens[kind] += getattr(result.usage, kind)

    async def aclose(self) -> None:
        await self.inner.aclose()
