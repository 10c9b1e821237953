"""``export-session --redis`` / ``import-session --redis`` (``services/sessions/transfer_redis.py``)
on the real redis-server of tests/redis_server.py: a session's events go file -> Redis -> file
byte for byte, with its meta and index row; a bad file, an id that exists (at the start or by
the commit) or an unreachable Redis is refused with one line and exit code 2, leaving no key."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest
import redis

from hive_server import cli
from hive_server.errors.transfer import SessionExists
from hive_server.models.session import SessionMeta
from hive_server.models.session_query import SessionFilter
from hive_server.services.sessions.index_redis import RedisSessionIndex
from hive_server.services.sessions.transfer import import_lines
from hive_server.services.sessions.transfer_redis import (
    CHUNK,
    LoopCalls,
    RedisSink,
    export_session_redis,
    import_session_redis,
)
from tests.conftest import make_settings
from tests.hive_api import HiveApi
from tests.redis_server import REDIS_MARKS
from tests.test_transfer import GOOD, NOW, event, jsonl, said, started, write

pytestmark = list(REDIS_MARKS)


def run_import(source: Path, url: str, as_id: str | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = import_session_redis(str(source), url=url, as_id=as_id, stdin=io.BytesIO(),
                                out=out, err=err, now=lambda: NOW)
    return code, out.getvalue(), err.getvalue()


def run_export(session_id: str, url: str) -> tuple[int, bytes, str]:
    out, err = io.BytesIO(), io.StringIO()
    code = export_session_redis(session_id, url=url, output="-", stdout=out, err=err)
    return code, out.getvalue(), err.getvalue()


def keys(url: str) -> list[bytes]:
    with redis.Redis.from_url(url) as client:
        return sorted(client.scan_iter(match="*"))


def many(count: int) -> list[bytes]:
    return [started(), *(said(seq, f"line {seq}") for seq in range(2, count + 1))]


async def test_a_session_goes_file_to_redis_to_file_byte_for_byte(tmp_path, make_client,
                                                                  redis_url):
    api = HiveApi(await make_client(make_settings(tmp_path)))
    await api.chatted("moved", 2)
    assert (await api.client.delete("/api/sessions/moved")).status == 200
    source = api.home / "sessions" / "moved" / "events.jsonl"
    assert await asyncio.to_thread(cli.main, ["import-session", str(source), "--redis",
                                              redis_url]) == 0
    back = tmp_path / "back.jsonl"
    assert await asyncio.to_thread(cli.main, ["export-session", "moved", "-o", str(back),
                                              "--redis", redis_url]) == 0
    assert back.read_bytes() == source.read_bytes()
    with redis.Redis.from_url(redis_url) as client:
        meta = SessionMeta.model_validate_json(client.get("hive:{moved}:meta"))
    assert keys(redis_url) == sorted([b"hive:{moved}:log", b"hive:{moved}:meta", *(
        b"hive:{sessions}:" + part.encode() for part in (
            "active", "created", "rows", "search", "member", "status:stopped",
            f"queen:{meta.queen_id}"))])


def test_chunks_of_events_round_trip_with_their_meta_and_index_row(tmp_path, redis_url):
    source = write(tmp_path / "in.jsonl", many(2 * CHUNK + 345))
    code, out, _ = run_import(source, redis_url, as_id="big")
    assert code == 0 and "imported session big: 2345 events" in out
    code, exported, err = run_export("big", redis_url)
    assert code == 0 and "2345 events of big" in err
    assert exported == source.read_bytes().replace(b'"session_id":"s"', b'"session_id":"big"')
    with redis.Redis.from_url(redis_url) as client:
        assert client.ttl("hive:{big}:log") == -1  # the staging ttl is gone
        meta = SessionMeta.model_validate_json(client.get("hive:{big}:meta"))
    assert meta.status == "stopped" and meta.last_seq == 2345
    page = asyncio.run(_history(redis_url))
    assert [m.session_id for m in page.metas] == ["big"] and page.metas[0] == meta


async def _history(url: str):
    client = redis.asyncio.Redis.from_url(url)
    page = await RedisSessionIndex(client).query(SessionFilter(status=frozenset({"stopped"})),
                                                 10)
    await client.aclose()
    return page


@pytest.mark.parametrize("lines, why", [
    ([*many(CHUNK + 500)[:1400], b"{torn"], "line 1401: not an event"),  # a chunk staged
    ([said(seq, "hi") for seq in range(1, CHUNK + 500)], "no session_started"),  # at commit
])
def test_a_refused_import_leaves_no_key(tmp_path, redis_url, lines, why):
    code, out, err = run_import(write(tmp_path / "bad.jsonl", lines), redis_url)
    assert code == 2 and why in err and err.count("\n") == 1 and out == ""
    assert keys(redis_url) == []


def test_an_id_that_exists_in_redis_is_refused(tmp_path, redis_url):
    source = write(tmp_path / "in.jsonl", GOOD)
    assert run_import(source, redis_url)[0] == 0
    before = keys(redis_url)
    code, _, err = run_import(source, redis_url)
    assert code == 2 and "a session 's' already exists in redis://" in err
    assert keys(redis_url) == before
    assert run_import(source, redis_url, as_id="s2")[0] == 0


async def test_an_id_taken_before_the_commit_is_refused_and_the_staging_deleted(redis_url):
    client = redis.asyncio.Redis.from_url(redis_url)
    sink = RedisSink(client, LoopCalls(asyncio.get_running_loop()), redis_url)

    def lines():  # another writer creates the session while the import runs
        yield from GOOD
        with redis.Redis.from_url(redis_url) as other:
            other.xadd("hive:{s}:log", {"e": GOOD[0]}, id="1-0")

    with pytest.raises(SessionExists):
        await asyncio.to_thread(import_lines, lines(), sink, as_id=None, now=NOW)
    assert keys(redis_url) == [b"hive:{s}:log"]  # the other writer's only
    await client.aclose()


def test_an_export_leaves_out_a_bad_entry_and_says_which(tmp_path, redis_url):
    assert run_import(write(tmp_path / "in.jsonl", GOOD), redis_url)[0] == 0
    with redis.Redis.from_url(redis_url) as client:
        client.xadd("hive:{s}:log", {"e": b"{not json"}, id="5-0")
        client.xadd("hive:{s}:log", {"e": event(6)}, id="6-0")
        client.xadd("hive:{s}:log", {"e": event(8)}, id="7-0")  # not its entry's seq
    code, exported, err = run_export("s", redis_url)
    assert code == 1 and exported == jsonl([*GOOD, event(6)])
    assert "hive:{s}:log entry 5-0: left out 9 bytes: invalid_json" in err
    assert "entry 7-0: left out" in err and "seq 8 in entry 7-0" in err


def test_a_missing_session_or_an_unreachable_redis_is_refused(redis_url, unused_tcp_port):
    assert run_export("nope", redis_url)[0] == 2
    assert "no session 'nope' in Redis" in run_export("nope", redis_url)[2]
    code, _, err = run_export("s", f"redis://127.0.0.1:{unused_tcp_port}/0")
    assert code == 2 and "cannot reach Redis" in err


def test_a_bad_redis_url_is_refused_without_echoing_it(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["export-session", "s", "--redis", "redis://u:secret@host/not-a-db"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "--redis: the database in a Redis URL is a number" in err and "secret" not in err
