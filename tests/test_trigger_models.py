"""Trigger specs: typed timer/webhook configs, triggers.json parsing, persisted state."""

from __future__ import annotations

import orjson
import pytest
from pydantic import ValidationError

from hive_server.errors import InvalidInput
from hive_server.models.triggers import (
    MAX_INTERVAL_MINUTES,
    TimerConfig,
    TriggerSpec,
    TriggerState,
    WebhookConfig,
    parse_triggers_file,
)


def timer(**config: object) -> TriggerSpec:
    return TriggerSpec.model_validate(
        {"id": "t1", "trigger_type": "timer", "trigger_config": config}
    )


@pytest.mark.parametrize(
    "expr", ["0 9 * * 1-5", "*/15 * * * *", "30 2 * * *", "0 9 * * mon-fri", "0 0 L * *",
             "0 9 * * 5#3", "@daily", "  0   9 * * *  "],
)
def test_valid_cron_expressions_are_accepted(expr: str) -> None:
    spec = timer(cron=expr, timezone="Europe/Berlin")
    assert spec.timer is not None
    assert spec.timer.cron == " ".join(expr.split())
    assert spec.webhook is None


@pytest.mark.parametrize(
    "expr",
    ["", "* * * *", "* * * * * *", "61 * * * *", "a b c d e", "0 0 30 2 *", "H * * * *",
     "R * * * *", "0 R * * *", "@reboot"],
)
def test_invalid_cron_expressions_are_rejected(expr: str) -> None:
    with pytest.raises(ValidationError, match="cron"):
        timer(cron=expr)


def test_day_names_containing_h_or_r_are_not_taken_for_hashed_fields() -> None:
    assert timer(cron="0 9 * * thu,fri").timer is not None
    assert timer(cron="0 9 * mar *").timer is not None


def test_timezone_defaults_to_utc_and_must_be_iana() -> None:
    cfg = TimerConfig(cron="0 9 * * *")
    assert cfg.timezone == "UTC"
    assert cfg.zone.key == "UTC"
    assert TimerConfig(cron="0 9 * * *", timezone="America/New_York").zone.key == (
        "America/New_York"
    )
    for bad in ["Mars/Olympus", "", "../../etc/passwd", "/etc/localtime", "Europe/"]:
        with pytest.raises(ValidationError, match="time zone"):
            TimerConfig(cron="0 9 * * *", timezone=bad)


@pytest.mark.parametrize("minutes", [0, -5, 0.001, 1 / 120, float("nan"), float("inf"), "5",
                                     True, 5e15, 1e308, MAX_INTERVAL_MINUTES + 1])
def test_bad_intervals_are_rejected(minutes: object) -> None:
    with pytest.raises(ValidationError, match="interval_minutes"):
        timer(interval_minutes=minutes)


@pytest.mark.parametrize("minutes,seconds", [(5, 300.0), (0.5, 30.0), (1 / 60, 1.0), (2.25, 135.0),
                                             (MAX_INTERVAL_MINUTES, MAX_INTERVAL_MINUTES * 60.0)])
def test_fractional_intervals_down_to_one_second_are_fine(minutes: float, seconds: float) -> None:
    cfg = timer(interval_minutes=minutes).timer
    assert cfg is not None
    assert cfg.interval_seconds == pytest.approx(seconds)
    assert cfg.cron is None


def test_a_timer_needs_exactly_one_of_cron_and_interval() -> None:
    with pytest.raises(ValidationError, match="exactly one"):
        timer()
    with pytest.raises(ValidationError, match="exactly one"):
        timer(cron="0 9 * * *", interval_minutes=5)


def test_misfire_policy_defaults_to_fire_once_and_is_checked() -> None:
    assert TimerConfig(interval_minutes=5).misfire == "fire_once"
    assert TimerConfig(interval_minutes=5, misfire="skip").misfire == "skip"
    with pytest.raises(ValidationError):
        TimerConfig(interval_minutes=5, misfire="catch_up")


def test_unknown_config_keys_are_errors_not_silent_defaults() -> None:
    with pytest.raises(ValidationError, match="timzone"):
        timer(cron="0 9 * * *", timzone="Europe/Berlin")


def test_webhook_config_needs_a_secret_env_unless_unsigned() -> None:
    cfg = WebhookConfig(signature="standard", secret_env="HOOK_SECRET")
    assert cfg.misfire == "fire_once"
    assert WebhookConfig(signature="none").secret_env is None
    with pytest.raises(ValidationError, match="secret_env"):
        WebhookConfig(signature="github")
    with pytest.raises(ValidationError, match="environment variable"):
        WebhookConfig(signature="github", secret_env="not a name")
    with pytest.raises(ValidationError):
        WebhookConfig(signature="hmac", secret_env="X")


def test_config_must_match_the_trigger_type() -> None:
    with pytest.raises(ValidationError, match="invalid timer trigger_config"):
        TriggerSpec.model_validate(
            {"id": "a", "trigger_type": "timer",
             "trigger_config": {"signature": "github", "secret_env": "S"}}
        )
    with pytest.raises(ValidationError, match="invalid webhook trigger_config"):
        TriggerSpec.model_validate(
            {"id": "a", "trigger_type": "webhook", "trigger_config": {"cron": "0 9 * * *"}}
        )
    with pytest.raises(ValidationError):
        TriggerSpec.model_validate({"id": "a", "trigger_type": "email", "trigger_config": {}})


def test_spec_defaults_name_to_id_and_ignores_extra_keys() -> None:
    spec = TriggerSpec.model_validate(
        {"id": "daily.report", "trigger_type": "webhook",
         "trigger_config": {"signature": "github", "secret_env": "GH_SECRET"},
         "description": "hive extra", "ui": {"x": 1}}
    )
    assert spec.name == "daily.report"
    assert spec.task == ""
    assert spec.enabled is True
    assert spec.webhook == WebhookConfig(signature="github", secret_env="GH_SECRET")
    assert spec.config is spec.webhook
    assert "description" not in spec.model_dump()
    assert spec.trigger_config == {"signature": "github", "secret_env": "GH_SECRET"}


@pytest.mark.parametrize("bad_id", ["", "../x", ".hidden", "a/b", "x" * 65, "a b", "é"])
def test_unsafe_ids_are_rejected(bad_id: str) -> None:
    with pytest.raises(ValidationError):
        TriggerSpec.model_validate(
            {"id": bad_id, "trigger_type": "timer", "trigger_config": {"interval_minutes": 1}}
        )


def test_parse_raises_invalid_input_with_a_readable_message() -> None:
    with pytest.raises(InvalidInput) as info:
        TriggerSpec.parse({"id": "x", "trigger_type": "timer",
                           "trigger_config": {"interval_minutes": 0}})
    assert info.value.code == "invalid_trigger"
    assert "interval_minutes" in info.value.message
    assert "Value error" not in info.value.message


def test_updated_revalidates_and_leaves_the_original_alone() -> None:
    spec = timer(interval_minutes=5)
    changed = spec.updated(task="new task", trigger_config={"cron": "0 8 * * *"})
    assert changed.task == "new task"
    assert changed.timer is not None and changed.timer.cron == "0 8 * * *"
    assert spec.timer is not None and spec.timer.interval_minutes == 5
    with pytest.raises(InvalidInput):
        spec.updated(trigger_config={"cron": "nope"})


def test_triggers_file_with_mixed_entries_keeps_the_good_ones() -> None:
    raw = orjson.dumps([
        {"id": "morning", "name": "Morning", "trigger_type": "timer",
         "trigger_config": {"cron": "0 9 * * 1-5", "timezone": "Europe/Berlin"}, "task": "brief"},
        {"id": "bad-cron", "trigger_type": "timer", "trigger_config": {"cron": "99 * * * *"}},
        "junk",
        42,
        {"trigger_type": "timer", "trigger_config": {"interval_minutes": 5}},
        {"id": "gh", "trigger_type": "webhook",
         "trigger_config": {"signature": "github", "secret_env": "GH"}, "enabled": False},
        {"id": "morning", "trigger_type": "timer", "trigger_config": {"interval_minutes": 1}},
        {"id": "zero", "trigger_type": "timer", "trigger_config": {"interval_minutes": 0}},
    ])
    specs, problems = parse_triggers_file(raw)
    assert [s.id for s in specs] == ["morning", "gh"]
    assert specs[1].enabled is False
    by_index = {p.index: p for p in problems}
    assert sorted(by_index) == [1, 2, 3, 4, 6, 7]
    assert by_index[1].trigger_id == "bad-cron" and "cron" in by_index[1].error
    assert by_index[2].trigger_id is None and "object" in by_index[2].error
    assert by_index[4].trigger_id is None and "id" in by_index[4].error
    assert by_index[6].trigger_id == "morning" and "duplicate" in by_index[6].error
    assert by_index[7].trigger_id == "zero"


@pytest.mark.parametrize("raw", [b"", b"{not json", b'{"id": "x"}', b"null", b"\xff\xfe"])
def test_a_triggers_file_that_is_not_an_array_is_one_problem(raw: bytes) -> None:
    specs, problems = parse_triggers_file(raw)
    assert specs == []
    assert len(problems) == 1
    assert problems[0].trigger_id is None


def test_empty_array_is_fine() -> None:
    assert parse_triggers_file(b"[]") == ([], [])


def test_trigger_state_round_trips_and_tracks_fires() -> None:
    state = TriggerState(active=True, anchor=1000.0)
    fired = state.after_fire(at=1061.5, tick=1060.0)
    assert (fired.fire_count, fired.last_fired_at, fired.last_tick) == (1, 1061.5, 1060.0)
    manual = fired.after_fire(at=1070.0, tick=None)
    assert (manual.fire_count, manual.last_tick) == (2, 1060.0)
    skipped = manual.after_skip(last_tick=1300.0)
    assert skipped.last_tick == 1300.0 and skipped.fire_count == 2
    assert skipped.after_skip(last_tick=1200.0).last_tick == 1300.0
    assert TriggerState.model_validate_json(skipped.model_dump_json()) == skipped
    assert TriggerState.model_validate({"future_field": 1}) == TriggerState()
