"""The Redis backend beyond the shared log contract (tests/test_log_contract.py), on the real
redis-server of tests/redis_server.py: the stream's layout, group commit, the append script's
refusals (a fenced lease, another writer's seq), and the start-up checks of ``connect`` (a
Redis that does not answer, persistence too weak for the durability mode, a bad URL)."""

from __future__ import annotations

import asyncio
import socket

import pytest
import redis.asyncio

from hive_server.core.eventlog import Durability
from hive_server.core.eventlog_redis import RedisEventLog, session_key
from hive_server.core.redis_conn import connect
from hive_server.core.redis_url import check_url, shown
from hive_server.errors.backend import (
    LogFenced,
    LogSeqRejected,
    RedisDurabilityRefused,
    RedisUnreachable,
)
from tests.redis_server import redis_test, running_redis
from tests.test_log_contract import SESSION, append_all, make_event


async def opened_log(client: redis.asyncio.Redis, lease: str | None = None) -> RedisEventLog:
    log = RedisEventLog(client, SESSION, lease=lease)
    await log.open()
    return log


async def script_calls(client: redis.asyncio.Redis) -> int:
    stats = await client.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


@redis_test
async def test_entries_are_seq_ids_holding_the_events_json_line(redis_client):
    log = await opened_log(redis_client)
    events = await append_all(log, 1, 3)
    entries = await redis_client.xrange(f"hive:{{{SESSION}}}:log")
    assert [(entry_id, fields) for entry_id, fields in entries] == [
        (f"{e.seq}-0".encode(), {b"e": e.to_json()}) for e in events]
    resumed = await redis_client.xrange(session_key(SESSION, "log"), "(2-0", "+")
    assert [entry_id for entry_id, _ in resumed] == [b"3-0"]  # Last-Event-ID: 2 on any node
    await log.close()


@redis_test
async def test_appends_made_while_a_call_is_in_flight_go_in_one_call(redis_client):
    log = await opened_log(redis_client)
    await append_all(log, 1, 1)  # the script loaded
    before = await script_calls(redis_client)
    first = log.append(make_event(2))
    for _ in range(3):
        await asyncio.sleep(0)  # the writer takes seq 2 and sends it
    rest = [log.append(make_event(seq)) for seq in range(3, 31)]  # queued behind it
    await asyncio.gather(first, *rest)
    assert await script_calls(redis_client) - before == 2
    assert [e.seq for e in await log.read_after(0)] == list(range(1, 31))
    await log.close()


@redis_test
async def test_a_fenced_log_is_refused_once_its_lease_is_taken_over(redis_client):
    lease_key = session_key(SESSION, "lease")
    await redis_client.set(lease_key, "node-a:1")
    log = await opened_log(redis_client, lease="node-a:1")
    await append_all(log, 1, 2)
    await redis_client.set(lease_key, "node-b:2")  # another node took the session over
    refused = log.append(make_event(3))
    with pytest.raises(LogFenced, match="'node-a:1' was taken over"):
        await refused
    with pytest.raises(RuntimeError, match="failed"):  # the log is failed from then on
        log.append(make_event(4))
    assert await redis_client.xlen(session_key(SESSION, "log")) == 2
    await log.close()


@redis_test
async def test_a_fenced_log_without_any_lease_stores_nothing(redis_client):
    log = await opened_log(redis_client, lease="node-a:1")
    with pytest.raises(LogFenced):
        await log.append(make_event(1))
    assert await redis_client.exists(session_key(SESSION, "log")) == 0
    await log.close()


@redis_test
async def test_another_writers_seq_is_refused_not_interleaved(redis_client):
    first, second = await opened_log(redis_client), await opened_log(redis_client)
    ours = await append_all(first, 1, 2)
    with pytest.raises(LogSeqRejected, match="1 does not follow the stored 2"):
        await second.append(make_event(1))
    assert [e.to_json() for e in await first.read_after(0)] == [e.to_json() for e in ours]
    await first.close()
    await second.close()


@redis_test
@pytest.mark.parametrize(("appendonly", "appendfsync", "refused"), [
    ("yes", "always", []),
    ("yes", "everysec", [Durability.FSYNC]),
    ("yes", "no", [Durability.FSYNC, Durability.BATCH]),
    ("no", "always", [Durability.FSYNC, Durability.BATCH]),
])
async def test_a_durability_mode_redis_cannot_honour_is_refused(
        redis_client, redis_url, appendonly, appendfsync, refused):
    await redis_client.config_set("appendonly", appendonly, "appendfsync", appendfsync)
    for mode in Durability:  # the fixture puts the server's settings back
        if mode not in refused:
            await (await connect(redis_url, mode)).aclose()
            continue
        with pytest.raises(RedisDurabilityRefused) as caught:
            await connect(redis_url, mode)
        message = caught.value.message
        assert f"appendonly {appendonly}, appendfsync {appendfsync}" in message
        wanted = "always" if mode is Durability.FSYNC else "everysec"
        assert f"redis-cli CONFIG SET appendfsync {wanted}" in message


@redis_test
async def test_a_redis_without_config_refuses_fsync_and_batch_saying_so(tmp_path):
    """A managed Redis (CONFIG disabled) cannot show its persistence: only ``none`` runs."""
    with running_redis(tmp_path, "--rename-command", "CONFIG", "") as server:
        await (await connect(server.url, Durability.NONE)).aclose()
        for mode in (Durability.FSYNC, Durability.BATCH):
            with pytest.raises(RedisDurabilityRefused, match=(
                    f"--durability {mode.value} needs Redis's persistence settings, but this "
                    "Redis refuses CONFIG GET .*; use --durability none with it")):
                await connect(server.url, mode)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens there once it is closed


async def test_a_redis_that_does_not_answer_is_reported_without_its_password():
    url = f"redis://user:secret@127.0.0.1:{closed_port()}/0"
    with pytest.raises(RedisUnreachable) as caught:
        await connect(url, Durability.NONE)
    assert caught.value.message.startswith("cannot reach Redis at redis://user:***@127.0.0.1:")
    assert "secret" not in caught.value.message


@pytest.mark.parametrize(("url", "error"), [
    ("http://localhost:6379", "expected redis://"),
    ("redis://", "needs a host"),
    ("redis://localhost:99999", "not a Redis URL"),
    ("redis://localhost/x", "is a number"),
    ("unix://", "socket's path"),
])
def test_a_bad_url_is_refused_saying_what_is_expected(url, error):
    with pytest.raises(ValueError, match=error):
        check_url(url)


def test_good_urls_pass_and_passwords_are_hidden():
    for url in ("redis://localhost", "rediss://h:6380/2", "unix:///run/redis.sock",
                "redis://:pw@[::1]:6379/0"):
        assert check_url(url) == url
    assert shown("redis://:pw@[::1]:6379/0") == "redis://:***@[::1]:6379/0"
    assert shown("redis://h:1/0") == "redis://h:1/0"
