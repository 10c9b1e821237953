"""Backward pages of a session's event log (live or cold), as ``/events/history`` serves them.

A page is addressed by seq (``before_seq``; Hive's ``before_index`` is the same number, since
our seqs ascend with the lines) or by byte offset (``before_offset``, the
``start_offset`` of the previous page). A live session's page holds only events appended
before the request (none being written meanwhile).
"""

from __future__ import annotations

import asyncio
import dataclasses

from hive_server.core.eventlog_reader import EventPage, read_page_file
from hive_server.services.history import live_or_cold
from hive_server.services.sessions import SessionManager


@dataclasses.dataclass(frozen=True, slots=True)
class HistoryPage:
    page: EventPage
    total: int  # the session's last seq

    @property
    def start_index(self) -> int:
        """The seq of the first event (0 for an empty page): the next page's ``before_index``."""
        return self.page.events[0].seq if self.page.events else 0

    @property
    def has_more_older(self) -> bool:
        return self.page.more_older


async def history_page(manager: SessionManager, session_id: str, limit: int, *,
                       before_seq: int | None = None,
                       before_offset: int | None = None) -> HistoryPage:
    live = await live_or_cold(manager, session_id)
    upto: int | None = None
    if live is not None:
        upto = live.session.last_seq
        await live.session.log.flush()
    path = manager.store.path(session_id) / "events.jsonl"
    page = await asyncio.to_thread(read_page_file, path, limit, before_seq=before_seq,
                                   before_offset=before_offset, upto_seq=upto)
    return HistoryPage(page, upto if upto is not None else page.last_seq)
