"""A session's triggers: folder + API definitions, activation, firing, cards.

Timers are armed on the app-wide ``TriggerScheduler`` under ``<session_id>/<trigger_id>``.
A fire first stores the advanced state (fire count, last handled tick) durably, then logs
``trigger_fired``, then hands ``[TRIGGER: <type>/<id>] Task: <task>`` (plus payload) to the
queen; so a tick is never fired twice, even if the process dies during the fire. A busy queen
keeps at most one pending input per trigger and counts the coalesced ones.

One lock per session orders every change (create, update, activate, deactivate, remove,
colony attach/detach) and every timer fire: a timer's fire is never cut in half by a change
that disarms it, and a change never interleaves with another one at an ``await``.

Edits of folder triggers (PATCH, DELETE) and their state belong to the agent they were made
for: loading another agent into the session starts from its own definitions. Loading the same
agent again keeps them, without catching up the ticks of the time it was not loaded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from hive_server.core.clock import Clock
from hive_server.errors import HiveError
from hive_server.errors.sessions import SessionStopping
from hive_server.errors.triggers import TaskRequired, TriggerExists, TriggerNotFound
from hive_server.models.agent_views import TriggerCard
from hive_server.models.event_data import (
    TriggerActivated,
    TriggerAvailable,
    TriggerDeactivated,
    TriggerFired,
    TriggerInvalid,
    TriggerMissed,
    TriggerRemoved,
    TriggerUpdated,
)
from hive_server.models.triggers import (
    TriggerProblem,
    TriggerSpec,
    TriggerState,
    id_from_name,
)
from hive_server.services.journal.journal import SessionJournal
from hive_server.services.journal.state_warnings import report_kept_aside
from hive_server.services.runtime.queen import Queen
from hive_server.services.triggers.cards import (
    Source,
    Trigger,
    card_fields,
    problem_card,
    trigger_card,
)
from hive_server.services.triggers.claims import FireClaim, FireClaims
from hive_server.services.triggers.hold import HeldFires, count_held
from hive_server.services.triggers.scheduler import FireInfo, MissedInfo, TriggerScheduler
from hive_server.services.triggers.store import FILENAME as TRIGGERS_FILE
from hive_server.services.triggers.store import (
    KeptAside,
    SavedTriggers,
    TriggerStateStore,
    TriggerStore,
)
from hive_server.services.triggers.text import fire_text
from hive_server.services.triggers.webhook import WebhookTriggers
from hive_server.services.webhooks.inbox import WebhookInbox
from hive_server.services.webhooks.signatures import missing_secret

log = logging.getLogger(__name__)
__all__ = ["SessionTriggers", "Trigger"]


TriggerFiles = tuple[tuple[SavedTriggers, KeptAside | None], int]  # state, held fires


def read_trigger_files(session_dir: Path) -> TriggerFiles:
    """A session's saved trigger state and its held fires' count (blocking: the session's
    open reads them with its log in one thread hop, ``SessionStore.open_files``)."""
    return TriggerStore(session_dir).read(), count_held(session_dir)


class SessionTriggers(WebhookTriggers, HeldFires, FireClaims):
    """``store``: where the saved state lives (default: the session folder's
    ``triggers.json``); ``fire_claim``: asked before a scheduled tick fires (``claims.py``;
    None: fire as a single node does), settable after construction."""

    def __init__(self, session: SessionJournal, queen: Queen, scheduler: TriggerScheduler,
                 clock: Clock, inbox: WebhookInbox, secret: Callable[[str], str | None], *,
                 store: TriggerStateStore | None = None, fire_claim: FireClaim | None = None):
        self.session = session
        self.secret = secret  # webhook secrets by env var name (an unset one: card error)
        self.inbox = inbox
        self.queen = queen
        self.scheduler = scheduler
        self.clock = clock
        self.store = store or TriggerStore(session.dir)
        self.fire_claim = fire_claim
        self.saved = SavedTriggers()
        self.triggers: dict[str, Trigger] = {}
        self.problems: list[TriggerProblem] = []
        self._lock = asyncio.Lock()
        self._stopped = False
        self._resume_agent: str | None = None

    @contextlib.asynccontextmanager
    async def _changing(self) -> AsyncIterator[None]:
        """Hold the session's trigger lock; refuse once the session is stopping."""
        async with self._lock:
            if self._stopped:
                raise SessionStopping()
            yield

    # -- loading --------------------------------------------------------------------------------
    async def start(self, files: TriggerFiles) -> None:
        """Take the saved state (``read_trigger_files``) and the API-created triggers; re-arm
        the active ones. A file that could not be read whole was kept aside: reported before
        anything is written again."""
        (self.saved, aside), self._held_count = files
        if aside is not None:
            await report_kept_aside(self.session, TRIGGERS_FILE, aside.error, aside.kept_as)
        self._resume_agent = self.session.meta.agent_id  # the colony a resumed session had
        for spec in self.saved.api.values():
            await self._add(spec, "api", announce=False, resume=True)

    async def attach_folder(self, specs: list[TriggerSpec], problems: list[TriggerProblem]):
        """Add a loaded colony's triggers (edits and deletions made in this session apply)."""
        async with self._changing():
            agent_id = self.session.meta.agent_id
            resume, self._resume_agent = agent_id == self._resume_agent, None
            if self.saved.agent_id not in (None, agent_id):
                self.saved.forget_folder()
            self.saved.agent_id = agent_id
            self.problems = problems
            for problem in problems:
                self._invalid(problem.trigger_id, problem.error)
            for spec in specs:
                if spec.id in self.saved.removed:
                    continue
                if spec.id in self.triggers:
                    self._invalid(spec.id, f"trigger id {spec.id!r} is taken by a trigger "
                                           "created over the API in this session")
                    continue
                await self._add(self.saved.patched.get(spec.id, spec), "folder",
                                announce=True, resume=resume)
            await self._save()

    async def detach_folder(self) -> None:
        """Drop the colony's triggers; their edits and state stay saved for a reload."""
        async with self._changing():
            for trigger in [t for t in self.triggers.values() if t.source == "folder"]:
                await self.scheduler.disarm(self._key(trigger.spec.id))
                del self.triggers[trigger.spec.id]
            self.problems = []

    def _invalid(self, trigger_id: str | None, error: str) -> None:
        self.session.emit(TriggerInvalid(trigger_id=trigger_id, error=error))

    async def _add(self, spec: TriggerSpec, source: Source, *, announce: bool,
                   resume: bool) -> tuple[Trigger, asyncio.Future[None] | None]:
        """Add and (if active) arm a trigger; returns it and, when announced, the future of
        its last announcement being stored."""
        saved_state = self.saved.state.get(spec.id)
        trigger = Trigger(spec, source, saved_state or TriggerState(active=spec.enabled))
        self.triggers[spec.id] = trigger
        if (problem := self._problem(trigger)) is not None:
            log.warning("session %s: trigger %s: %s", self.session.id, spec.id, problem)
        stored = None
        if trigger.state.active:
            await self._arm(trigger, resume=resume and saved_state is not None)
        if announce:
            _, stored = self.session.emit(TriggerAvailable(**self._fields(trigger)))
        if announce and trigger.state.active:
            _, stored = self.session.emit(TriggerActivated(**self._fields(trigger)))
        if trigger.state.active:
            await self._take_inbox(trigger)
        return trigger, stored

    async def stop(self) -> None:
        """Disarm every timer (after a fire under way); the active set stays saved so a
        restart re-arms it."""
        async with self._lock:
            self._stopped = True
            for trigger_id in list(self.triggers):
                await self.scheduler.disarm(self._key(trigger_id))

    # -- API operations -------------------------------------------------------------------------
    def get(self, trigger_id: str) -> Trigger:
        trigger = self.triggers.get(trigger_id)
        if trigger is None:
            raise TriggerNotFound(trigger_id)
        return trigger

    def spec(self, trigger_id: str) -> TriggerSpec | None:
        """The definition of this session's trigger ``trigger_id``, active or not (None when
        the session has no such trigger)."""
        trigger = self.triggers.get(trigger_id)
        return trigger.spec if trigger is not None else None

    async def create(self, data: dict[str, Any]) -> Trigger:
        """Create an API trigger from its JSON definition (``id`` or ``trigger_id``; without
        either, ``user-<name slug>``, then ``-2``, ``-3``... as Hive's UI expects)."""
        async with self._changing():
            if "id" not in data:
                given = data.get("trigger_id")
                data = {**data, "id": given if given is not None
                        else id_from_name(str(data.get("name") or ""), self.triggers)}
            spec = TriggerSpec.parse(data)
            _require_task(spec.task)
            if spec.id in self.triggers:
                raise TriggerExists(spec.id)
            self.saved.api[spec.id] = spec
            self.saved.state.pop(spec.id, None)
            trigger, stored = await self._add(spec, "api", announce=True, resume=False)
            await self._save()
            if stored is not None:
                await stored
            return trigger

    async def update(self, trigger_id: str, task: str | None,
                     config: dict[str, Any] | None) -> Trigger:
        async with self._changing():
            trigger = self.get(trigger_id)
            if task is not None:
                _require_task(task)
            spec = trigger.spec.updated(task=task, trigger_config=config)  # validates first
            key = self._key(trigger_id)
            reschedule = trigger.state.active and spec.timer != trigger.spec.timer
            if reschedule and spec.timer is not None and key in self.scheduler:
                await self.scheduler.rearm(key, spec.timer)
            trigger.spec = spec
            if reschedule:  # ticks up to now are not caught up under the new schedule
                trigger.state = trigger.state.after_skip(last_tick=self.clock.time())
            if reschedule and key not in self.scheduler:
                await self._arm(trigger, resume=False)
            if trigger.source == "api":
                self.saved.api[trigger_id] = spec
            else:
                self.saved.patched[trigger_id] = spec
            await self._save()
            await self.session.emit_durable(TriggerUpdated(**self._fields(trigger)))
            return trigger

    async def remove(self, trigger_id: str) -> None:
        async with self._changing():
            trigger = self.get(trigger_id)
            await self.scheduler.disarm(self._key(trigger_id))
            del self.triggers[trigger_id]
            self.saved.api.pop(trigger_id, None)
            self.saved.patched.pop(trigger_id, None)
            self.saved.state.pop(trigger_id, None)
            if trigger.source == "folder":
                self.saved.removed.add(trigger_id)
            await self._save()
            await self.session.emit_durable(TriggerRemoved(trigger_id=trigger_id))

    async def activate(self, trigger_id: str) -> Trigger:
        async with self._changing():
            trigger = self.get(trigger_id)
            if not trigger.state.active:
                now = self.clock.time()  # a tick handled before a clock change stays handled
                trigger.state = trigger.state.after_skip(last_tick=now).model_copy(
                    update={"active": True, "anchor": now})
                await self._save()
                await self._arm(trigger, resume=False)
            await self.session.emit_durable(TriggerActivated(**self._fields(trigger)))
            await self._take_inbox(trigger)
            return trigger

    async def deactivate(self, trigger_id: str) -> Trigger:
        async with self._changing():
            trigger = self.get(trigger_id)
            await self.scheduler.disarm(self._key(trigger_id))
            if trigger.state.active:
                trigger.state = trigger.state.model_copy(update={"active": False})
                await self._save()
            await self.session.emit_durable(TriggerDeactivated(trigger_id=trigger_id))
            return trigger

    async def run(self, trigger_id: str, payload: Any = None) -> int:
        """Fire once now (the schedule is left alone); the seq of ``trigger_fired``."""
        return await self._fire(self.get(trigger_id), tick=None, manual=True, payload=payload)

    # -- firing ---------------------------------------------------------------------------------
    async def _arm(self, trigger: Trigger, *, resume: bool) -> None:
        timer = trigger.spec.timer
        if timer is None:
            return
        now = self.clock.time()
        state = trigger.state
        if state.anchor is None or state.last_tick is None:
            state = state.model_copy(update={"anchor": state.anchor or now,
                                             "last_tick": state.last_tick or now})
            trigger.state = state
            await self._save()
        trigger_id = trigger.spec.id
        self.scheduler.arm(
            self._key(trigger_id), timer, anchor=state.anchor or now,
            last_tick=state.last_tick if resume else max(state.last_tick or now, now),
            on_fire=lambda info: self._on_tick(trigger_id, info),
            on_missed=lambda info: self._on_missed(trigger_id, info))

    async def _on_tick(self, trigger_id: str, info: FireInfo) -> None:
        async with self._lock, self._fenced():
            trigger = self.triggers.get(trigger_id)
            if (not self._stopped and trigger is not None and trigger.state.active
                    and await self._claimed(trigger, info.tick)):
                await self._fire(trigger, tick=info.tick, manual=False, missed=info.missed)

    async def _on_missed(self, trigger_id: str, info: MissedInfo) -> None:
        async with self._lock, self._fenced():
            trigger = self.triggers.get(trigger_id)
            if self._stopped or trigger is None:
                return
            if not info.fired:
                trigger.state = trigger.state.after_skip(last_tick=info.last)
                self._outcome(trigger, "skipped")
                await self._save()
            await self.session.emit_durable(TriggerMissed(
                trigger_id=trigger_id, missed=info.count, capped=info.capped,
                first_missed_at=int(info.first * 1000), last_missed_at=int(info.last * 1000),
                policy=info.policy))

    async def _fire(self, trigger: Trigger, *, tick: float | None, manual: bool,
                    payload: Any = None, missed: int = 0) -> int:
        """Store the advanced state, log ``trigger_fired``, hand the task to the queen.

        Timer fires hold the lock, so that a change waits for them instead of cancelling
        their task half-way; manual and webhook fires run in their own request (nothing
        cancels them) and need no lock, as every state change is a read-modify-write without
        an ``await`` inside. The queen's input is logged after ``trigger_fired`` and awaited
        durable, which makes both durable with one wait.
        """
        if self.parked:  # by its spend limit: held until it resumes (trigger_hold.py)
            return await self._hold(trigger, tick=tick, manual=manual, payload=payload,
                                    missed=missed)
        now = self.clock.time()
        trigger.state = trigger.state.after_fire(at=now, tick=tick).with_outcome("fired", at=now)
        await self._save()
        spec = trigger.spec
        event, stored = self.session.emit(TriggerFired(
            **self._fields(trigger), tick=None if tick is None else int(tick * 1000),
            manual=manual, missed=missed, payload=payload))
        try:
            _, coalesced = await self.queen.deliver(fire_text(spec, payload), source="trigger",
                                                    key=spec.id, trigger_seq=event.seq)
        except HiveError as exc:  # the fire is logged; the card says why the queen lacks it
            self._outcome(trigger, "failed", f"{exc.code}: {exc.message}")
            await self._save()
            raise
        if coalesced:
            self._outcome(trigger, "coalesced")
            await self._save()
        await stored
        return event.seq

    async def _save(self) -> None:
        # States of folder triggers whose colony is not loaded stay (they come back with it).
        self.saved.state |= {tid: t.state for tid, t in self.triggers.items()}
        await self.store.save(self.saved)

    def _key(self, trigger_id: str) -> str:
        return f"{self.session.id}/{trigger_id}"

    # -- cards ----------------------------------------------------------------------------------
    def _fields(self, trigger: Trigger) -> dict[str, Any]:
        """The card's fields, as the ``trigger_*`` events carry them (flat)."""
        active = trigger.state.active
        next_at = self.scheduler.next_fire_at(self._key(trigger.spec.id)) if active else None
        return card_fields(trigger, next_at, self.clock.time())

    def card(self, trigger: Trigger) -> TriggerCard:
        """A trigger card; its ``error``: why it cannot work as defined (e.g. its webhook
        secret is not set)."""
        return trigger_card(self._fields(trigger), self._problem(trigger), trigger.state)

    def _problem(self, trigger: Trigger) -> str | None:
        webhook = trigger.spec.webhook
        return missing_secret(webhook, self.secret) if webhook is not None else None

    def card_of(self, trigger_id: str) -> TriggerCard:
        """The card of trigger ``trigger_id`` (404 ``trigger_not_found``)."""
        return self.card(self.get(trigger_id))

    def cards(self) -> list[TriggerCard]:
        return ([self.card(t) for t in self.triggers.values()]
                + [problem_card(p) for p in self.problems])


def _require_task(task: str) -> None:
    if not task.strip():
        raise TaskRequired()
