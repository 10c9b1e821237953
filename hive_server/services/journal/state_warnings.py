"""Reporting a session file that was kept aside (``<file>.corrupt-<UTC timestamp>``): one
WARNING line naming the session and file, a ``state_corrupt`` event on the session, and a
``StateWarning`` in its ``meta.json`` (so its API answers show it, live or cold)."""

from __future__ import annotations

import logging

from hive_server.models.event_data import StateCorrupt
from hive_server.models.session import StateWarning
from hive_server.services.journal.journal import SessionJournal

log = logging.getLogger(__name__)


async def report_kept_aside(session: SessionJournal, file: str, error: str, kept_as: str) -> None:
    log.warning("session %s: %s is corrupt or unreadable (%s); kept as %s, not overwritten",
                session.id, file, error, kept_as)
    event = await session.emit_durable(StateCorrupt(file=file, error=error, kept_as=kept_as))
    warning = StateWarning(file=file, error=error, kept_as=kept_as, at=event.timestamp)
    await session.save_meta(warnings=[*session.meta.warnings, warning])
