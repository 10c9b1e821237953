"""``GET /api/sessions/{id}`` of a live session, its bytes kept between polls.

A UI polls this route; most polls find the session as it was. The answer is
``LiveSessionDetail`` serialised by its model (``web/views.py``), and nothing here writes a
field of its own. What it shows comes from objects that are replaced, never changed in place,
when they change (the journal's ``meta``, the queen's ``profile``, the colony and its
``manifest``), and from the journal's ``last_seq``, which every event moves. Those (by
identity) and ``last_seq`` are the key: while the key holds, the bytes before and after
``uptime_seconds`` are reused, the uptime is written in between, and the trigger cards (which
move with the clock) are serialised anew each time. A session's entry is replaced when its
key changes; the least recently asked of ``size`` sessions is dropped.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict

import orjson

from hive_server.services.sessions.session import Session
from hive_server.web.views import live_session_view

UPTIME = b'"uptime_seconds":'
ENTRY_POINTS = b',"entry_points":['
NO_CARDS = ENTRY_POINTS + b"]}"


@dataclasses.dataclass(slots=True)
class _Entry:
    # the key: the objects (by identity) and the last seq (by value) the bytes were built from
    journal: object
    meta: object
    last_seq: int
    profile: object
    colony: object
    manifest: object
    before: bytes  # up to and with '"uptime_seconds":'
    after: bytes  # from the ',' after the uptime up to (not with) the view's closing '}'

    def holds(self, live: Session) -> bool:
        """``live`` shows what these bytes were built from."""
        journal, colony = live.journal, live.colony
        return (journal is self.journal and journal.meta is self.meta
                and journal.last_seq == self.last_seq and live.queen.profile is self.profile
                and colony is self.colony
                and (colony is None or colony.manifest is self.manifest))


class DetailCache:
    """The serialised views of the live sessions last asked for (one per ``app``)."""

    def __init__(self, size: int = 256):
        self.size = size
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def answer(self, live: Session) -> bytes:
        """The bytes of ``LiveSessionDetail`` for ``live`` now."""
        journal = live.journal
        entries = self._entries
        entry = entries.get(journal.id)
        if entry is None or not entry.holds(live):
            entry = entries[journal.id] = _build(live)
        entries.move_to_end(journal.id)
        while len(entries) > self.size:
            entries.popitem(last=False)
        uptime = orjson.dumps(round(journal.uptime_seconds, 3))
        cards = live.triggers.cards()
        if not cards:
            return b"".join((entry.before, uptime, entry.after, NO_CARDS))
        return b"".join((entry.before, uptime, entry.after, ENTRY_POINTS,
                         b",".join(card.wire_bytes() for card in cards), b"]}"))


def _build(live: Session) -> _Entry:
    """The entry of ``live`` as it is now: its key, read before the view is built (the view
    reads the same objects), and the view's bytes split around the uptime."""
    journal, colony = live.journal, live.colony
    meta, last_seq, profile = journal.meta, journal.last_seq, live.queen.profile
    manifest = colony.manifest if colony is not None else None
    raw = live_session_view(live).wire_bytes()
    start = raw.index(UPTIME) + len(UPTIME)
    end = raw.index(b",", start)
    if not raw.endswith(b"}"):
        raise ValueError("a session view is a JSON object")
    return _Entry(journal, meta, last_seq, profile, colony, manifest, raw[:start], raw[end:-1])
