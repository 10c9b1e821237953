"""Pages of a session's event log (live or cold), as ``/events/history`` serves them.

A backward page (the default) holds the newest ``limit`` events before its cursor: ``before_seq``
(Hive's ``before_index`` is the same number, since our seqs ascend with the lines) or a byte
offset (``before_offset``, the ``start_offset`` of the previous page). A forward page
(``after_seq=N``) holds the oldest ``limit`` events with seq > N; the next one is
``after_seq=<its last seq>``. Both are ascending. ``types`` keeps only events of those types;
the page then holds up to ``limit`` events of those types, whatever lies between them.

What the answer's counts mean, with or without filters:

- ``total``: the session's last seq (not a count of events, and not of the matching ones).
- ``has_more_older``: an older event of the wanted types exists (older than the page's first
  event; older than the cursor when the page is empty).
- ``truncated``: the page stopped at ``limit`` with more matching events beyond it in its
  direction: older ones for a backward page (the same as ``has_more_older``), newer ones up to
  ``total`` for a forward page.

A live session's page holds only events appended before the request (none being written
meanwhile): its buffered events are flushed to the log first.

On Redis (``--redis``) the pages come from the session's stream on any node
(``core/eventlog_redis_pages.py``), with the same meanings; a stream has no byte offsets, so
``start_offset`` is the first event's seq and ``before_offset`` is read as a seq.
"""

from __future__ import annotations

import dataclasses

from hive_server.core.eventlog_pages import EventPage
from hive_server.services.sessions.log_reads import HistoryCursor
from hive_server.services.sessions.lookup import live_or_cold
from hive_server.services.sessions.manager import SessionManager

__all__ = ["HistoryCursor", "HistoryPage", "history_page"]


@dataclasses.dataclass(frozen=True, slots=True)
class HistoryPage:
    page: EventPage
    total: int  # the session's last seq
    forward: bool = False

    @property
    def start_index(self) -> int:
        """The seq of the first event (0 for an empty page): the next page's ``before_index``."""
        return self.page.first_seq

    @property
    def has_more_older(self) -> bool:
        return self.page.more_older

    @property
    def truncated(self) -> bool:
        return self.page.more_newer if self.forward else self.page.more_older


async def history_page(manager: SessionManager, session_id: str, limit: int,
                       cursor: HistoryCursor) -> HistoryPage:
    live = await live_or_cold(manager, session_id)
    upto: int | None = None
    if live is not None:
        upto = live.journal.last_seq
        await live.journal.log.flush()
    page = await manager.store.reads.page(session_id, limit, cursor, upto)
    return HistoryPage(page, upto if upto is not None else page.last_seq,
                       forward=cursor.after_seq is not None)
