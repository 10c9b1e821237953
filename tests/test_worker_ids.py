"""A worker id names one worker in a session's whole log: ids go on from the highest one the
log holds after a restart, and after a colony is unloaded and loaded again."""

from __future__ import annotations

import pytest

from tests.agent_fixtures import NOTES_MANIFEST, NOTES_TOOLS, call_line, run_workers, write_agent
from tests.conftest import create_session
from tests.queen_support import of_type, open_stream, read_log, until

NOTE = call_line("append_note", text="hi")


@pytest.fixture
def settings(settings):
    write_agent(settings.agents_dir, "notes", NOTES_MANIFEST, tools=NOTES_TOOLS)
    return settings


async def run_one(client, session_id: str = "s", tasks: int = 1) -> None:
    stream = await open_stream(client, session_id, after_seq=10**6)  # only what comes next
    await run_workers(client, session_id, *([NOTE] * tasks))
    await until(stream, "execution_completed")
    stream.close()


def worker_ids(settings, session_id: str = "s") -> list[str]:
    return [e["data"]["worker_id"] for e in of_type(read_log(settings.home, session_id),
                                                     "worker_started")]


async def test_worker_ids_go_on_after_a_restart(make_client, settings):
    client = await make_client(settings)
    await create_session(client, session_id="s", agent_id="notes")
    await run_one(client, tasks=2)
    await client.close()
    client = await make_client(settings)
    await run_one(client)
    await client.close()
    client = await make_client(settings)
    await run_one(client)
    await client.close()  # every event stored
    ids = worker_ids(settings)
    assert sorted(ids[:2]) == ["default-1", "default-2"]
    assert ids[2:] == ["default-3", "default-4"]


async def test_worker_ids_go_on_after_the_colony_is_loaded_again(client, settings):
    await create_session(client, session_id="s", agent_id="notes")
    await run_one(client)
    assert (await client.delete("/api/sessions/s/colony")).status == 200
    resp = await client.post("/api/sessions/s/colony", json={"agent_id": "notes"})
    assert resp.status == 201, await resp.text()
    await run_one(client)
    await client.close()
    assert worker_ids(settings) == ["default-1", "default-2"]
