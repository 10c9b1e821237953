"""``SavedTriggers.webhook_config``: what another node reads of a session's saved trigger state
to check a webhook delivery against that session's own config (services/triggers/store.py,
used by the ingress with --redis). It must answer what the live session answers
(``SessionTriggers.webhook_config``) for every trigger, whatever the session did: a config
PATCHed, a trigger deactivated, deleted, created over the API, another agent loaded."""

from __future__ import annotations

import pytest

from hive_server import keys
from hive_server.models.triggers import parse_triggers_file
from hive_server.services.triggers.store import TriggerStore
from tests.conftest import make_settings
from tests.hive_api import HiveApi
from tests.test_webhooks_api import ENV, HOOKS, OTHER_SECRET
from tests.trigger_support import webhook, write_triggers_agent

IDS = ["push", "gh", "open", "quiet", "unset", "tick", "api-hook", "nope"]
OTHER = [webhook("push", "the other push", signature="none"),
         webhook("open", "the other open", signature="standard", secret_env="MY_SECRET",
                 enabled=False)]


@pytest.fixture
def settings(tmp_path):
    settings = make_settings(tmp_path, env={**ENV, "OTHER_ENV": OTHER_SECRET})
    write_triggers_agent(settings.agents_dir, "hooks", HOOKS)
    write_triggers_agent(settings.agents_dir, "other", OTHER)
    return settings


def assert_same_as_the_live_session(client, settings, agent_id: str) -> None:
    live = client.app[keys.SESSIONS].get("s")
    saved, aside = TriggerStore(settings.home / "sessions" / "s").read()
    assert aside is None
    folder, _ = parse_triggers_file((settings.agents_dir / agent_id / "triggers.json")
                                    .read_bytes())
    by_id = {spec.id: spec for spec in folder}
    for trigger_id in IDS:
        assert saved.webhook_config(trigger_id, agent_id, by_id.get(trigger_id)) == (
            live.triggers.webhook_config(trigger_id)), trigger_id


async def test_the_saved_state_gives_each_triggers_config_as_the_live_session_does(
        client, settings):
    api = HiveApi(client)
    await api.create_session(session_id="s", agent_id="hooks")
    assert_same_as_the_live_session(client, settings, "hooks")
    resp = await client.patch("/api/sessions/s/triggers/push", json={"trigger_config": {
        "signature": "standard", "secret_env": "OTHER_ENV"}})
    assert resp.status == 200, await resp.text()
    assert (await client.post("/api/sessions/s/triggers/open/deactivate")).status == 200
    assert (await client.delete("/api/sessions/s/triggers/gh")).status == 200
    await api.add_trigger("s", webhook("api-hook", signature="none"))
    assert_same_as_the_live_session(client, settings, "hooks")
    assert client.app[keys.SESSIONS].get("s").triggers.webhook_config("push").secret_env == (
        "OTHER_ENV")

    assert (await client.delete("/api/sessions/s/colony")).status == 200
    resp = await client.post("/api/sessions/s/colony", json={"agent_id": "other"})
    assert resp.status == 201, await resp.text()
    assert_same_as_the_live_session(client, settings, "other")
