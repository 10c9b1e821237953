"""Trigger fires into a session parked by its spend limit (mixed into ``SessionTriggers``):
held, counted and handed over when the session resumes.

A fire (timer, webhook or manual run) that finds the session in status ``budget_exceeded``
moves the trigger's schedule on (its tick is handled, not fired), is appended to the
session's ``held_fires.jsonl`` (fsynced: a restart keeps it) and logged as ``trigger_held``;
the card's last outcome is ``held``. On resume (``release_held``) each trigger's held fires
are reported as ``trigger_missed`` and handed over by its misfire rule: ``fire_once`` fires
once with the latest payload (``missed``: how many it stands for), ``skip`` fires nothing.
The file is renamed aside for the hand-over and removed after it; a hand-over a crash cut
short is done again at the next start (at least once, never lost).
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

import orjson

from hive_server.core.files import fsync_dir
from hive_server.core.jsonl import append_line, read_records, take_records
from hive_server.models.budget import TriggerHeld
from hive_server.models.event_data import TriggerMissed
from hive_server.models.triggers import MisfirePolicy
from hive_server.services.triggers.cards import Trigger
from hive_server.services.triggers.host import TriggerHost

log = logging.getLogger(__name__)
HELD_FILE = "held_fires.jsonl"
RELEASING_FILE = "held_fires.releasing.jsonl"  # being handed over


class HeldFires(TriggerHost):
    """Needs only ``TriggerHost``."""

    _held_count: int | None = None

    @property
    def _held_path(self) -> Path:
        return self.session.dir / HELD_FILE

    @property
    def parked(self) -> bool:
        return self.session.activity.status == "budget_exceeded"

    @property
    def _releasing_path(self) -> Path:
        return self.session.dir / RELEASING_FILE

    def held_count(self) -> int:
        return self._held_count or 0

    async def _hold(self, trigger: Trigger, *, tick: float | None, manual: bool,
                    payload: Any, missed: int) -> int:
        """Hold a fire of a parked session; the seq of its ``trigger_held`` event."""
        now = self.clock.time()
        if tick is not None:
            trigger.state = trigger.state.after_skip(last_tick=tick)
        self._outcome(trigger, "held")
        await self._save()
        record = {"trigger_id": trigger.spec.id, "at": int(now * 1000), "manual": manual,
                  "tick": None if tick is None else int(tick * 1000), "missed": missed,
                  "payload": payload}
        await asyncio.to_thread(append_line, self._held_path, orjson.dumps(record) + b"\n")
        self._held_count = self.held_count() + 1
        event = await self.session.emit_durable(
            TriggerHeld(trigger_id=trigger.spec.id, held=self.held_count()))
        return event.seq

    async def release_held(self) -> None:
        """Hand the held fires over (see the module docstring). The file is renamed aside
        first (fires held again meanwhile start a new one) and removed once every fire is
        handed over, so a crash in between hands them over again rather than losing them."""
        async with self._changing():
            while not self.parked:
                records = await asyncio.to_thread(_claim, self._held_path,
                                                  self._releasing_path)
                if not records:
                    break
                by_trigger: dict[str, list[dict[str, Any]]] = {}
                for record in records:
                    by_trigger.setdefault(str(record.get("trigger_id")), []).append(record)
                for trigger_id, held in by_trigger.items():
                    await self._hand_over(trigger_id, held)
                await asyncio.to_thread(take_records, self._releasing_path)
                self._held_count = max(0, self.held_count() - len(records))

    async def _hand_over(self, trigger_id: str, held: list[dict[str, Any]]) -> None:
        trigger = self.triggers.get(trigger_id)
        policy = _policy(trigger)
        count = sum(1 + int(record.get("missed") or 0) for record in held)
        await self.session.emit_durable(TriggerMissed(
            trigger_id=trigger_id, missed=count, capped=False,
            first_missed_at=held[0].get("at"), last_missed_at=held[-1].get("at"),
            policy=policy))
        if trigger is None:
            log.warning("session %s: %d held fires of trigger %s, which is gone",
                        self.session.id, count, trigger_id)
        elif policy == "fire_once":
            await self._fire(trigger, tick=None, manual=False,
                             payload=held[-1].get("payload"), missed=count)
        else:
            self._outcome(trigger, "skipped")
            await self._save()


def _policy(trigger: Trigger | None) -> MisfirePolicy:
    """The trigger's misfire rule (a trigger gone since: skip, nothing can take its fire)."""
    if trigger is None:
        return "skip"
    config = trigger.spec.timer or trigger.spec.webhook
    return config.misfire if config is not None else "fire_once"


def count_held(session_dir: Path) -> int:
    """The held fires on disk (a hand-over a crash cut short counts: it is redone).
    Blocking: read with the session's other files in one thread hop (``read_trigger_files``)."""
    return len(_read_both(session_dir / HELD_FILE, session_dir / RELEASING_FILE))


def _read_both(held: Path, releasing: Path) -> list[dict[str, Any]]:
    return read_records(releasing)[0] + read_records(held)[0]


def _claim(held: Path, releasing: Path) -> list[dict[str, Any]]:
    """The fires to hand over now: those of a hand-over cut short, else the held ones
    (renamed aside). Blocking."""
    if not releasing.exists():
        if not held.exists():
            return []
        os.replace(held, releasing)
        fsync_dir(releasing.parent)
    return read_records(releasing)[0]
