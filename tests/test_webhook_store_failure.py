"""A delivery that cannot be stored is refused (503) and un-recorded, so a retry gets in."""

from __future__ import annotations

import pytest

from tests.conftest import make_settings
from tests.test_webhooks_api import ENV, HOOKS, deliver, standard
from tests.trigger_support import write_triggers_agent


@pytest.fixture
def settings(tmp_path):
    settings = make_settings(tmp_path, env=ENV)
    write_triggers_agent(settings.agents_dir, "hooks", HOOKS)
    return settings


async def test_unstorable_delivery_is_503_and_its_retry_is_not_a_duplicate(
        make_client, settings, fake_clock):
    client = await make_client(settings, clock=fake_clock)
    blocker = settings.home / "webhooks" / "inbox"
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("not a folder")  # the inbox cannot be created: a storage failure

    status, body = await deliver(client, "push", headers=standard(fake_clock, "msg_x"))
    assert status == 503
    assert body["code"] == "inbox_unavailable"

    blocker.unlink()
    status, body = await deliver(client, "push", headers=standard(fake_clock, "msg_x"))
    assert status == 202
    assert body == {"delivery_id": "msg_x", "delivered_to": [], "held": True}
    status, body = await deliver(client, "push", headers=standard(fake_clock, "msg_x"))
    assert status == 200 and body["duplicate"] is True

    await client.close()
    again = await make_client(settings, clock=fake_clock)
    status, body = await deliver(again, "push", headers=standard(fake_clock, "msg_x"))
    assert status == 200 and body["duplicate"] is True


async def test_an_unusable_delivery_store_is_503_and_nothing_is_accepted(
        make_client, settings, fake_clock):
    client = await make_client(settings, clock=fake_clock)
    seen = settings.home / "webhooks" / "deliveries.jsonl"
    seen.mkdir(parents=True)  # the ids seen cannot be read: a storage failure

    status, body = await deliver(client, "push", headers=standard(fake_clock, "msg_y"))
    assert status == 503
    assert body["code"] == "webhook_store_unavailable"
    assert not (settings.home / "webhooks" / "inbox").exists()

    seen.rmdir()
    status, body = await deliver(client, "push", headers=standard(fake_clock, "msg_y"))
    assert status == 202 and body["held"] is True
