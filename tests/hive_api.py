"""``HiveApi``: the HTTP API as the tests drive it, one method per call a test makes again and
again (a session, a chat, its event stream, its triggers, its log), each checking the status the
API promises and answering the JSON. The ``api`` fixture (conftest) wraps the ``client`` one.

A session's stream is an SSE response; ``until`` and its kin read it up to an event type, and
``HiveApi.wait_for`` opens one, reads it up to an event type and closes it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from hive_server import keys
from tests.sse_reader import read_until

TIMEOUT = 5.0


class HiveApi:
    def __init__(self, client: TestClient) -> None:
        self.client = client

    @property
    def home(self) -> Path:
        return self.client.app[keys.SETTINGS].home

    # -- sessions and chat --------------------------------------------------------------------

    async def create_session(self, **body: Any) -> dict[str, Any]:
        """``POST /api/sessions`` (201): the live session."""
        return await self._json("POST", "/api/sessions", 201, body)

    async def chat(self, session_id: str, message: str) -> dict[str, Any]:
        """``POST .../chat`` (202): the accepted input."""
        return await self._json("POST", f"/api/sessions/{session_id}/chat", 202,
                                {"message": message})

    async def events(self, session_id: str, after_seq: int = 0) -> ClientResponse:
        """The session's SSE stream from ``after_seq`` (the caller closes it)."""
        resp = await self.client.get(f"/api/sessions/{session_id}/events?after_seq={after_seq}")
        assert resp.status == 200, await resp.text()
        return resp

    async def wait_for(self, session_id: str, event_type: str, after_seq: int = 0,
                       timeout: float = TIMEOUT) -> dict[str, Any]:
        """The first event of ``event_type`` after ``after_seq`` (waited for if not yet there)."""
        stream = await self.events(session_id, after_seq)
        try:
            return (await until(stream, event_type, timeout))[-1]
        finally:
            stream.close()

    async def chatted(self, session_id: str, n: int) -> None:
        """A new session that got ``n`` chats, each one answered."""
        await self.create_session(session_id=session_id)
        stream = await self.events(session_id)
        try:
            for i in range(n):
                await self.chat(session_id, f"message {i}")
            await until_nth(stream, "execution_completed", n)
        finally:
            stream.close()

    def log(self, session_id: str) -> list[dict[str, Any]]:
        """The complete lines of the session's ``events.jsonl`` (a line being written is left
        out)."""
        return read_log(self.home, session_id)

    # -- triggers -----------------------------------------------------------------------------

    async def add_trigger(self, session_id: str, spec: dict[str, Any]) -> dict[str, Any]:
        """``POST .../triggers`` (201): the new trigger's card."""
        return await self._json("POST", f"/api/sessions/{session_id}/triggers", 201, spec)

    async def triggers(self, session_id: str) -> dict[str, dict[str, Any]]:
        """The session's trigger cards by id."""
        body = await self._json("GET", f"/api/sessions/{session_id}/triggers", 200)
        return {card["id"]: card for card in body["triggers"]}

    async def trigger(self, session_id: str, trigger_id: str) -> dict[str, Any]:
        return (await self.triggers(session_id))[trigger_id]

    async def run_trigger(self, session_id: str, trigger_id: str,
                          payload: Any = None) -> dict[str, Any]:
        """``POST .../triggers/{id}/run`` (202): fired now, the schedule left alone."""
        return await self._json("POST", f"/api/sessions/{session_id}/triggers/{trigger_id}/run",
                                202, None if payload is None else {"payload": payload})

    async def _json(self, method: str, path: str, status: int, body: Any = None) -> Any:
        resp = await self.client.request(method, path, json=body)
        assert resp.status == status, await resp.text()
        return await resp.json()


# -- reading a stream -----------------------------------------------------------------------------

async def until(stream: ClientResponse, event_type: str, timeout: float = TIMEOUT) -> list[dict]:
    """The events up to and including the next one of ``event_type``."""
    frames = await read_until(stream, lambda e: e["type"] == event_type, timeout)
    return [frame["event"] for frame in frames]


async def until_any(stream: ClientResponse, *event_types: str,
                    timeout: float = TIMEOUT) -> list[dict]:
    """The events up to and including the next one of any of ``event_types``."""
    frames = await read_until(stream, lambda e: e["type"] in event_types, timeout)
    return [frame["event"] for frame in frames]


async def until_nth(stream: ClientResponse, event_type: str, n: int,
                    timeout: float = TIMEOUT) -> list[dict]:
    """The events up to and including the ``n``-th next one of ``event_type``."""
    events: list[dict] = []
    for _ in range(n):
        events += await until(stream, event_type, timeout)
    return events


async def next_fired(stream: ClientResponse, timeout: float = TIMEOUT) -> tuple[dict, list[dict]]:
    """The next ``trigger_fired`` event and every event up to it."""
    events = await until(stream, "trigger_fired", timeout)
    return events[-1], events


def read_log(home: Path, session_id: str) -> list[dict[str, Any]]:
    """The complete lines of a session's log under ``home`` (a line being written right now is
    left out)."""
    data = (home / "sessions" / session_id / "events.jsonl").read_bytes()
    return [json.loads(line) for line in data.split(b"\n")[:-1]]
