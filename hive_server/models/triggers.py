"""Trigger definitions (timer and webhook), their typed configs and persisted state.

``TriggerSpec`` is one entry of an agent folder's ``triggers.json`` (a Hive-compatible JSON
array) or of a trigger created over the API. ``trigger_config`` keeps the dict exactly as given
(it is what the trigger card shows); the model validator parses it into a typed
``TimerConfig`` or ``WebhookConfig`` reachable through ``spec.config`` / ``spec.timer`` /
``spec.webhook``. Typed configs forbid unknown keys so that a typo (``"timzone"``) is an error
rather than a silent default.
"""

from __future__ import annotations

import re
from collections.abc import Container
from datetime import UTC, datetime
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from croniter import croniter
from pydantic import (
    ConfigDict,
    Field,
    JsonValue,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from hive_server.errors.triggers import TriggerInvalid
from hive_server.models.base import Model
from hive_server.models.contract import (
    CRON_PATTERN,
    SAFE_ID_PATTERN,
    TITLE,
    TRIGGER_ID,
    JsonSchema,
    zone_schema,
)
from hive_server.models.trigger_events import TriggerOutcome
from hive_server.models.validation import describe_validation_error

SAFE_ID_RE = re.compile(SAFE_ID_PATTERN)
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")

MisfirePolicy = Literal["skip", "fire_once"]
TriggerType = Literal["timer", "webhook"]
SignatureScheme = Literal["standard", "github", "none"]

ERROR_LIMIT = 1000
"""A trigger's ``last_error`` is cut to this many characters."""
MIN_INTERVAL_MINUTES = 1 / 60
"""The shortest interval: one second."""
MAX_INTERVAL_MINUTES = 10 * 366 * 24 * 60
"""The longest interval: ten years (fire times stay far inside every integer range)."""

CRON_ALIASES: dict[str, str] = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
"""Accepted ``@`` shorthands and the five fields they stand for."""

_RANDOM_OR_HASHED = re.compile(r"^[HR](\(|/|$)", re.IGNORECASE)
_CRON_CHECK_FROM = datetime(2024, 1, 1, tzinfo=UTC)


def cron_fields(expr: str) -> list[str]:
    """The five fields of a (validated) cron expression, aliases expanded."""
    return CRON_ALIASES.get(expr, expr).split()


def _check_cron(expr: str) -> str:
    expr = " ".join(expr.split())
    fields = cron_fields(expr)
    if len(fields) != 5:
        raise ValueError("cron must have 5 fields (minute hour day month weekday)")
    parts = (part for field in fields for part in field.split(","))
    if any(_RANDOM_OR_HASHED.match(part) for part in parts):
        raise ValueError("random (R) and hashed (H) cron fields are not supported")
    try:
        croniter(expr, _CRON_CHECK_FROM).get_next(float)
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"invalid cron expression {expr!r}: {exc}") from None
    return expr


def _check_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"unknown time zone {name!r} (use an IANA name)") from None
    return name


def timer_schema(schema: JsonSchema | None = None, _: object = None) -> JsonSchema:
    """The exact schema of a timer's config: a cron (with its zone) or an interval."""
    common = {"timezone": zone_schema(), "misfire": MISFIRE_SCHEMA}
    cron = {"anyOf": [{"type": "string", "pattern": CRON_PATTERN},
                      {"enum": sorted(CRON_ALIASES)}]}
    interval = {"type": "number", "minimum": MIN_INTERVAL_MINUTES,
                "maximum": MAX_INTERVAL_MINUTES}
    exact = {"oneOf": [
        {"type": "object", "additionalProperties": False, "required": ["cron"],
         "properties": {"cron": cron, **common}},
        {"type": "object", "additionalProperties": False, "required": ["interval_minutes"],
         "properties": {"interval_minutes": interval, **common}},
    ]}
    return _replace(schema, exact)


def webhook_schema(schema: JsonSchema | None = None, _: object = None) -> JsonSchema:
    """The exact schema of a webhook's config: a signed scheme needs ``secret_env``."""
    env = {"type": "string", "pattern": ENV_NAME_RE.pattern}
    exact = {"oneOf": [
        {"type": "object", "additionalProperties": False, "required": ["signature"],
         "properties": {"signature": {"const": "none"}, "secret_env": {"anyOf": [
             env, {"type": "null"}]}, "misfire": MISFIRE_SCHEMA}},
        {"type": "object", "additionalProperties": False,
         "required": ["signature", "secret_env"],
         "properties": {"signature": {"enum": ["standard", "github"]}, "secret_env": env,
                        "misfire": MISFIRE_SCHEMA}},
    ]}
    return _replace(schema, exact)


def trigger_schema(schema: JsonSchema | None = None, _: object = None) -> JsonSchema:
    """A trigger definition, discriminated on ``trigger_type``. ``id`` (or ``trigger_id``)
    may be left out when creating one over the API: ``user-<name slug>`` is used."""
    common = {"id": TRIGGER_ID, "trigger_id": TRIGGER_ID, "name": {"type": "string"},
              "task": {"type": "string", **TITLE}, "enabled": {"type": "boolean"}}
    exact = {"oneOf": [  # no task: 400 task_required
        {"type": "object", "required": ["trigger_type", "trigger_config", "task"], "properties": {
            "trigger_type": {"const": kind}, "trigger_config": config, **common}}
        for kind, config in (("timer", timer_schema()), ("webhook", webhook_schema()))]}
    return _replace(schema, exact)


def _replace(schema: JsonSchema | None, exact: JsonSchema) -> JsonSchema:
    """``exact`` in place of pydantic's schema (kept only for its title)."""
    if schema is None:
        return exact
    title = schema.get("title")
    schema.clear()
    schema.update({"title": title, **exact} if title else exact)
    return schema


MISFIRE_SCHEMA: JsonSchema = {"enum": ["skip", "fire_once"], "default": "fire_once"}


class TimerConfig(Model):
    """``{"cron": "0 9 * * 1-5", "timezone": "Europe/Berlin"}`` or ``{"interval_minutes": 5}``."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=timer_schema)

    cron: str | None = None
    timezone: str = "UTC"
    interval_minutes: float | None = Field(default=None, strict=True, allow_inf_nan=False)
    misfire: MisfirePolicy = "fire_once"

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str | None) -> str | None:
        return None if value is None else _check_cron(value)

    @field_validator("timezone")
    @classmethod
    def _valid_zone(cls, value: str) -> str:
        return _check_zone(value)

    @field_validator("interval_minutes")
    @classmethod
    def _valid_interval(cls, value: float | None) -> float | None:
        if value is not None and not value > 0:
            raise ValueError("must be > 0")
        if value is not None and value < MIN_INTERVAL_MINUTES:
            raise ValueError("must be at least 1/60 (one second)")
        if value is not None and value > MAX_INTERVAL_MINUTES:
            raise ValueError(f"must be at most {MAX_INTERVAL_MINUTES} (ten years)")
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> TimerConfig:
        if (self.cron is None) == (self.interval_minutes is None):
            raise ValueError("a timer needs exactly one of 'cron' or 'interval_minutes'")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def interval_seconds(self) -> float | None:
        return None if self.interval_minutes is None else self.interval_minutes * 60.0


class WebhookConfig(Model):
    """``{"signature": "standard"|"github"|"none", "secret_env": "MY_SECRET"}``."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=webhook_schema)

    signature: SignatureScheme
    secret_env: str | None = None
    misfire: MisfirePolicy = "fire_once"

    @field_validator("secret_env")
    @classmethod
    def _valid_env_name(cls, value: str | None) -> str | None:
        if value is not None and not ENV_NAME_RE.fullmatch(value):
            raise ValueError("must be an environment variable name")
        return value

    @model_validator(mode="after")
    def _secret_needed(self) -> WebhookConfig:
        if self.signature != "none" and self.secret_env is None:
            raise ValueError(f"signature {self.signature!r} needs 'secret_env'")
        return self


class TriggerSpec(Model):
    """One trigger definition. Unknown top-level keys are ignored (Hive compatibility)."""

    model_config = ConfigDict(extra="ignore", frozen=True, json_schema_extra=trigger_schema)

    id: str = Field(pattern=SAFE_ID_PATTERN)
    name: str = ""
    trigger_type: TriggerType
    trigger_config: dict[str, JsonValue]
    task: str = ""
    enabled: bool = True

    _config: TimerConfig | WebhookConfig = PrivateAttr()

    @model_validator(mode="before")
    @classmethod
    def _default_name(cls, data: object) -> object:
        if isinstance(data, dict) and not data.get("name") and isinstance(data.get("id"), str):
            return {**data, "name": data["id"]}
        return data

    @model_validator(mode="after")
    def _parse_config(self) -> TriggerSpec:
        kind = TimerConfig if self.trigger_type == "timer" else WebhookConfig
        try:
            self._config = kind.model_validate(self.trigger_config)
        except ValidationError as exc:
            detail = describe_validation_error(exc)
            raise ValueError(f"invalid {self.trigger_type} trigger_config: {detail}") from None
        return self

    @classmethod
    def parse(cls, data: object) -> TriggerSpec:
        """Validate API input; raises ``TriggerInvalid`` (400 ``invalid_trigger``)."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise TriggerInvalid(describe_validation_error(exc)) from None

    def updated(
        self, *, task: str | None = None, trigger_config: dict[str, JsonValue] | None = None
    ) -> TriggerSpec:
        """A validated copy with a new task and/or config (for PATCH); self is unchanged."""
        data = self.model_dump()
        if task is not None:
            data["task"] = task
        if trigger_config is not None:
            data["trigger_config"] = trigger_config
        return TriggerSpec.parse(data)

    @property
    def config(self) -> TimerConfig | WebhookConfig:
        return self._config

    @property
    def timer(self) -> TimerConfig | None:
        return self._config if isinstance(self._config, TimerConfig) else None

    @property
    def webhook(self) -> WebhookConfig | None:
        return self._config if isinstance(self._config, WebhookConfig) else None


_SLUG_RE = re.compile(r"[^a-z0-9]+")


def id_from_name(name: str, taken: Container[str]) -> str:
    """Hive's id for a trigger created without one: ``user-<slug of name>``, then ``-2``,
    ``-3``... while taken."""
    slug = _SLUG_RE.sub("-", name.lower()).strip("-")[:48].strip("-") or "trigger"
    base = f"user-{slug}"
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}-{n}"
    return candidate


class TriggerProblem(Model):
    """A triggers.json entry that could not be used, and why."""

    model_config = ConfigDict(frozen=True)

    trigger_id: str | None
    error: str
    index: int | None = None


def _entry_problem(index: int, entry: object, error: str) -> TriggerProblem:
    raw_id = entry.get("id") if isinstance(entry, dict) else None
    trigger_id = raw_id if isinstance(raw_id, str) else None
    return TriggerProblem(trigger_id=trigger_id, error=error, index=index)


def parse_triggers_file(raw: bytes) -> tuple[list[TriggerSpec], list[TriggerProblem]]:
    """Parse a triggers.json; each bad entry becomes a problem and never stops the others."""
    try:
        entries = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return [], [TriggerProblem(trigger_id=None, error=f"triggers.json is not JSON: {exc}")]
    if not isinstance(entries, list):
        return [], [TriggerProblem(trigger_id=None, error="triggers.json must be a JSON array")]
    specs: list[TriggerSpec] = []
    problems: list[TriggerProblem] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            problems.append(_entry_problem(index, entry, "entry is not a JSON object"))
            continue
        try:
            spec = TriggerSpec.model_validate(entry)
        except ValidationError as exc:
            problems.append(_entry_problem(index, entry, describe_validation_error(exc)))
            continue
        if spec.id in seen:
            problems.append(_entry_problem(index, entry, f"duplicate trigger id {spec.id!r}"))
            continue
        seen.add(spec.id)
        specs.append(spec)
    return specs, problems


class TriggerState(Model):
    """What persists per session per trigger.

    ``last_tick`` is the scheduled tick last fired or skipped: a tick <= last_tick never fires
    again. ``anchor`` fixes an interval timer's phase (ticks at ``anchor + k * interval``).
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    active: bool = False
    fire_count: int = Field(default=0, ge=0)
    last_fired_at: float | None = None
    last_tick: float | None = None
    anchor: float | None = None
    last_outcome: TriggerOutcome | None = None
    last_outcome_at: float | None = None
    last_error: str | None = None
    last_error_at: float | None = None

    def with_outcome(self, outcome: TriggerOutcome, *, at: float,
                     error: str | None = None) -> TriggerState:
        """State after an outcome; ``error`` (for ``rejected`` and ``failed``) is kept as
        ``last_error`` until a later error replaces it."""
        update: dict[str, object] = {"last_outcome": outcome, "last_outcome_at": at}
        if error is not None:
            update |= {"last_error": error[:ERROR_LIMIT], "last_error_at": at}
        return self.model_copy(update=update)

    def after_fire(self, *, at: float, tick: float | None) -> TriggerState:
        """State after a fire; ``tick`` is None for a manual run (the schedule does not move)."""
        last_tick = self.last_tick if tick is None else _later(self.last_tick, tick)
        return self.model_copy(
            update={"fire_count": self.fire_count + 1, "last_fired_at": at, "last_tick": last_tick}
        )

    def after_skip(self, *, last_tick: float) -> TriggerState:
        """State after ticks were skipped up to ``last_tick``."""
        return self.model_copy(update={"last_tick": _later(self.last_tick, last_tick)})


def _later(current: float | None, tick: float) -> float:
    return tick if current is None else max(current, tick)
