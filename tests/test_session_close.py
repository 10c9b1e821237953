"""Closing a session whose event log can no longer be written (a failed disk)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from hive_server.core.eventlog import Durability, EventLog
from hive_server.errors import Unavailable
from hive_server.models.event_data import ClientOutputDelta
from hive_server.models.session import SessionMeta
from hive_server.services.journal.journal import SessionJournal

FULL = Path("/dev/full")  # every write fails with ENOSPC


@pytest.mark.skipif(not FULL.exists(), reason="needs /dev/full")
async def test_close_after_the_log_failed_still_ends_streams_and_marks_stopped(tmp_path):
    log = EventLog(FULL, Durability.NONE)
    await log.open()
    meta = SessionMeta(session_id="s", created_at="t", updated_at="t", queen_id="q",
                       queen_name="Q", model="m")
    session = SessionJournal(meta, tmp_path / "s", log)
    stream = session.subscribe()
    with pytest.raises(Unavailable) as failed:  # a 503 for whoever asked, not a 500
        await session.emit_durable(ClientOutputDelta(content="x", snapshot="x"))
    assert failed.value.code == "log_unavailable"
    with pytest.raises(Unavailable):  # later appends are refused the same way
        session.emit(ClientOutputDelta(content="y", snapshot="y"))
    with pytest.raises(Unavailable) as closing:  # the disk error is reported ...
        await session.close("deleted", mark_stopped=True)
    assert closing.value.code == "log_unavailable"
    async with asyncio.timeout(5):
        drained = [event.seq async for event in stream]
    assert drained == [1]  # ... and the stream ends anyway
    assert session.meta.status == "stopped"
    assert '"status": "stopped"' in (tmp_path / "s" / "meta.json").read_text()
