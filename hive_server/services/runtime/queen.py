"""The queen: one task per session that consumes a bounded inbox and runs executions.

A message that arrives during an execution is recorded at once (``client_input_received``)
and handled next; nothing is dropped. ``ask_user`` parks the execution until the next chat,
which answers it. ``cancel`` ends the current execution (tool calls and workers included).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import uuid
from collections import deque
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any, Literal

from hive_server.core.tasks import cancel_and_wait
from hive_server.errors.backend import UNRECORDABLE, unrecordable
from hive_server.errors.sessions import InboxFull, SessionStopping
from hive_server.llm.base import LLMClient, LLMError, ToolSpec
from hive_server.models.event_data import (
    ClientInputCommitted,
    ClientInputReceived,
    ClientInputRequested,
    ClientOutputDelta,
    ExecutionCancelled,
    ExecutionCompleted,
    ExecutionFailed,
    ExecutionStarted,
    Question,
    QueueCleared,
    SessionSnapshot,
    ToolCallCompleted,
    UsageData,
)
from hive_server.models.events import Event
from hive_server.models.queen import QueenProfile
from hive_server.services.journal.journal import SessionJournal
from hive_server.services.journal.spend_gate import BudgetRefused
from hive_server.services.runtime.agent_loop import LoopContext, run_agent_loop
from hive_server.services.runtime.colony import Colony
from hive_server.services.runtime.conversation import (
    Message,
    append_message,
    tool_result_block,
    tool_uses,
)
from hive_server.services.runtime.open_turn import RESTART_RESULT, ParkedTurn
from hive_server.services.tools.base import Tool

log = logging.getLogger(__name__)

Source = Literal["user", "trigger"]


@dataclasses.dataclass(slots=True)
class InboxItem:
    text: str
    input_seq: int
    source: Source = "user"
    key: str | None = None  # trigger id: at most one pending per key
    coalesced: int = 0


class Queen:
    """``tools``: the session's own tools (built once); ``set_colony`` adds the colony's
    ``run_worker`` and its description in the system prompt while one is loaded."""

    def __init__(self, session: SessionJournal, llm: LLMClient, profile: QueenProfile, *,
                 inbox_size: int, tools: Mapping[str, Tool],
                 history: list[Message] | None = None):
        self.session = session
        self.llm = llm
        self.profile = profile
        self.inbox_size = inbox_size
        self.messages: list[Message] = history or []
        self._tools = tools
        self.colony: Colony | None = None  # the colony this queen directs (``set_colony``)
        self._inbox: deque[InboxItem] = deque()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._current: asyncio.Task[None] | None = None
        self._asking: tuple[int, asyncio.Future[str]] | None = None
        self._ask_lock = asyncio.Lock()  # parallel ask_user calls are asked one at a time
        self._stopped = False
        self._keep_open = False
        self._execution_id: str | None = None
        self._stale: ExecutionFailed | None = None  # how the current execution ends when cut
        self.executions = 0
        self.on_turn: Callable[[bool], None] | None = None  # an execution started/ended

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self, pending: Sequence[tuple[int, ClientInputReceived]] = (),
              parked: ParkedTurn | None = None) -> None:
        """Start the loop once the session is fully loaded (colony included).

        Inputs delivered before ``start`` wait in the inbox. ``pending`` are inputs recorded
        before a restart but never handled; they go first (they are the older ones).
        ``parked``: the turn the last run left waiting on a question; it is asked again and
        goes on with the answer before anything else.
        """
        self._inbox.extendleft(reversed([
            InboxItem(data.message, seq, data.source, data.trigger_id) for seq, data in pending]))
        self._task = asyncio.create_task(self._run(parked), name=f"queen:{self.session.id}")
        self._wakeup.set()

    async def stop(self) -> None:
        self._stopped = True
        # a turn parked on a question stays open in the log: the next start resumes it
        self._keep_open = self._asking is not None
        if self._task is None:
            return
        await cancel_and_wait(self._task)
        await self.cancel()
        self._task = None

    @property
    def busy(self) -> bool:
        return self._current is not None

    @property
    def may_stall(self) -> bool:
        """Running a turn that is not waiting for the user (the stale-turn watchdog's case)."""
        return self.busy and self._asking is None

    @property
    def pending(self) -> int:
        return len(self._inbox)

    def snapshot(self) -> SessionSnapshot:
        """Her state now, as the first frame of an SSE stream shows it."""
        return self.session.activity.snapshot(self.session.last_seq, len(self._inbox))

    # -- input ----------------------------------------------------------------------------------
    async def deliver(self, text: str, *, source: Source = "user", key: str | None = None,
                      trigger_seq: int | None = None, shown: str | None = None,
                      request_id: str | None = None) -> tuple[Event, bool]:
        """Record an input and queue it (or answer a pending ``ask_user``).

        ``shown``: what the user's bubble shows when it differs from what the queen gets
        (Hive's ``display_message``). Returns the ``client_input_received`` event (durable
        when this returns) and whether a trigger input was coalesced into one already pending.
        """
        if self._stopped or self.session.stopping:
            raise SessionStopping()
        if source == "user" and self._asking is not None:
            return await self._answer(text, shown, request_id), False
        if key is not None and (queued := self._pending_for(key)) is not None:
            queued.coalesced += 1
            event, stored = self._emit_input(text, source, key, trigger_seq,
                                             coalesced_into=queued.input_seq)
            await stored
            return event, True
        if len(self._inbox) >= self.inbox_size:
            raise InboxFull()
        event, stored = self._emit_input(text, source, key, trigger_seq, shown=shown,
                                         request_id=request_id)
        self._inbox.append(InboxItem(text, event.seq, source, key))
        self._wakeup.set()
        await stored
        return event, False

    def _pending_for(self, key: str) -> InboxItem | None:
        return next((item for item in self._inbox if item.key == key), None)

    def _emit_input(self, text: str, source: Source, key: str | None, trigger_seq: int | None,
                    coalesced_into: int | None = None, shown: str | None = None,
                    request_id: str | None = None) -> tuple[Event, asyncio.Future[None]]:
        content, queen_text = _said(text, source, shown)
        self.session.record_input(content or text, source)  # count, time, preview
        return self.session.emit(ClientInputReceived(
            content=content, text=queen_text, source=source, trigger_id=key,
            trigger_seq=trigger_seq, coalesced_into=coalesced_into, request_id=request_id),
            correlation_id=input_correlation(self.session.last_seq + 1))

    async def _answer(self, text: str, shown: str | None = None,
                      request_id: str | None = None) -> Event:
        assert self._asking is not None
        request_seq, future = self._asking
        self._asking = None  # one answer per question: a second chat is a new input
        content, queen_text = _said(text, "user", shown)
        event, stored = self.session.emit(
            ClientInputReceived(content=content, text=queen_text,
                                answers_request_seq=request_seq, request_id=request_id),
            execution_id=self._execution_id)
        self.session.record_input(content, "user")
        if not future.done():
            future.set_result(text)
        await stored
        return event

    async def fail_stale(self, seconds: float) -> bool:
        """Fail the current execution as stale (``execution_failed``, error_type ``stale``):
        cancelled like ``cancel`` (its tool calls and workers with it), but reported as a
        failure once it has unwound, so nothing it still emits comes after that failure."""
        if not self.may_stall:
            return False
        return await self.fail(ExecutionFailed(
            error=f"the turn produced no event for {seconds:g} s", error_type="stale"))

    async def fail(self, failed: ExecutionFailed) -> bool:
        """End the current execution as ``failed`` (its tool calls and workers cancelled,
        as by ``cancel``); True when one was running. The spend limit's way to stop a tree
        whose worker was refused a model call."""
        if not self.busy:
            return False
        self._stale = failed
        return await self.cancel()

    async def cancel(self) -> bool:
        """Cancel the current execution, if any; True when one was running."""
        current = self._current
        if current is None or current.done():
            return False
        current.cancel()
        self._asking = None  # its question goes with it: from now on a chat is a new input
        await asyncio.wait([current])
        return True

    async def clear_queue(self) -> Event:
        """Drop every input waiting for her (not the one she is working on); the
        ``queue_cleared`` event names them, so a cold resume does not queue them again."""
        seqs = [item.input_seq for item in self._inbox]
        self._inbox.clear()
        event, stored = self.session.emit(QueueCleared(dropped=len(seqs), input_seqs=seqs))
        await stored
        return event

    # -- the loop ---------------------------------------------------------------------------------
    async def _run(self, parked: ParkedTurn | None) -> None:
        if parked is not None:
            await self._watch(parked.execution_id, self._resume(parked))
        while True:
            while not self._inbox:
                self._wakeup.clear()
                await self._wakeup.wait()
            execution_id = self._begin(self._inbox.popleft())
            await self._watch(execution_id, self._execute(execution_id))

    async def _watch(self, execution_id: str, work: Coroutine[Any, Any, None]) -> None:
        """Run one execution as the current task until it ends."""
        self._stale = None
        self._current = current = asyncio.create_task(work)
        if self.on_turn is not None:
            self.on_turn(True)
        # A cancel can land before the task has taken its first step: the callback (not
        # the coroutine, which may never run) reports it, so every start has an end.
        current.add_done_callback(functools.partial(self._report_cancel, execution_id))
        # wait() does not cancel the execution when the loop itself is cancelled:
        # stop() cancels and awaits it through cancel().
        await asyncio.wait([current])
        self._current = None
        if self.on_turn is not None:
            self.on_turn(False)

    async def _resume(self, parked: ParkedTurn) -> None:
        """Ask a resumed turn's question again; the answer is its tool result, and the turn
        goes on from there."""
        self._execution_id = parked.execution_id
        answer = await self._ask(parked.questions, parked.iteration)
        self.session.emit(ToolCallCompleted(tool_use_id=parked.call_id, tool_name="ask_user",
                                            result=answer), execution_id=parked.execution_id)
        append_message(self.messages, resumed_results(self.messages, parked, answer))
        await self._execute(parked.execution_id, parked.iteration + 1)

    def _begin(self, item: InboxItem) -> str:
        """Start an execution: log it and put the input into the conversation."""
        execution_id = uuid.uuid4().hex
        self.executions += 1
        self._execution_id = execution_id
        # No execution_id: Hive's UI reads a committed input *of an execution* as a steer
        # that splits that execution's reply bubble; this input starts the execution.
        self.session.emit(ClientInputCommitted(seq=item.input_seq),
                          correlation_id=input_correlation(item.input_seq))
        self.session.emit(ExecutionStarted(trigger=item.source, input_seq=item.input_seq,
                                           coalesced=item.coalesced),
                          execution_id=execution_id)
        append_message(self.messages, {"role": "user", "content": item.text})
        return execution_id

    def _report_cancel(self, execution_id: str, task: asyncio.Task[None]) -> None:
        if task.cancelled() and not self._keep_open:
            with contextlib.suppress(*UNRECORDABLE):  # a failed or sealed log: nothing to add
                self.session.emit(self._stale or ExecutionCancelled(), execution_id=execution_id)

    async def _execute(self, execution_id: str, first_iteration: int = 0) -> None:
        emit = self.session.emit
        ctx = LoopContext(self.session, self.llm, self.session.meta.model, "queen",
                          execution_id, ClientOutputDelta)
        try:
            outcome = await run_agent_loop(ctx, self.system_prompt(), self.messages,
                                           self.tools(), first_iteration)
        except BudgetRefused as exc:  # a spend limit: the failure says which and how much
            emit(exc.failed, execution_id=execution_id)
            return
        except LLMError as exc:
            emit(ExecutionFailed(error=str(exc), error_type=exc.error_type),
                 execution_id=execution_id)
            return
        except Exception as exc:  # an execution is a task boundary: log it, fail it, go on
            if unrecordable(exc):  # nothing more can be logged: the turn just ends
                log.warning("session %s: execution %s ended: its log cannot be written (%s)",
                            self.session.id, execution_id, exc)
                return
            log.exception("session %s: execution failed", self.session.id)
            emit(ExecutionFailed(error=str(exc), error_type=type(exc).__name__),
                 execution_id=execution_id)
            return
        emit(ExecutionCompleted(turns=outcome.turns, usage=UsageData(
            input_tokens=outcome.usage.input_tokens, output_tokens=outcome.usage.output_tokens)),
             execution_id=execution_id)

    # -- prompt and tools -----------------------------------------------------------------------
    def set_colony(self, colony: Colony | None) -> None:
        """The colony loaded into the session (None: unloaded), from the next model call on."""
        self.colony = colony

    def system_prompt(self) -> str:
        colony = self.colony
        return self.profile.system_prompt_text(colony.describe() if colony is not None else None)

    def tools(self) -> dict[str, Tool]:
        workers = {} if self.colony is None else {"run_worker": self.colony.run_worker_tool()}
        return {**self._tools, **workers, "ask_user": Tool(ASK_USER_SPEC, self._ask_user)}

    async def _ask_user(self, args: dict[str, Any]) -> str:
        question = str(args.get("question") or "Please answer.")
        options = args.get("options")
        options = [str(o) for o in options] if isinstance(options, list) and options else None
        asked = Question(id=f"q-{uuid.uuid4().hex[:8]}", prompt=question, options=options)
        return await self._ask([asked], self.session.activity.iteration)

    async def _ask(self, questions: list[Question], iteration: int) -> str:
        """Ask and wait for the answer (the next user chat); one question at a time."""
        async with self._ask_lock:
            future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
            first = questions[0]
            if len(questions) == 1 and len(first.options or ()) < 2:
                # Hive's UI draws a question widget for two or more options only
                self.session.emit(ClientOutputDelta(
                    content=first.prompt, snapshot=first.prompt, iteration=iteration,
                    inner_turn=1), execution_id=self._execution_id)
            event, _ = self.session.emit(ClientInputRequested(questions=questions),
                                         execution_id=self._execution_id)
            self._asking = (event.seq, future)
            try:
                return await future
            finally:
                if self._asking is not None and self._asking[1] is future:
                    self._asking = None


def _said(text: str, source: Source, shown: str | None) -> tuple[str, str | None]:
    """``(content, text)`` of an input: ``content`` is the user's bubble (empty for a trigger,
    which Hive's UI shows as a banner), ``text`` what the queen gets when that differs."""
    if source != "user":
        return "", text
    if shown is None or shown == text:
        return text, None
    return shown, text


def input_correlation(seq: int) -> str:
    """The correlation id of an input: its ``client_input_received`` and the
    ``client_input_committed`` that takes it in share it (it survives a restart)."""
    return f"input-{seq}"


def resumed_results(messages: list[Message], parked: ParkedTurn, answer: str) -> Message:
    """The user turn that answers a resumed turn's calls, in the order of its tool_use blocks:
    the answer for the question, what was logged for the others (else interrupted)."""
    last = next((m for m in reversed(messages) if m.get("role") == "assistant"), None)
    uses = tool_uses(last) if last is not None else []
    if parked.call_id not in {use["id"] for use in uses}:
        return {"role": "user", "content": answer}  # the call is no longer in the window
    blocks = []
    for use in uses:
        if use["id"] == parked.call_id:
            blocks.append(tool_result_block(use["id"], answer, False))
        else:
            blocks.append(parked.results.get(use["id"])
                          or tool_result_block(use["id"], RESTART_RESULT, True))
    return {"role": "user", "content": blocks}


ASK_USER_SPEC = ToolSpec(
    name="ask_user",
    description="Ask the user a question and wait for the answer (their next chat message).",
    input_schema={"type": "object", "properties": {
        "question": {"type": "string"},
        "options": {"type": "array", "items": {"type": "string"},
                    "description": "choices to offer (the user may still answer freely)"}},
        "required": ["question"]},
)
