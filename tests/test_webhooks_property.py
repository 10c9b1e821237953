"""Property: a correctly signed delivery always verifies; changing any single byte of its body,
timestamp, id or signature never does (GitHub signs the body only, and its hex digest is
case-insensitive: a change of case is the same signature)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from standardwebhooks import Webhook

from hive_server.errors import Unauthorized
from hive_server.models.triggers import WebhookConfig
from hive_server.services.webhooks.signatures import verify_signature

NOW = 1_800_000_000
STANDARD = WebhookConfig(signature="standard", secret_env="HOOK_SECRET")
GITHUB = WebhookConfig(signature="github", secret_env="GH_SECRET")
SECRETS = st.binary(min_size=16, max_size=48).map(
    lambda key: "whsec_" + base64.b64encode(key).decode())
BODIES = st.text(max_size=200).map(lambda text: text.encode("utf-8"))
IDS = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="."),
              min_size=1, max_size=40)
CHARS = st.characters(max_codepoint=0x17F)  # a header value's replacement character


def standard(secret: str, msg_id: str, ts: int, body: bytes) -> dict[str, str]:
    sig = Webhook(secret).sign(msg_id, datetime.fromtimestamp(ts, UTC), body.decode())
    return {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": sig}


def github(secret: str, body: bytes) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"x-hub-signature-256": f"sha256={digest}", "x-github-delivery": "d-1"}


def refused(cfg: WebhookConfig, secret: str, headers: dict[str, str], body: bytes) -> bool:
    try:
        verify_signature(cfg, secret, headers, body, NOW)
    except Unauthorized:
        return True
    return False


@st.composite
def changed_text(draw: st.DrawFn, value: str) -> str:
    index = draw(st.integers(0, len(value) - 1))
    new = draw(CHARS.filter(lambda ch: ch != value[index]))
    return value[:index] + new + value[index + 1:]


@st.composite
def changed_bytes(draw: st.DrawFn, value: bytes) -> bytes:
    index = draw(st.integers(0, len(value) - 1))
    new = draw(st.integers(0, 255).filter(lambda b: b != value[index]))
    return value[:index] + bytes([new]) + value[index + 1:]


@settings(max_examples=80, deadline=None)
@given(SECRETS, IDS, st.integers(NOW - 299, NOW + 299), BODIES, st.data())
def test_standard_signature_verifies_and_no_single_byte_change_does(secret, msg_id, ts, body,
                                                                    data):
    headers = standard(secret, msg_id, ts, body)
    assert verify_signature(STANDARD, secret, headers, body, NOW) == msg_id
    part = data.draw(st.sampled_from(["body", "webhook-id", "webhook-timestamp",
                                      "webhook-signature"]))
    if part == "body":
        assume(body)
        assert refused(STANDARD, secret, headers, data.draw(changed_bytes(body)))
    else:
        changed = {**headers, part: data.draw(changed_text(headers[part]))}
        assert refused(STANDARD, secret, changed, body), (part, changed[part])


@settings(max_examples=80, deadline=None)
@given(st.text(min_size=1, max_size=40), BODIES, st.data())
def test_github_signature_verifies_and_no_single_byte_change_does(secret, body, data):
    headers = github(secret, body)
    assert verify_signature(GITHUB, secret, headers, body, NOW) == "d-1"
    if data.draw(st.booleans()) and body:
        assert refused(GITHUB, secret, headers, data.draw(changed_bytes(body)))
        return
    signature = headers["x-hub-signature-256"]
    changed = data.draw(changed_text(signature))
    assume(changed.lower() != signature.lower())  # hex (and the scheme) ignore case
    assert refused(GITHUB, secret, {**headers, "x-hub-signature-256": changed}, body), changed


@pytest.mark.parametrize("flip", [str.upper, str.lower])
def test_github_hex_is_case_insensitive(flip):
    headers = github("s3cret", b"{}")
    headers["x-hub-signature-256"] = flip(headers["x-hub-signature-256"])
    assert verify_signature(GITHUB, "s3cret", headers, b"{}", NOW) == "d-1"
