"""Putting a live session together (for ``SessionManager``): what a new one is made from
(``NewSession``), the server-wide options, and its parts.

``SessionParts.build`` builds the parts that run around a ``SessionJournal`` whose files are
open (``SessionStore.open_files``): queen, triggers, stale-turn watchdog, spend gate, into a
``Session`` (``Session.start`` then arms them). No file is read there.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from hive_server.core.clock import Clock
from hive_server.core.eventlog import Durability, OpenInfo
from hive_server.llm.base import LLMClient
from hive_server.models.event_data import LogRepaired, SessionStarted
from hive_server.models.queen import QueenProfile
from hive_server.models.session import QueenPhase, SessionMeta
from hive_server.services.budget.budgets import Budgets
from hive_server.services.journal.journal import SessionJournal
from hive_server.services.runtime.conversation import Rebuilt
from hive_server.services.runtime.queen import Queen
from hive_server.services.runtime.watchdog import TurnWatchdog
from hive_server.services.runtime.worker_ids import WorkerIds
from hive_server.services.sessions.session import Session
from hive_server.services.tools.base import Tool
from hive_server.services.tools.builtins import builtin_tools
from hive_server.services.triggers.scheduler import TriggerScheduler
from hive_server.services.triggers.session_triggers import SessionTriggers
from hive_server.services.webhooks.inbox import WebhookInbox


@dataclasses.dataclass(frozen=True, slots=True)
class NewSession:
    """What ``SessionManager.create`` makes a session from (the API's body converts to it).

    ``session_id``: None for a new id; an id whose folder is on disk resumes that session as
    it was (the other fields are not used then)."""

    session_id: str | None = None
    agent_id: str | None = None  # the colony loaded at start (or ``agent_path``)
    agent_path: str | None = None
    model: str | None = None
    initial_prompt: str | None = None  # the first message, delivered once the session is up
    queen_name: str | None = None  # the queen profile (None: the default queen)
    initial_phase: QueenPhase | None = None
    title: str | None = None

    @property
    def wants_agent(self) -> bool:
        return self.agent_id is not None or self.agent_path is not None


@dataclasses.dataclass(frozen=True, slots=True)
class SessionOptions:
    """Server-wide knobs every session is built with."""

    home: Path
    durability: Durability
    default_model: str
    provider: str
    model_override: str | None = None  # --model / HIVE_MODEL: wins over profiles and agents
    bus_queue_size: int = 2048
    inbox_size: int = 256
    resume_concurrency: int = 16  # sessions resumed at once at start
    stale_turn_seconds: float = 300.0  # a queen turn silent this long is failed as stale
    secret: Callable[[str], str | None] = lambda name: None  # webhook secrets by env name


@dataclasses.dataclass(frozen=True, slots=True)
class SessionParts:
    """What every session's parts are built with (the manager's, shared)."""

    options: SessionOptions
    llm: LLMClient
    clock: Clock
    scheduler: TriggerScheduler
    inbox: WebhookInbox
    budgets: Budgets
    on_change: Callable[[], None]  # a live session's queen state changed

    async def build(self, session: SessionJournal, profile: QueenProfile, history: Rebuilt,
                    info: OpenInfo, on_disk: SessionMeta | None) -> Session:
        """The session's parts around its journal, ``session_started`` logged.
        ``history``/``info``: what ``SessionStore.open_files`` read (``info``: its log,
        started); ``on_disk``: a resumed session's meta.json as read (None: a new one)."""
        meta, resumed = session.meta, on_disk is not None
        if info.truncated_bytes:
            session.emit(LogRepaired(truncated_bytes=info.truncated_bytes))
        await session.emit_durable(SessionStarted(
            queen_id=meta.queen_id, queen_name=meta.queen_name, agent_id=meta.agent_id,
            model=meta.model, provider=self.options.provider, resumed=resumed,
            previous_seq=info.last_seq))
        if on_disk is None or (on_disk.status, on_disk.stopped_at) != (meta.status, None):
            await session.save_meta(status=session.activity.status, stopped_at=None)
        queen = Queen(session, self.llm, profile, inbox_size=self.options.inbox_size,
                      tools=self._base_tools(session), history=history.messages)
        triggers = SessionTriggers(session, queen, self.scheduler, self.clock, self.inbox,
                                   self.options.secret)
        watchdog = TurnWatchdog(session, queen, self.clock, self.options.stale_turn_seconds)
        budget = await self.budgets.attach(session, queen.fail, triggers, new=not resumed)
        session.notes = history.notes
        session.activity.on_change = self.on_change
        return Session(session, queen, triggers, watchdog, budget,
                       worker_ids=WorkerIds(history.tracker.highest_worker))

    def _base_tools(self, session: SessionJournal) -> dict[str, Tool]:
        """The session's own tools (built once per session: tool schemas are costly)."""
        return builtin_tools(session.workspace, self.clock)
