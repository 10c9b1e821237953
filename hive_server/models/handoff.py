"""Handoff notes: what a session leaves for whoever picks it up next.

Built deterministically from the session's own events when it stops
(``services/journal/handoff.py``), stored as the ``session_summary`` event and as ``handoff``
in ``meta.json`` (so the history row and the export show it, live or cold). ``to_markdown``
and ``to_text`` render it; the export calls them.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import ConfigDict, Field

from hive_server.models.base import Model


class _Part(Model):
    model_config = ConfigDict(extra="ignore", frozen=True)


class HandoffDone(_Part):
    """What the session did, over its whole life (every run)."""

    turns: int = Field(0, description="queen executions started")
    turns_completed: int = 0
    turns_failed: int = 0
    turns_cancelled: int = 0
    tool_calls: int = Field(0, description="tool calls started, the queen's and workers'")
    tool_errors: int = 0
    workers_completed: int = 0
    workers_failed: int = 0


class HandoffInput(_Part):
    """An input received but not handled yet (it runs when the session resumes)."""

    seq: int
    source: str = Field(description="user or trigger")
    preview: str


class HandoffQuestion(_Part):
    """An ``ask_user`` question nobody answered (it is asked again at resume)."""

    seq: int
    prompts: list[str]


class HandoffTrigger(_Part):
    """A trigger that was armed when the session stopped."""

    trigger_id: str
    name: str
    trigger_type: str
    next_fire_at: int | None = Field(description="epoch ms; null when not scheduled")
    task: str


class HandoffPending(_Part):
    queued_inputs: list[HandoffInput] = Field(default_factory=list,
                                              description="the oldest ones, at most 10")
    queued_total: int = 0
    questions: list[HandoffQuestion] = Field(default_factory=list)
    triggers: list[HandoffTrigger] = Field(default_factory=list)


class HandoffFailure(_Part):
    seq: int
    at: str | None = Field(description="ISO 8601")
    kind: str = Field(description="execution or worker")
    error_type: str | None = None
    error: str


class HandoffDecision(_Part):
    """One of the queen's last replies: its text (a preview) and the tools it called."""

    seq: int
    text: str
    tools: list[str] = Field(default_factory=list)


class Handoff(_Part):
    reason: str = Field(description="why the session stopped: deleted, shutdown, agent_deleted")
    stopped_at: str = Field(description="ISO 8601")
    last_seq: int = Field(description="the last event before the summary")
    done: HandoffDone
    pending: HandoffPending
    failures: list[HandoffFailure] = Field(default_factory=list,
                                           description="the newest ones, at most 5")
    failures_total: int = 0
    last_decisions: list[HandoffDecision] = Field(default_factory=list,
                                                  description="the queen's last replies, "
                                                              "at most 3, oldest first")

    def to_markdown(self) -> str:
        return "\n".join(_lines(self, markdown=True)) + "\n"

    def to_text(self) -> str:
        return "\n".join(_lines(self, markdown=False)) + "\n"


def _lines(handoff: Handoff, *, markdown: bool) -> list[str]:
    head = "## Handoff" if markdown else "Handoff"
    item = "- " if markdown else "  * "
    out = [head, f"Stopped ({handoff.reason}) at {handoff.stopped_at}, after event "
                 f"{handoff.last_seq}.", ""]
    for title, lines in (("Done", _done(handoff.done)), ("Pending", _pending(handoff.pending)),
                         ("Failed", _failed(handoff)),
                         ("Last decisions", _decisions(handoff.last_decisions))):
        out.append(f"### {title}" if markdown else f"{title}:")
        out += [item + line for line in lines] or [item + "nothing"]
        out.append("")
    return out[:-1]


def _done(done: HandoffDone) -> list[str]:
    return [f"{done.turns} turns ({done.turns_completed} completed, {done.turns_failed} failed, "
            f"{done.turns_cancelled} cancelled)",
            f"{done.tool_calls} tool calls ({done.tool_errors} errors)",
            f"{done.workers_completed} workers finished, {done.workers_failed} failed"]


def _pending(pending: HandoffPending) -> list[str]:
    lines = [f"queued input #{i.seq} ({i.source}): {i.preview}" for i in pending.queued_inputs]
    if pending.queued_total > len(pending.queued_inputs):
        lines.append(f"... {pending.queued_total - len(pending.queued_inputs)} more queued")
    lines += [f"unanswered question #{q.seq}: {' / '.join(q.prompts)}"
              for q in pending.questions]
    lines += [f"trigger {t.trigger_id} ({t.trigger_type}) next fires "
              f"{_epoch_ms(t.next_fire_at)}: {t.task}" for t in pending.triggers]
    return lines


def _failed(handoff: Handoff) -> list[str]:
    lines = [f"#{f.seq} {f.kind} ({f.error_type or 'error'}): {f.error}"
             for f in handoff.failures]
    if handoff.failures_total > len(handoff.failures):
        lines.append(f"... {handoff.failures_total - len(handoff.failures)} earlier failures")
    return lines


def _decisions(decisions: list[HandoffDecision]) -> list[str]:
    return [f"#{d.seq}: {d.text or '(no text)'}"
            + (f" [called {', '.join(d.tools)}]" if d.tools else "") for d in decisions]


def _epoch_ms(value: int | None) -> str:
    if value is None:
        return "(not scheduled)"
    return datetime.fromtimestamp(value / 1000, UTC).isoformat()
