"""``DELETE /api/sessions/{id}/queue``: the inputs waiting for a busy queen are dropped, the
``queue_cleared`` event says which, and a restart does not hand them to her again."""

from __future__ import annotations

import pytest

from tests import agent_fixtures
from tests.agent_fixtures import MEETING_TOOLS, Meeting, call_line, worker_line
from tests.conftest import create_session
from tests.queen_support import chat, of_type, open_stream, read_log, until
from tests.sse_reader import read_until
from tests.trigger_support import write_triggers_agent


@pytest.fixture
def meeting(settings) -> Meeting:
    write_triggers_agent(settings.agents_dir, "meeting", [], tools=MEETING_TOOLS)
    agent_fixtures.MEETING = Meeting()
    return agent_fixtures.MEETING


async def _busy(client, session_id: str = "s"):
    """A session whose queen waits in a held tool; its stream."""
    await create_session(client, session_id=session_id, agent_id="meeting")
    stream = await open_stream(client, session_id)
    await chat(client, session_id, worker_line(call_line("hold", name="busy")))
    await read_until(stream, lambda e: e["type"] == "tool_call_started"
                     and e["data"]["tool_name"] == "hold")
    return stream


def _started(events: list[dict]) -> list[int]:
    return [e["data"]["input_seq"] for e in of_type(events, "execution_started")]


async def test_queued_inputs_are_dropped_and_never_run(meeting, client, api, settings):
    stream = await _busy(client)
    queued = [(await api.chat("s", f"later {i}"))["seq"] for i in range(2)]
    resp = await client.delete("/api/sessions/s/queue")
    assert resp.status == 200
    answer = await resp.json()
    assert answer["dropped"] == 2 and answer["input_seqs"] == queued
    events = await until(stream, "queue_cleared")
    assert events[-1]["seq"] == answer["seq"]
    assert events[-1]["data"] == {"dropped": 2, "input_seqs": queued}

    meeting.gate.set()
    await until(stream, "execution_completed")
    after = (await api.chat("s", "after the clear"))["seq"]
    await until(stream, "execution_completed")
    assert _started(read_log(settings.home, "s"))[1:] == [after]
    again = await (await client.delete("/api/sessions/s/queue")).json()
    assert again["dropped"] == 0 and again["input_seqs"] == []
    stream.close()


async def test_a_restart_does_not_resurrect_dropped_inputs(meeting, make_client, client, api,
                                                           settings):
    stream = await _busy(client)
    dropped = [(await api.chat("s", f"drop {i}"))["seq"] for i in range(2)]
    assert (await (await client.delete("/api/sessions/s/queue")).json())["dropped"] == 2
    kept = (await api.chat("s", "keep me"))["seq"]
    stream.close()
    await client.close()

    again = await make_client(settings)
    stream = await open_stream(again, "s", after_seq=kept)
    await read_until(stream, lambda e: e["type"] == "execution_started"
                     and e["data"]["input_seq"] == kept)
    await until(stream, "execution_completed")
    started = _started(read_log(settings.home, "s"))
    assert kept in started and not set(dropped) & set(started)
    stream.close()


async def test_the_queue_of_an_unknown_session_is_404(client):
    resp = await client.delete("/api/sessions/nobody/queue")
    assert resp.status == 404
