"""Webhook verification (signed by the independent ``standardwebhooks`` package), header
allow-list, durable dedup and the cold-agent inbox — real files in tmp_path."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import random
from datetime import UTC, datetime
from pathlib import Path

import pytest
from standardwebhooks import Webhook

from hive_server.core.clock import FakeClock
from hive_server.errors import InvalidInput, Unauthorized, Unavailable
from hive_server.models.triggers import WebhookConfig
from hive_server.services.webhooks.deliveries import DeliveryStore
from hive_server.services.webhooks.inbox import WebhookInbox
from hive_server.services.webhooks.signatures import filter_headers, verify_signature

NOW = 1_800_000_000
STANDARD = WebhookConfig(signature="standard", secret_env="HOOK_SECRET")
GITHUB = WebhookConfig(signature="github", secret_env="GH_SECRET")
NONE = WebhookConfig(signature="none")
SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"another secret of 24 byt").decode()
BODY = b'{"event": "push", "n": 1}'


def signed(body: bytes = BODY, *, secret: str = SECRET, ts: int = NOW,
           msg_id: str = "msg_2a9Lx") -> dict[str, str]:
    sig = Webhook(secret).sign(msg_id, datetime.fromtimestamp(ts, UTC), body.decode())
    return {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": sig}


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def read(path: Path) -> bytes:
    return path.read_bytes()


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as f:
        f.write(data)


def rejected(cfg: WebhookConfig, secret: str | None, headers: dict[str, str], body: bytes,
             now: float = NOW) -> str:
    with pytest.raises(Unauthorized) as info:
        verify_signature(cfg, secret, headers, body, now)
    return info.value.code


def test_a_standard_webhook_signed_by_the_reference_library_is_accepted() -> None:
    assert verify_signature(STANDARD, SECRET, signed(), BODY, NOW) == "msg_2a9Lx"


def test_header_names_are_case_insensitive() -> None:
    headers = {k.title(): v for k, v in signed().items()}
    assert "Webhook-Id" in headers
    assert verify_signature(STANDARD, SECRET, headers, BODY, NOW) == "msg_2a9Lx"


@pytest.mark.parametrize("skew", [-299, 0, 299])
def test_timestamps_within_five_minutes_are_accepted(skew: int) -> None:
    assert verify_signature(STANDARD, SECRET, signed(ts=NOW + skew), BODY, NOW)


@pytest.mark.parametrize("skew", [-360, 360, -10**6])
def test_timestamps_six_minutes_off_are_stale(skew: int) -> None:
    assert rejected(STANDARD, SECRET, signed(ts=NOW + skew), BODY) == "stale_timestamp"


def test_tampered_body_and_wrong_secret_are_rejected() -> None:
    assert rejected(STANDARD, SECRET, signed(), BODY + b" ") == "invalid_signature"
    assert rejected(STANDARD, SECRET, signed(secret=OTHER_SECRET), BODY) == "invalid_signature"
    assert rejected(STANDARD, OTHER_SECRET, signed(), BODY) == "invalid_signature"


@pytest.mark.parametrize("header", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_a_missing_header_is_reported_as_missing(header: str) -> None:
    headers = signed()
    del headers[header]
    assert rejected(STANDARD, SECRET, headers, BODY) == "missing_signature"
    headers[header] = "   " if header != "webhook-id" else ""
    assert rejected(STANDARD, SECRET, headers, BODY) == "missing_signature"


@pytest.mark.parametrize(
    "signature",
    ["garbage", "v1,not_base64!!", "v1,a,b", "v1,", ",", "v2,abc", "v1a,AAAA", "v1,\u00e9\u00e9",
     "v1," + "A" * 5000],
)
def test_garbage_signatures_are_401_never_another_exception(signature: str) -> None:
    headers = {**signed(), "webhook-signature": signature}
    assert rejected(STANDARD, SECRET, headers, BODY) == "invalid_signature"


@pytest.mark.parametrize(
    "timestamp", ["abc", "1e9", "-5", "1800000000.5", "\uff19", "9" * 40, "0x1"]
)
def test_malformed_timestamps_are_401(timestamp: str) -> None:
    headers = {**signed(), "webhook-timestamp": timestamp}
    assert rejected(STANDARD, SECRET, headers, BODY) == "invalid_signature"


def test_ids_with_dots_or_spaces_are_rejected() -> None:
    for msg_id in ["a.b", "has space", "x" * 300]:
        headers = {**signed(msg_id="ok"), "webhook-id": msg_id}
        assert rejected(STANDARD, SECRET, headers, BODY) == "invalid_signature"


def test_a_non_utf8_body_is_401() -> None:
    body = b"\xff\xfe\x00binary"
    assert rejected(STANDARD, SECRET, signed(), body) == "invalid_signature"
    # Even with an authentic HMAC over those bytes: signed bodies must be UTF-8 text.
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    mac = hmac.new(key, f"m1.{NOW}.".encode() + body, hashlib.sha256).digest()
    headers = {"webhook-id": "m1", "webhook-timestamp": str(NOW),
               "webhook-signature": "v1," + base64.b64encode(mac).decode()}
    assert rejected(STANDARD, SECRET, headers, body) == "invalid_signature"


# A published Standard Webhooks test vector (the spec's reference libraries test against it):
# raw values, no library involved in producing them.
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_HEADERS = {"webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek", "webhook-timestamp": "1614265330",
                  "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="}
VECTOR_BODY = b'{"test": 2432232314}'


def test_the_published_test_vector_is_accepted_and_its_hmac_is_the_plain_one() -> None:
    now = 1614265330
    assert verify_signature(STANDARD, VECTOR_SECRET, VECTOR_HEADERS, VECTOR_BODY, now) == (
        "msg_p5jXN8AQM9LWM0D4loKWxJek")
    key = base64.b64decode(VECTOR_SECRET.removeprefix("whsec_"))
    mac = hmac.new(key, b"msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330." + VECTOR_BODY, hashlib.sha256)
    assert VECTOR_HEADERS["webhook-signature"] == "v1," + base64.b64encode(mac.digest()).decode()
    assert rejected(STANDARD, VECTOR_SECRET, VECTOR_HEADERS, VECTOR_BODY, now + 301) == (
        "stale_timestamp")
    assert rejected(STANDARD, VECTOR_SECRET, VECTOR_HEADERS, b'{"test": 2432232315}', now) == (
        "invalid_signature")


def test_rotation_accepts_any_listed_v1_signature() -> None:
    good = signed()["webhook-signature"]
    old = signed(secret=OTHER_SECRET)["webhook-signature"]
    for header in [f"{old} {good}", f"{good} {old}", f"v1a,AAAA garbage {good}"]:
        headers = {**signed(), "webhook-signature": header}
        assert verify_signature(STANDARD, SECRET, headers, BODY, NOW) == "msg_2a9Lx"
    assert rejected(STANDARD, SECRET, {**signed(), "webhook-signature": f"{old} {old}"},
                    BODY) == "invalid_signature"


def test_secret_forms() -> None:
    raw_b64 = SECRET.removeprefix("whsec_")
    # Without the prefix the reference library base64-decodes too; we agree.
    assert verify_signature(STANDARD, raw_b64, signed(secret=raw_b64), BODY, NOW)
    unpadded = "whsec_" + base64.b64encode(b"x" * 32).decode().rstrip("=")
    assert verify_signature(STANDARD, unpadded, signed(secret=unpadded), BODY, NOW)
    # A raw secret that is not base64 is used as its UTF-8 bytes.
    mac = hmac.new(b"plain secret!", f"m2.{NOW}.".encode() + BODY, hashlib.sha256).digest()
    headers = {"webhook-id": "m2", "webhook-timestamp": str(NOW),
               "webhook-signature": "v1," + base64.b64encode(mac).decode()}
    assert verify_signature(STANDARD, "plain secret!", headers, BODY, NOW) == "m2"
    for bad in [None, "", "whsec_", "whsec_***"]:
        assert rejected(STANDARD, bad, signed(), BODY) == "invalid_signature"


def test_random_junk_only_ever_raises_unauthorized() -> None:
    rng = random.Random(1234)
    alphabet = "v1, =.-_/+whsec\u00e9\x00\t" + "".join(map(chr, range(48, 123)))

    def junk(n: int) -> str:
        return "".join(rng.choice(alphabet) for _ in range(rng.randrange(n)))

    for _ in range(500):
        headers = {"webhook-id": junk(20), "webhook-timestamp": rng.choice([junk(12), str(NOW)]),
                   "webhook-signature": junk(60), "x-hub-signature-256": "sha256=" + junk(64),
                   "x-github-delivery": junk(10)}
        body = rng.randbytes(rng.randrange(64))
        for cfg, secret in [(STANDARD, rng.choice([SECRET, junk(20), None])),
                            (GITHUB, rng.choice(["s", junk(5), None]))]:
            with pytest.raises(Unauthorized):
                verify_signature(cfg, secret, headers, body, NOW)


GH_SECRET = "It's a Secret to Everybody"
GH_BODY = b"Hello, World!"
# The test vector from GitHub's "Validating webhook deliveries" documentation.
GH_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def github_headers(signature: str = GH_SIGNATURE) -> dict[str, str]:
    return {"X-Hub-Signature-256": signature, "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab",
            "X-GitHub-Event": "push"}


def test_github_signature_from_the_documentation_is_accepted() -> None:
    got = verify_signature(GITHUB, GH_SECRET, github_headers(), GH_BODY, NOW)
    assert got == "72d3162e-cc78-11e3-81ab"
    upper = "sha256=" + GH_SIGNATURE.removeprefix("sha256=").upper()
    assert verify_signature(GITHUB, GH_SECRET, github_headers(upper), GH_BODY, NOW)


def test_github_rejections() -> None:
    assert rejected(GITHUB, GH_SECRET, github_headers(), GH_BODY + b"!") == "invalid_signature"
    assert rejected(GITHUB, "wrong", github_headers(), GH_BODY) == "invalid_signature"
    sha1 = "sha1=" + hmac.new(GH_SECRET.encode(), GH_BODY, hashlib.sha1).hexdigest()
    assert rejected(GITHUB, GH_SECRET, github_headers(sha1), GH_BODY) == "invalid_signature"
    for sig in ["sha256=zz", "sha256=", "garbage", "sha256=\u00e9" * 3]:
        assert rejected(GITHUB, GH_SECRET, github_headers(sig), GH_BODY) == "invalid_signature"
    no_sig = {k: v for k, v in github_headers().items() if k != "X-Hub-Signature-256"}
    assert rejected(GITHUB, GH_SECRET, no_sig, GH_BODY) == "missing_signature"
    no_id = {k: v for k, v in github_headers().items() if k != "X-GitHub-Delivery"}
    assert rejected(GITHUB, GH_SECRET, no_id, GH_BODY) == "missing_signature"
    assert rejected(GITHUB, None, github_headers(), GH_BODY) == "invalid_signature"


def test_unsigned_webhooks_return_an_optional_delivery_id() -> None:
    assert verify_signature(NONE, None, {"X-Request-Id": "req-1"}, b"\xff", NOW) == "req-1"
    assert verify_signature(NONE, None, {"webhook-id": "w1", "x-request-id": "r"}, b"", NOW) == (
        "w1"
    )
    assert verify_signature(NONE, None, {}, b"{}", NOW) is None
    assert verify_signature(NONE, None, {"x-request-id": "has space"}, b"{}", NOW) is None


def test_filter_headers_keeps_only_the_allow_list() -> None:
    headers = {
        "Content-Type": "application/json", "User-Agent": "GitHub-Hookshot/1" + "x" * 500,
        "X-GitHub-Event": "push", "X-GitHub-Delivery": "d1", "webhook-id": "w",
        "webhook-timestamp": "1", "X-Request-Id": "r", "Authorization": "Bearer s3cret",
        "Cookie": "session=1", "webhook-signature": "v1,abc", "X-Hub-Signature-256": "sha256=1",
        "X-Hub-Signature": "sha1=1", "X-Forwarded-For": "10.0.0.1", "Set-Cookie": "a=b",
    }
    kept = filter_headers(headers)
    assert set(kept) == {"content-type", "user-agent", "x-github-event", "x-github-delivery",
                         "webhook-id", "webhook-timestamp", "x-request-id"}
    assert len(kept["user-agent"]) == 256
    assert "s3cret" not in str(kept) and "v1,abc" not in str(kept)


async def test_dedup_survives_a_new_store_instance(tmp_path: Path) -> None:
    store = DeliveryStore(tmp_path, clock=FakeClock(NOW))
    assert await store.record("agent-a", "t1", "msg-1") is True
    assert await store.record("agent-a", "t1", "msg-1") is False
    assert await store.record("agent-a", "t2", "msg-1") is True
    assert await store.record("agent-b", "t1", "msg-1") is True
    reopened = DeliveryStore(tmp_path, clock=FakeClock(NOW + 60))
    assert await reopened.record("agent-a", "t1", "msg-1") is False
    assert await reopened.record("agent-a", "t1", "msg-2") is True
    assert await DeliveryStore(tmp_path).record("agent-a", "t1", "msg-2") is False


async def test_forget_lets_a_retry_through_across_a_restart(tmp_path: Path) -> None:
    store = DeliveryStore(tmp_path, clock=FakeClock(NOW))
    assert await store.record("a", "t", "msg-1") is True
    assert await store.record("a", "t", "msg-2") is True
    await store.forget("a", "t", "msg-1")
    reopened = DeliveryStore(tmp_path, clock=FakeClock(NOW + 5))
    assert await reopened.record("a", "t", "msg-2") is False
    assert await reopened.record("a", "t", "msg-1") is True
    assert await DeliveryStore(tmp_path).record("a", "t", "msg-1") is False


async def test_concurrent_records_of_one_id_accept_exactly_one(tmp_path: Path) -> None:
    store = DeliveryStore(tmp_path, clock=FakeClock(NOW))
    results = await asyncio.gather(*(store.record("a", "t", "same") for _ in range(20)))
    assert results.count(True) == 1


async def test_untrusted_ids_never_become_paths(tmp_path: Path) -> None:
    store = DeliveryStore(tmp_path, clock=FakeClock(NOW))
    for evil in ["../../etc/passwd", "/abs", "a\x00b", "x" * 10_000, "\u00e9\n{}"]:
        assert await store.record("../agent", evil, evil) is True
        assert await store.record("../agent", evil, evil) is False
    assert names(tmp_path) == ["deliveries.jsonl"]
    assert b"passwd" not in read(tmp_path / "deliveries.jsonl")


async def test_ids_expire_after_the_retention_window(tmp_path: Path) -> None:
    clock = FakeClock(NOW)
    store = DeliveryStore(tmp_path, clock=clock, retention_seconds=7 * 86400)
    assert await store.record("a", "t", "old") is True
    await clock.advance(6 * 86400)
    assert await store.record("a", "t", "old") is False
    await clock.advance(2 * 86400)
    assert await store.record("a", "t", "old") is True


async def test_the_file_stays_bounded(tmp_path: Path) -> None:
    clock = FakeClock(NOW)
    store = DeliveryStore(tmp_path, clock=clock, retention_seconds=100, max_entries=50)
    count = 1500  # past the compaction threshold (2 * 50 + 1024 lines) once
    for i in range(count):
        assert await store.record("a", "t", f"id-{i}") is True
        await clock.advance(1)
    lines = read(tmp_path / "deliveries.jsonl").count(b"\n")
    assert lines <= 2 * 50 + 1024
    assert await store.record("a", "t", f"id-{count - 1}") is False
    assert await DeliveryStore(tmp_path, clock=clock).record("a", "t", f"id-{count - 10}") is False
    assert await DeliveryStore(tmp_path, clock=clock).record("a", "t", "id-0") is True  # expired


async def test_a_torn_tail_is_repaired_and_nothing_is_lost(tmp_path: Path) -> None:
    store = DeliveryStore(tmp_path, clock=FakeClock(NOW))
    assert await store.record("a", "t", "kept") is True
    append(tmp_path / "deliveries.jsonl", b'{"k": "deadbe')  # a crash in mid-write
    reopened = DeliveryStore(tmp_path, clock=FakeClock(NOW))
    assert await reopened.record("a", "t", "kept") is False
    assert await reopened.record("a", "t", "new") is True
    again = DeliveryStore(tmp_path, clock=FakeClock(NOW))
    assert await again.record("a", "t", "new") is False
    assert await again.record("a", "t", "kept") is False


async def test_inbox_put_and_take(tmp_path: Path) -> None:
    inbox = WebhookInbox(tmp_path)
    first = {"delivery_id": "d1", "payload": {"n": 1}, "headers": {"x-github-event": "push"}}
    second = {"delivery_id": "d2", "payload": [1, 2, "\u00e9"]}
    await inbox.put("agent-a", "hook.1", first)
    await inbox.put("agent-a", "hook.1", second)
    await inbox.put("agent-a", "other", {"delivery_id": "d3"})
    assert await WebhookInbox(tmp_path).take("agent-a", "hook.1") == [first, second]
    assert await inbox.take("agent-a", "hook.1") == []
    assert await inbox.take("agent-a", "other") == [{"delivery_id": "d3"}]
    assert await inbox.take("nobody", "nothing") == []


@pytest.mark.parametrize("agent_id,trigger_id", [("..", "t"), ("a", "../t"), ("a/b", "t"),
                                                 ("", "t"), ("a", ".hidden"), ("a", "x" * 65)])
async def test_inbox_rejects_unsafe_path_segments(tmp_path: Path, agent_id: str,
                                                  trigger_id: str) -> None:
    inbox = WebhookInbox(tmp_path / "webhooks")
    with pytest.raises(InvalidInput):
        await inbox.put(agent_id, trigger_id, {"x": 1})
    with pytest.raises(InvalidInput):
        await inbox.take(agent_id, trigger_id)
    assert names(tmp_path) == []


async def test_inbox_refuses_when_full_and_rejects_non_json(tmp_path: Path) -> None:
    inbox = WebhookInbox(tmp_path, max_bytes=170)
    await inbox.put("a", "t", {"payload": "x" * 150})
    await inbox.put("a", "t", {"payload": "y"})
    with pytest.raises(Unavailable):
        await inbox.put("a", "t", {"payload": "z"})
    assert len(await inbox.take("a", "t")) == 2
    await inbox.put("a", "t", {"payload": "z"})
    with pytest.raises(InvalidInput):
        await inbox.put("a", "t", {"payload": object()})


async def test_inbox_skips_a_torn_line(tmp_path: Path) -> None:
    inbox = WebhookInbox(tmp_path)
    await inbox.put("a", "t", {"n": 1})
    path = tmp_path / "inbox" / "a" / "t.jsonl"
    append(path, b'{"n": 2, "trunc')
    await inbox.put("a", "t", {"n": 3})
    assert await inbox.take("a", "t") == [{"n": 1}, {"n": 3}]
