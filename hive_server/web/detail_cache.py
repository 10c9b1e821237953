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

from hive_server.models.responses import LiveSessionView
from hive_server.services.sessions.session import Session
from hive_server.web.views import live_session_view

UPTIME = b'"uptime_seconds":'
ENTRY_POINTS = b',"entry_points":['


@dataclasses.dataclass(slots=True)
class _Entry:
    key: tuple[object, ...]
    before: bytes  # up to and with '"uptime_seconds":'
    after: bytes  # from the ',' after the uptime up to (not with) the view's closing '}'


class DetailCache:
    """The serialised views of the live sessions last asked for (one per ``app``)."""

    def __init__(self, size: int = 256):
        self.size = size
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def answer(self, live: Session) -> bytes:
        """The bytes of ``LiveSessionDetail`` for ``live`` now."""
        journal = live.journal
        entry = self._entries.get(journal.id)
        key = _key(live)
        if entry is None or not _same(entry.key, key):
            entry = self._entries[journal.id] = _split(live_session_view(live), key)
        self._entries.move_to_end(journal.id)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)
        cards = b",".join(card.wire_bytes() for card in live.triggers.cards())
        uptime = orjson.dumps(round(journal.uptime_seconds, 3))
        return b"".join((entry.before, uptime, entry.after, ENTRY_POINTS, cards, b"]}"))


def _key(live: Session) -> tuple[object, ...]:
    colony = live.colony
    return (live.journal, live.journal.meta, live.journal.last_seq, live.queen.profile,
            colony, colony.manifest if colony is not None else None)


def _same(old: tuple[object, ...], new: tuple[object, ...]) -> bool:
    """Objects by identity, ``last_seq`` by value."""
    return all(a is b or (isinstance(a, int) and a == b) for a, b in zip(old, new, strict=True))


def _split(view: LiveSessionView, key: tuple[object, ...]) -> _Entry:
    raw = view.wire_bytes()
    start = raw.index(UPTIME) + len(UPTIME)
    end = raw.index(b",", start)
    if not raw.endswith(b"}"):
        raise ValueError("a session view is a JSON object")
    return _Entry(key, raw[:start], raw[end:-1])
