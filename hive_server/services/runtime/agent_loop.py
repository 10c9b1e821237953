"""One agent execution: model turns and tool calls until the model stops asking for tools.

Shared by the queen and the workers. Every step is an event on the session stream:
text deltas, ``llm_turn_complete`` (full assistant message + usage), ``tool_call_started`` /
``tool_call_completed`` (full result). Parallel tool calls run concurrently and their results
go back in the order of the ``tool_use`` blocks. A cancelled execution still records a result
for every call it started, so the conversation stays valid.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

from hive_server.errors.backend import UNRECORDABLE
from hive_server.llm.base import LLMClient, TextDelta, TurnResult, Usage
from hive_server.llm.pricing import cost_usd
from hive_server.models.event_data import (
    EventData,
    LlmTurnComplete,
    TextDeltaData,
    ToolCallCompleted,
    ToolCallStarted,
)
from hive_server.services.journal.journal import SessionJournal
from hive_server.services.journal.spend_gate import CallRequest
from hive_server.services.runtime.conversation import (
    Message,
    append_message,
    recent_window,
    tool_result_block,
)
from hive_server.services.tools.base import Tool, ToolError

log = logging.getLogger(__name__)
MAX_TOOL_ROUNDS = 20
MAX_TOKENS = 4096  # per model turn (the spend gate's estimate counts them all)
DELTA_INTERVAL = 0.05  # seconds between text-delta events of one stream
DELTA_MAX_CHARS = 2048
CONTEXT_CHARS = 400_000  # about 100k tokens of history sent per turn; older turns stay logged


@dataclasses.dataclass(slots=True)
class LoopContext:
    session: SessionJournal
    llm: LLMClient
    model: str
    stream_id: str
    execution_id: str
    delta_type: type[TextDeltaData]  # ClientOutputDelta (queen) or LlmTextDelta (workers)
    max_rounds: int = MAX_TOOL_ROUNDS
    max_tokens: int = MAX_TOKENS


@dataclasses.dataclass(slots=True)
class LoopOutcome:
    text: str
    turns: int
    usage: Usage


async def run_agent_loop(ctx: LoopContext, system: str, messages: list[Message],
                         tools: Mapping[str, Tool], first_iteration: int = 0) -> LoopOutcome:
    """Run turns, appending to ``messages``, until a turn asks for no tool.
    ``first_iteration``: the index of the first model turn (a resumed turn goes on counting)."""
    usage, turns, result = Usage(), 0, None
    specs = [tool.spec for tool in tools.values()]
    for iteration in range(first_iteration, first_iteration + ctx.max_rounds):
        result = await _one_turn(ctx, system, messages, specs, iteration)
        turns += 1
        usage = usage + result.usage
        if not result.tool_uses:
            break
        await _run_tools(ctx, result.tool_uses, tools, messages)
    return LoopOutcome(result.text if result else "", turns, usage)


class _Deltas:
    """Text deltas coalesced to at most one event per ``DELTA_INTERVAL`` (the first at once).

    Each event carries the new text and the snapshot so far (Hive's shape); coalescing keeps
    the log from growing with every token of a long reply.
    """

    def __init__(self, ctx: LoopContext, iteration: int):
        self.ctx = ctx
        self.iteration = iteration
        self.snapshot = ""
        self.pending = ""
        self.last: float | None = None

    def add(self, text: str) -> None:
        self.snapshot += text
        self.pending += text
        now = asyncio.get_running_loop().time()
        if (self.last is None or now - self.last >= DELTA_INTERVAL
                or len(self.pending) >= DELTA_MAX_CHARS):
            self.flush(now)

    def flush(self, now: float | None = None) -> None:
        if self.pending:
            _emit(self.ctx, self.ctx.delta_type(content=self.pending, snapshot=self.snapshot,
                                                iteration=self.iteration))
            self.pending = ""
            self.last = now if now is not None else asyncio.get_running_loop().time()


async def _one_turn(ctx: LoopContext, system: str, messages: list[Message],
                    specs: list[Any], iteration: int) -> TurnResult:
    """One model call, admitted by the session's spend gate first (``BudgetRefused`` when it
    would cross a limit) and settled with what it spent once its turn is logged."""
    window = recent_window(messages, CONTEXT_CHARS)
    ticket = await ctx.session.gate.admit(CallRequest(ctx.stream_id, system, window, specs,
                                                      ctx.model, ctx.max_tokens))
    result: TurnResult | None = None
    try:
        result = await _stream_turn(ctx, system, messages, window, specs, iteration)
    finally:
        ticket.settle(result)
    return result


async def _stream_turn(ctx: LoopContext, system: str, messages: list[Message],
                       window: list[Message], specs: list[Any], iteration: int) -> TurnResult:
    result: TurnResult | None = None
    deltas = _Deltas(ctx, iteration)
    monotonic = asyncio.get_running_loop().time  # latencies: not the (wall) Clock
    began, first = monotonic(), None
    stream = ctx.llm.stream_turn(system=system, messages=window, tools=specs,
                                 model=ctx.model, max_tokens=ctx.max_tokens)
    try:
        async with contextlib.aclosing(stream):
            async for item in stream:
                if isinstance(item, TextDelta):
                    first = monotonic() if first is None else first
                    deltas.add(item.text)
                else:
                    result = item
    finally:
        deltas.flush()
    if result is None:
        raise RuntimeError("the model stream ended without a result")
    append_message(messages, result.message())
    _emit(ctx, _turn_complete(result, iteration, monotonic() - began,
                              None if first is None else first - began))
    return result


def _turn_complete(result: TurnResult, iteration: int, latency: float,
                   ttft: float | None) -> LlmTurnComplete:
    """The ``llm_turn_complete`` payload: the message, usage, cost, latency and time to the
    first text token (monotonic seconds, stored in ms)."""
    usage = result.usage
    return LlmTurnComplete(
        message=result.message(), model=result.model, stop_reason=result.stop_reason,
        iteration=iteration, input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
        cached_tokens=usage.cached_tokens, cache_creation_tokens=usage.cache_creation_tokens,
        cost_usd=cost_usd(result.model, usage), latency_ms=round(latency * 1000, 3),
        ttft_ms=None if ttft is None else round(ttft * 1000, 3))


async def _run_tools(ctx: LoopContext, uses: list[dict[str, Any]], tools: Mapping[str, Tool],
                     messages: list[Message]) -> None:
    results: dict[str, dict[str, Any]] = {}
    try:
        async with asyncio.TaskGroup() as group:
            for use in uses:
                group.create_task(_call_tool(ctx, use, tools, results))
    finally:
        for use in uses:
            if use["id"] not in results:
                _record(ctx, use, "cancelled before it finished", True, results)
        append_message(messages, {"role": "user", "content": [results[u["id"]] for u in uses]})


async def _call_tool(ctx: LoopContext, use: dict[str, Any], tools: Mapping[str, Tool],
                     results: dict[str, dict[str, Any]]) -> None:
    name = use["name"]
    _emit(ctx, ToolCallStarted(tool_use_id=use["id"], tool_name=name,
                               tool_input=use.get("input", {})))
    tool = tools.get(name)
    if tool is None:
        _record(ctx, use, f"unknown tool {name!r}", True, results)
        return
    try:
        text, is_error = await tool.run(dict(use.get("input") or {})), False
    except ToolError as exc:
        text, is_error = str(exc), True
    except UNRECORDABLE:  # the session's log failed meanwhile: the turn ends, nothing to record
        raise
    except Exception as exc:  # a tool call is a task boundary: its bug is the model's error result
        log.exception("tool %s raised", name)
        text, is_error = f"{type(exc).__name__}: {exc}", True
    _record(ctx, use, text, is_error, results)


def _record(ctx: LoopContext, use: dict[str, Any], text: str, is_error: bool,
            results: dict[str, dict[str, Any]]) -> None:
    results[use["id"]] = tool_result_block(use["id"], text, is_error)
    _emit(ctx, ToolCallCompleted(tool_use_id=use["id"], tool_name=use["name"], result=text,
                                 is_error=is_error))


def _emit(ctx: LoopContext, payload: EventData) -> None:
    ctx.session.emit(payload, stream_id=ctx.stream_id, execution_id=ctx.execution_id)
