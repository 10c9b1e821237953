"""A session's trigger and the card built from it (what the API and the ``trigger_*`` events
show). No I/O: the caller passes the next fire time and the clock's now."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from hive_server.models.agent_views import TriggerCard
from hive_server.models.triggers import TriggerProblem, TriggerSpec, TriggerState

Source = Literal["folder", "api"]


@dataclasses.dataclass(slots=True)
class Trigger:
    spec: TriggerSpec
    source: Source
    state: TriggerState


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else int(seconds * 1000)


def card_fields(trigger: Trigger, next_at: float | None, now: float) -> dict[str, Any]:
    """The card's fields, as the ``trigger_*`` events carry them (flat)."""
    spec, state = trigger.spec, trigger.state
    return {
        "trigger_id": spec.id, "name": spec.name, "trigger_type": spec.trigger_type,
        "trigger_config": spec.trigger_config, "task": spec.task, "active": state.active,
        "next_fire_in": None if next_at is None else max(0.0, next_at - now),
        "next_fire_at": _ms(next_at), "fire_count": state.fire_count,
        "last_fired_at": _ms(state.last_fired_at), "source": trigger.source,
        "enabled": spec.enabled,
    }


def outcome_fields(state: TriggerState) -> dict[str, Any]:
    """Why it did (not) fire: the latest outcome and the latest error, times in epoch ms."""
    return {"last_outcome": state.last_outcome, "last_outcome_at": _ms(state.last_outcome_at),
            "last_error": state.last_error, "last_error_at": _ms(state.last_error_at)}


def trigger_card(fields: dict[str, Any], error: str | None, state: TriggerState) -> TriggerCard:
    """A trigger's card: its event fields (``card_fields``) plus ``id`` (our older name of
    ``trigger_id``), ``error`` (why it cannot work as defined) and its last outcome."""
    return TriggerCard(id=fields["trigger_id"], **fields, error=error, **outcome_fields(state))


def problem_card(problem: TriggerProblem) -> TriggerCard:
    """The card of a triggers.json entry that could not be used: its id and error; every
    other key has the card model's default (null, inactive, never fired)."""
    return TriggerCard(id=problem.trigger_id, trigger_id=problem.trigger_id,
                       name=problem.trigger_id, source="folder", error=problem.error)
