"""A session's ``meta.json`` rebuilt from its events alone (``hive-server import-session``).

An export is a plain ``events.jsonl``, so the import writes the meta the events imply:

- ``queen_id``, ``queen_name``, ``model``: the last ``session_started``; ``created_at``: the
  first event's time; ``last_seq``: the last event's seq.
- ``agent_id``/``agent_path``: the colony loaded at the end (``worker_colony_loaded`` not
  followed by ``worker_colony_unloaded``), and ``phase`` ``colony`` with it, else
  ``independent``.
- ``message_count``, ``first_message``, ``last_message``, ``last_input_at`` and ``title``:
  counted from the ``client_input_received`` events as the live session counts them.
- ``handoff``: the last ``session_summary``'s.
- ``status`` ``stopped`` (``stopped_at``, ``last_active_at``: the last event's time): an
  imported session is cold; ``POST /api/sessions`` with its id resumes it.

Not rebuilt (they are not in the log): a title set by ``PATCH`` that differs from the first
message, the session's spend limit (``budget``) and the state warnings. ``usage`` is left out
and counted from the log when first read, as for any meta written before it existed.
"""

from __future__ import annotations

from collections.abc import Callable

from hive_server.models.event_data import (
    ClientInputReceived,
    SessionStarted,
    SessionSummary,
    WorkerColonyLoaded,
    parse_data,
)
from hive_server.models.events import Event, EventType
from hive_server.models.handoff import Handoff
from hive_server.models.session import TITLE_CHARS, SessionMeta, preview


class MetaRebuild:
    """Fed every event of a session in seq order (``add``); ``meta`` is its ``meta.json``.
    ``add`` raises ``ValueError`` (pydantic's ``ValidationError``) for an event whose ``data``
    does not fit its type."""

    def __init__(self) -> None:
        self.first: Event | None = None
        self.last: Event | None = None
        self.started: SessionStarted | None = None
        self.colony: WorkerColonyLoaded | None = None
        self.handoff: Handoff | None = None
        self.inputs = 0
        self.first_message: str | None = None
        self.last_message: str | None = None
        self.last_input_at: str | None = None

    def add(self, event: Event) -> None:
        self.first = self.first or event
        self.last = event
        if (fold := _FOLDS.get(event.type)) is not None:
            fold(self, event)

    def _started(self, event: Event) -> None:
        self.started = parse_data(SessionStarted, event.data)

    def _colony_loaded(self, event: Event) -> None:
        self.colony = parse_data(WorkerColonyLoaded, event.data)

    def _colony_unloaded(self, event: Event) -> None:
        self.colony = None

    def _summary(self, event: Event) -> None:
        self.handoff = parse_data(SessionSummary, event.data).handoff

    def _input(self, event: Event) -> None:
        received = parse_data(ClientInputReceived, event.data)
        self.inputs += 1
        self.last_input_at = event.timestamp
        if received.source == "user":  # as ``SessionJournal.record_input`` counts them
            self.last_message = preview(received.content or received.text or "")
            if self.first_message is None:
                self.first_message = self.last_message

    def meta(self, session_id: str, now: str) -> SessionMeta | None:
        """The meta of the events added so far; None when none was a ``session_started``
        (the queen and the model are then unknown)."""
        if self.started is None or self.first is None or self.last is None:
            return None
        started, colony, end = self.started, self.colony, self.last.timestamp
        return SessionMeta(
            session_id=session_id, created_at=self.first.timestamp, updated_at=now,
            queen_id=started.queen_id, queen_name=started.queen_name, model=started.model,
            agent_id=colony.agent_id if colony else None,
            agent_path=colony.agent_path if colony else None,
            phase="colony" if colony else "independent", status="stopped", stopped_at=end,
            message_count=self.inputs, last_message=self.last_message,
            last_input_at=self.last_input_at, last_active_at=end, last_seq=self.last.seq,
            first_message=self.first_message, handoff=self.handoff,
            title=_title(self.first_message))


def _title(first_message: str | None) -> str | None:
    """The title a live session draws from its first user message."""
    return None if first_message is None else preview(first_message, TITLE_CHARS)


_FOLDS: dict[str, Callable[[MetaRebuild, Event], None]] = {
    EventType.SESSION_STARTED: MetaRebuild._started,
    EventType.WORKER_COLONY_LOADED: MetaRebuild._colony_loaded,
    EventType.WORKER_COLONY_UNLOADED: MetaRebuild._colony_unloaded,
    EventType.SESSION_SUMMARY: MetaRebuild._summary,
    EventType.CLIENT_INPUT_RECEIVED: MetaRebuild._input,
}
