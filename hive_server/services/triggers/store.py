"""What a session remembers about its triggers: ``<session>/triggers.json``.

It holds the triggers created over the API, the session's edits of folder triggers, the
folder triggers it deleted, the agent those edits were made for, and each trigger's state
(active, fire stats, last handled tick). The agent folder itself is never rewritten. The file
is replaced atomically on every change. A file that cannot be read whole (not JSON, an entry
that does not validate, unreadable) is renamed to ``triggers.json.corrupt-<UTC timestamp>``
before anything is written again, and what could be read of it is used.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any, Protocol

import orjson
from pydantic import ValidationError

from hive_server.core.files import keep_aside, write_atomic
from hive_server.models.triggers import TriggerSpec, TriggerState, WebhookConfig

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

    def webhook_config(self, trigger_id: str, agent_id: str,
                       folder: TriggerSpec | None) -> WebhookConfig | None:
        """The config a session with this saved state checks a delivery for ``trigger_id``
        against, when that trigger is an active webhook trigger there (else None): its API
        trigger, else the agent folder's definition ``folder`` as the session edited it, as
        ``SessionTriggers`` loads them (another node reads it: ``store_redis``)."""
        same_agent = self.agent_id in (None, agent_id)  # else its folder edits are forgotten
        spec = self.api.get(trigger_id)
        if spec is None and folder is not None and not (same_agent and trigger_id in
                                                        self.removed):
            spec = self.patched.get(trigger_id, folder) if same_agent else folder
        if spec is None or spec.webhook is None:
            return None
        state = self.state.get(trigger_id) if same_agent or trigger_id in self.api else None
        return spec.webhook if (state.active if state else spec.enabled) else None

    def to_json(self) -> bytes:
        return orjson.dumps({
            "agent_id": self.agent_id,
            "api": [spec.model_dump(mode="json") for spec in self.api.values()],
            "patched": [spec.model_dump(mode="json") for spec in self.patched.values()],
            "removed": sorted(self.removed),
            "state": {key: st.model_dump(mode="json") for key, st in self.state.items()},
        }, option=orjson.OPT_INDENT_2)


@dataclasses.dataclass(frozen=True, slots=True)
class KeptAside:
    """A ``triggers.json`` that could not be read whole: renamed, never overwritten."""

    error: str
    kept_as: str  # its new name in the session folder


def _specs(items: Any, where: str, problems: list[str]) -> dict[str, TriggerSpec]:
    specs: dict[str, TriggerSpec] = {}
    if items is not None and not isinstance(items, list):
        problems.append(f"{where} is not a list")
        return specs
    for index, item in enumerate(items or []):
        try:
            spec = TriggerSpec.model_validate(item)
        except ValidationError as exc:
            name = item.get("id") if isinstance(item, dict) else None
            problems.append(f"{where}[{index}] ({name or 'no id'}): "
                            f"{exc.errors(include_url=False)[0]['msg']}")
            continue
        specs[spec.id] = spec
    return specs


def _states(raw: Any, problems: list[str]) -> dict[str, TriggerState]:
    if not isinstance(raw, dict):
        if raw is not None:
            problems.append("state is not an object")
        return {}
    state: dict[str, TriggerState] = {}
    for key, value in raw.items():
        try:
            state[key] = TriggerState.model_validate(value)
        except ValidationError:
            problems.append(f"state of {key!r} is invalid")
    return state


def parse_saved(data: bytes, problems: list[str]) -> SavedTriggers:
    """What can be read of the file; every part that cannot is named in ``problems``."""
    try:
        raw = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        problems.append(f"not valid JSON: {exc}")
        return SavedTriggers()
    if not isinstance(raw, dict):
        problems.append("not a JSON object")
        return SavedTriggers()
    removed, agent_id = raw.get("removed") or [], raw.get("agent_id")
    if not isinstance(removed, list) or not all(isinstance(r, str) for r in removed):
        problems.append("removed is not a list of ids")
        removed = []
    if agent_id is not None and not isinstance(agent_id, str):
        problems.append("agent_id is not a string")
        agent_id = None
    return SavedTriggers(api=_specs(raw.get("api"), "api", problems),
                         patched=_specs(raw.get("patched"), "patched", problems),
                         removed=set(removed), state=_states(raw.get("state"), problems),
                         agent_id=agent_id)


def _load(path: Path) -> tuple[SavedTriggers, KeptAside | None]:
    """The saved state; a file that cannot be read whole is kept aside (renamed) first, and
    what could be read of it is returned. Another ``OSError`` (EIO, EMFILE) is raised: a good
    file is never moved because of a passing failure."""
    problems: list[str] = []
    try:
        saved = parse_saved(path.read_bytes(), problems)
    except FileNotFoundError:
        return SavedTriggers(), None
    except (IsADirectoryError, PermissionError) as exc:
        saved, problems = SavedTriggers(), [f"unreadable: {exc.strerror}"]
    if not problems:
        return saved, None
    error = "; ".join(problems)
    return saved, KeptAside(error[:2000], keep_aside(path).name)


class TriggerStateStore(Protocol):
    """Where a session's saved trigger state lives: ``TriggerStore`` (the session folder),
    ``store_redis.RedisTriggerStore`` (Redis, shared by the nodes)."""

    async def load(self) -> tuple[SavedTriggers, KeptAside | None]: ...

    async def save(self, saved: SavedTriggers) -> None: ...


class TriggerStore:
    def __init__(self, session_dir: Path):
        self.path = session_dir / FILENAME
        self._lock = asyncio.Lock()

    async def load(self) -> tuple[SavedTriggers, KeptAside | None]:
        return await asyncio.to_thread(self.read)

    def read(self) -> tuple[SavedTriggers, KeptAside | None]:
        """``load``, blocking (for a caller reading other files in the same thread hop)."""
        return _load(self.path)

    async def save(self, saved: SavedTriggers) -> None:
        """Durable (fsync + rename) when this returns."""
        async with self._lock:
            await asyncio.to_thread(write_atomic, self.path, saved.to_json())
