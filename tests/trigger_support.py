"""Helpers shared by the trigger and webhook HTTP tests: definitions, cards, agent folders."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from tests.agent_fixtures import write_agent
from tests.hive_api import HiveApi
from tests.hive_api import next_fired as next_fired  # re-exported: the tests import it from here
from tests.queen_support import of_type


def timer(trigger_id: str, task: str = "water the plants", **config: Any) -> dict[str, Any]:
    return {"id": trigger_id, "trigger_type": "timer", "trigger_config": config, "task": task}


def webhook(trigger_id: str, task: str = "look at the delivery", **config: Any) -> dict[str, Any]:
    return {"id": trigger_id, "trigger_type": "webhook", "trigger_config": config, "task": task}


def utc(text: str) -> float:
    """Epoch seconds of an ISO time written without a zone (taken as UTC)."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def ms(seconds: float) -> int:
    return int(seconds * 1000)


async def post_trigger(client: TestClient, session_id: str, spec: dict[str, Any]) -> dict:
    """``HiveApi.add_trigger`` for the call sites that hold only a client."""
    return await HiveApi(client).add_trigger(session_id, spec)


async def cards(client: TestClient, session_id: str) -> dict[str, dict[str, Any]]:
    """``HiveApi.triggers``: the session's trigger cards by id."""
    return await HiveApi(client).triggers(session_id)


async def card(client: TestClient, session_id: str, trigger_id: str) -> dict[str, Any]:
    return await HiveApi(client).trigger(session_id, trigger_id)


def fired(events: list[dict], trigger_id: str | None = None) -> list[dict]:
    return [e for e in of_type(events, "trigger_fired")
            if trigger_id is None or e["data"]["trigger_id"] == trigger_id]


def write_triggers_agent(agents_dir: Path, agent_id: str, triggers: list[Any] | str,
                         *, tools: str | None = None) -> Path:
    """An agent folder with a ``triggers.json`` (a list, or raw text)."""
    return write_agent(agents_dir, agent_id, {"name": agent_id.title(),
                                              "description": "has triggers"},
                       tools=tools, triggers=triggers)


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path -> bytes)."""
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def saved_triggers(home: Path, session_id: str) -> dict[str, Any]:
    return json.loads((home / "sessions" / session_id / "triggers.json").read_text())
