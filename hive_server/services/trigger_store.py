"""What a session remembers about its triggers: ``<session>/triggers.json``.

It holds the triggers created over the API, the session's edits of folder triggers, the
folder triggers it deleted, the agent those edits were made for, and each trigger's state
(active, fire stats, last handled tick). The agent folder itself is never rewritten. The file
is replaced atomically on every change.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from hive_server.core.files import write_atomic
from hive_server.models.triggers import TriggerSpec, TriggerState

FILENAME = "triggers.json"


@dataclasses.dataclass(slots=True)
class SavedTriggers:
    api: dict[str, TriggerSpec] = dataclasses.field(default_factory=dict)
    patched: dict[str, TriggerSpec] = dataclasses.field(default_factory=dict)
    removed: set[str] = dataclasses.field(default_factory=set)
    state: dict[str, TriggerState] = dataclasses.field(default_factory=dict)
    agent_id: str | None = None
    """The agent whose folder triggers ``patched``, ``removed`` and their states refer to."""

    def forget_folder(self) -> None:
        """Drop every edit and state of folder triggers (another agent is loaded)."""
        self.patched.clear()
        self.removed.clear()
        self.state = {tid: st for tid, st in self.state.items() if tid in self.api}

    def to_json(self) -> bytes:
        return orjson.dumps({
            "agent_id": self.agent_id,
            "api": [spec.model_dump(mode="json") for spec in self.api.values()],
            "patched": [spec.model_dump(mode="json") for spec in self.patched.values()],
            "removed": sorted(self.removed),
            "state": {key: st.model_dump(mode="json") for key, st in self.state.items()},
        }, option=orjson.OPT_INDENT_2)


def _specs(items: Any) -> dict[str, TriggerSpec]:
    specs: dict[str, TriggerSpec] = {}
    for item in items if isinstance(items, list) else []:
        try:
            spec = TriggerSpec.model_validate(item)
        except ValidationError:
            continue
        specs[spec.id] = spec
    return specs


def _load(path: Path) -> SavedTriggers:
    try:
        raw = orjson.loads(path.read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        return SavedTriggers()
    state: dict[str, TriggerState] = {}
    for key, value in (raw.get("state") or {}).items():
        try:
            state[key] = TriggerState.model_validate(value)
        except ValidationError:
            continue
    agent_id = raw.get("agent_id")
    return SavedTriggers(api=_specs(raw.get("api")), patched=_specs(raw.get("patched")),
                         removed=set(raw.get("removed") or []), state=state,
                         agent_id=agent_id if isinstance(agent_id, str) else None)


class TriggerStore:
    def __init__(self, session_dir: Path):
        self.path = session_dir / FILENAME
        self._lock = asyncio.Lock()

    async def load(self) -> SavedTriggers:
        return await asyncio.to_thread(_load, self.path)

    async def save(self, saved: SavedTriggers) -> None:
        """Durable (fsync + rename) when this returns."""
        async with self._lock:
            await asyncio.to_thread(write_atomic, self.path, saved.to_json())
