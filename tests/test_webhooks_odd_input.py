"""Webhook deliveries with odd bytes: header values that are not UTF-8 (sent over a raw socket,
as no HTTP client library would), and bodies that are empty, binary or JSON scalars. None of
them is ever a 5xx, and a delivery that was accepted is the one recorded."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import create_session, make_settings
from tests.queen_support import of_type
from tests.test_webhooks_api import ENV, HOOKS, deliver, log_of
from tests.trigger_support import fired, write_triggers_agent


@pytest.fixture
def settings(tmp_path):
    settings = make_settings(tmp_path, env=ENV)
    write_triggers_agent(settings.agents_dir, "hooks", HOOKS)
    return settings


async def raw_post(client: TestClient, path: str, header_lines: bytes,
                   body: bytes = b"{}") -> tuple[int, dict]:
    """POST with header bytes exactly as given; the status and the JSON answer."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n%s"
                 b"Connection: close\r\n\r\n%s" % (path.encode(), len(body), header_lines, body))
    await writer.drain()
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    head, _, payload = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(payload)


NOT_UTF8 = b"User-Agent: \xff\xfe agent\r\nX-Request-Id: req-\xe9\r\nContent-Type: text/\xe9\r\n"


async def test_header_values_that_are_not_utf8_are_stored_readable_not_a_500(client,
                                                                                 settings):
    await create_session(client, session_id="s", agent_id="hooks")
    status, body = await raw_post(client, "/hooks/hooks/open", NOT_UTF8)
    assert status == 202, body
    assert body["delivered_to"] == ["s"]
    (received,) = of_type(log_of(settings), "webhook_received")
    headers = received["data"]["headers"]
    assert headers["user-agent"].endswith(" agent") and "\ufffd" in headers["user-agent"]
    assert len(fired(log_of(settings))) == 1


async def test_a_held_delivery_with_such_headers_is_held_and_its_id_not_burnt(client,
                                                                               settings):
    header_lines = NOT_UTF8 + b"Webhook-Id: msg_odd\r\n"
    status, body = await raw_post(client, "/hooks/hooks/open", header_lines)
    assert status == 202 and body == {"delivery_id": "msg_odd", "delivered_to": [],
                                      "held": True}
    await create_session(client, session_id="s", agent_id="hooks")
    (received,) = of_type(log_of(settings), "webhook_received")
    assert received["data"]["delivery_id"] == "msg_odd" and received["data"]["held"] is True


@pytest.mark.parametrize("raw,payload", [
    (b"", None), (b"null", None), (b'"text"', "text"), (b"\x00\xff binary", "\x00\ufffd binary"),
    (b"[" * 3000 + b"]" * 3000, "[" * 3000 + "]" * 3000),
], ids=["empty", "null", "json-string", "binary", "too-deep-for-json"])
async def test_odd_bodies_are_delivered_as_given(client, settings, raw, payload):
    await create_session(client, session_id="s", agent_id="hooks")
    status, _ = await deliver(client, "open", raw, {"Content-Type": "application/octet-stream"})
    assert status == 202
    (fire,) = fired(log_of(settings))
    assert fire["data"]["payload"] == payload
