"""Webhook signature verification and the header allow-list (dedup: ``deliveries.py``; the
cold-agent inbox: ``inbox.py``).

No HTTP framework here: the route hands over the raw body, the headers and the clock time.

Signature schemes (``WebhookConfig.signature``):

* ``standard`` (Standard Webhooks): headers ``webhook-id``, ``webhook-timestamp``,
  ``webhook-signature``; the expected ``v1,<base64 HMAC-SHA256>`` over
  ``"{id}.{timestamp}.{body}"`` is made by the reference library (``standardwebhooks``:
  secret decoding, HMAC, encoding) and compared in constant time with each of up to
  ``MAX_SIGNATURES`` space-separated signatures (secret rotation; garbage entries are
  skipped). The library's ``verify`` is not called: it reads the wall clock (we take ``now``
  from our clock) and raises one error for a missing header, a stale timestamp and a bad
  signature, which we tell apart, so the headers and the timestamp (within
  ``TOLERANCE_SECONDS`` either way) are checked here first. The secret is ``whsec_<base64>``
  (padding optional); a secret without the prefix is base64-decoded when it is valid base64
  (as the library does) and otherwise used as its UTF-8 bytes.
* ``github``: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, raw body)>``. GitHub
  signs no timestamp, so replays are stopped only by dedup on ``X-GitHub-Delivery`` — which
  also swallows a manual "redeliver" from GitHub's UI (same GUID).
* ``none``: nothing is checked (the web layer allows it on loopback only).

Signed bodies must be UTF-8 (webhook payloads are JSON text; the reference libraries decode
them too). Every problem — missing header, garbage base64, a bad timestamp, non-UTF-8 —
raises ``Unauthorized``; no other exception escapes ``verify_signature``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from standardwebhooks import Webhook

from hive_server.errors import Unauthorized
from hive_server.errors.triggers import (
    InvalidSignature,
    MissingSignature,
    SecretNotConfigured,
    StaleTimestamp,
)
from hive_server.models.triggers import WebhookConfig

log = logging.getLogger(__name__)

TOLERANCE_SECONDS = 300
"""Standard Webhooks timestamp tolerance, both directions."""
MAX_SIGNATURES = 16
"""Signatures in one ``webhook-signature`` header that are looked at."""
HEADER_VALUE_LIMIT = 256
"""Allow-listed header values are cut to this many characters."""

ALLOWED_HEADERS = frozenset({
    "content-type",
    "user-agent",
    "x-github-event",
    "x-github-delivery",
    "x-github-hook-id",
    "webhook-id",
    "webhook-timestamp",
    "x-request-id",
})
"""Headers that may reach events and prompts. Never signatures, authorization or cookies."""

_DELIVERY_ID_RE = re.compile(r"^[\x21-\x7e]{1,256}$")
_TIMESTAMP_RE = re.compile(r"^[0-9]{1,12}$")


def _invalid(reason: str) -> Unauthorized:
    log.info("webhook rejected: %s", reason)
    return InvalidSignature()


def missing_secret(cfg: WebhookConfig, secret: Callable[[str], str | None]) -> str | None:
    """Why deliveries to a trigger with ``cfg`` cannot be verified (its ``secret_env`` names
    an unset or empty variable), or None. Shown in the trigger's card; deliveries get 503."""
    if cfg.signature == "none" or cfg.secret_env is None or secret(cfg.secret_env):
        return None
    return (f"secret_env {cfg.secret_env} is not set in the server's environment: deliveries "
            "are refused (503 secret_not_configured) until it is set and the server restarted")


def check_secret(cfg: WebhookConfig, secret: Callable[[str], str | None]) -> None:
    """``Unavailable`` (503 ``secret_not_configured``) when the trigger's secret is not set:
    the server is not ready to verify the delivery, which is not the sender's fault."""
    if (problem := missing_secret(cfg, secret)) is not None:
        log.warning("webhook refused: %s", problem)
        raise SecretNotConfigured(cfg.secret_env)


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {str(name).lower(): str(value) for name, value in headers.items()}


def verify_signature(
    cfg: WebhookConfig,
    secret: str | None,
    headers: Mapping[str, str],
    body: bytes,
    now: float,
) -> str | None:
    """Check a delivery; returns its delivery id (None only for ``none`` without an id).

    Raises ``Unauthorized`` with code ``missing_signature``, ``stale_timestamp`` or
    ``invalid_signature`` for any problem.
    """
    try:
        lowered = _lower(headers)
        if cfg.signature == "standard":
            return _verify_standard(_standard_webhook(secret), lowered, bytes(body), now)
        if cfg.signature == "github":
            return _verify_github(_key_github(secret), lowered, bytes(body))
        return _optional_delivery_id(lowered)
    except Unauthorized:
        raise
    except Exception as exc:  # garbage input of any kind is a bad signature, never a 500
        raise _invalid(f"{type(exc).__name__} while verifying") from None


def _standard_webhook(secret: str | None) -> Webhook:
    if not secret:
        log.warning("webhook secret is not configured")
        raise _invalid("no secret")
    raw = secret.removeprefix("whsec_")
    try:
        base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except binascii.Error:
        if secret.startswith("whsec_"):
            raise _invalid("whsec_ secret is not base64") from None
        return Webhook(secret.encode("utf-8"))
    return Webhook(secret)  # EmptyWebhookSecretError for an empty one: a bad signature


def _key_github(secret: str | None) -> bytes:
    if not secret:
        log.warning("webhook secret is not configured")
        raise _invalid("no secret")
    return secret.encode("utf-8")


def _missing(what: str) -> Unauthorized:
    log.info("webhook rejected: missing %s", what)
    return MissingSignature()


def _verify_standard(webhook: Webhook, headers: dict[str, str], body: bytes,
                     now: float) -> str:
    msg_id = headers.get("webhook-id", "")
    ts_raw = headers.get("webhook-timestamp", "").strip()
    signatures = headers.get("webhook-signature", "").split()
    if not (msg_id and ts_raw and signatures):
        raise _missing("webhook-id/webhook-timestamp/webhook-signature")
    if not _DELIVERY_ID_RE.match(msg_id) or "." in msg_id:
        raise _invalid("malformed webhook-id")
    if not _TIMESTAMP_RE.match(ts_raw):
        raise _invalid("malformed webhook-timestamp")
    timestamp = int(ts_raw)
    if abs(now - timestamp) > TOLERANCE_SECONDS:
        log.info("webhook rejected: timestamp %s is outside the tolerance", timestamp)
        raise StaleTimestamp()
    when = datetime.fromtimestamp(timestamp, UTC)
    expected = webhook.sign(msg_id, when, body.decode("utf-8")).encode("ascii")
    if not any(hmac.compare_digest(sig.encode("utf-8", "surrogatepass"), expected)
               for sig in signatures[:MAX_SIGNATURES]):
        raise _invalid("no matching v1 signature")
    return msg_id


def _verify_github(key: bytes, headers: dict[str, str], body: bytes) -> str:
    signature = headers.get("x-hub-signature-256", "").strip()
    delivery = headers.get("x-github-delivery", "").strip()
    if not signature or not delivery:
        raise _missing("X-Hub-Signature-256/X-GitHub-Delivery")
    scheme, _, given = signature.partition("=")
    if scheme.lower() != "sha256":
        raise _invalid("signature is not sha256=")
    expected = hmac.new(key, body, hashlib.sha256).hexdigest().encode("ascii")
    if not hmac.compare_digest(expected, given.lower().encode("utf-8")):
        raise _invalid("HMAC mismatch")
    if not _DELIVERY_ID_RE.match(delivery):
        raise _invalid("malformed X-GitHub-Delivery")
    body.decode("utf-8")
    return delivery


def given_delivery_id(headers: Mapping[str, str]) -> str | None:
    """The delivery id a sender gave (``webhook-id``, ``X-GitHub-Delivery`` or
    ``X-Request-Id``), when it is well formed; else None."""
    return _optional_delivery_id(_lower(headers))


def _optional_delivery_id(headers: dict[str, str]) -> str | None:
    for name in ("webhook-id", "x-github-delivery", "x-request-id"):
        value = headers.get(name, "").strip()
        if _DELIVERY_ID_RE.match(value):
            return value
    return None


def filter_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The allow-listed headers (lower-case names, values cut to ``HEADER_VALUE_LIMIT``).

    Bytes that are not UTF-8 reach us as lone surrogates; they become U+FFFD, so the
    headers can always be written as JSON.
    """
    return {
        name: _readable(value[:HEADER_VALUE_LIMIT])
        for name, value in _lower(headers).items()
        if name in ALLOWED_HEADERS
    }


def _readable(value: str) -> str:
    return value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
