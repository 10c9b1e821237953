"""Commands forwarded to a session's owner node through Redis (``core/redis_forward.py``), on
the real redis-server of tests/redis_server.py. The owner is a ``CommandLoop`` whose handle
stores each command as an event in a real ``RedisEventLog`` and answers its seq, as a chat is
acknowledged once its input is stored; the sender is another node's ``Forwarder`` on a client
of its own. Waits are bounded and wait on Redis itself."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable

import pytest
import redis.asyncio

from hive_server.core.eventlog_redis import RedisEventLog, session_key
from hive_server.core.redis_forward import Command, CommandLoop, Forwarder, request_key
from hive_server.core.stats import FORWARD_SECONDS
from hive_server.errors import Conflict, HiveError, Unavailable
from hive_server.errors.backend import ForwardTimeout, ForwardUnavailable
from hive_server.errors.sessions import SessionLoading
from hive_server.models.events import Event, EventType
from hive_server.web.errors import status_for
from tests.redis_server import REDIS_MARKS, _free_port
from tests.test_redis_feed import node_client

pytestmark = list(REDIS_MARKS)
SESSION = "s-forward"
TIMEOUT = 10.0  # seconds: a bound never reached when green


class Owner:
    """The owner node's session: its log, and the handle its command loop calls."""

    def __init__(self, log: RedisEventLog):
        self.log = log
        self.applied: list[Command] = []
        self.fail_with: BaseException | None = None
        self.hold: asyncio.Event | None = None  # set: a command's apply waits for it

    async def handle(self, command: Command) -> int:
        self.applied.append(command)
        if self.hold is not None:
            await self.hold.wait()
        if self.fail_with is not None:
            raise self.fail_with
        event = Event(seq=self.log.last_seq + 1, type=EventType.CLIENT_INPUT_RECEIVED,
                      session_id=SESSION, data=command.body)
        await self.log.append(event)
        return event.seq


@pytest.fixture
async def owner(redis_client):
    log = RedisEventLog(redis_client, SESSION)
    await log.open()
    yield Owner(log)
    await log.close()


@pytest.fixture
async def loops(redis_client, owner):
    """Start a node's command loop for the session: ``loops(node_id)``."""
    started: list[CommandLoop] = []

    def start(node_id: str = "node-a") -> CommandLoop:
        loop = CommandLoop(redis_client, SESSION, node_id, owner.handle, block_ms=200,
                           backoff=(0.01, 0.05))
        loop.start()
        started.append(loop)
        return loop

    yield start
    async with asyncio.timeout(TIMEOUT):  # a loop that never stops fails, never hangs
        for loop in started:
            await loop.stop()


@pytest.fixture
async def sender(redis_url):
    client = node_client(redis_url)
    yield Forwarder(client, wait_slice=0.2)
    await client.aclose()


async def stored(owner: Owner) -> list[dict]:
    return [event.data for event in await owner.log.read_after(0)]


async def test_a_forwarded_chat_is_stored_by_the_owner_and_acked_with_its_seq(owner, loops,
                                                                             sender):
    loops()
    observed = FORWARD_SECONDS.cumulative()[0][-1][1]
    seqs = [await sender.forward(SESSION, {"message": f"hi {i}"}, TIMEOUT) for i in range(5)]
    assert seqs == [1, 2, 3, 4, 5]
    assert FORWARD_SECONDS.cumulative()[0][-1][1] == observed + 5  # /metrics' latency
    assert await stored(owner) == [{"message": f"hi {i}"} for i in range(5)]
    assert len({command.request_id for command in owner.applied}) == 5


async def _now(value: int) -> int:
    return value


async def _at_least(count: Awaitable[int], wanted: int) -> bool:
    return await count >= wanted


async def _polled(check: Callable[[], Awaitable[bool]]) -> None:
    """Poll ``check`` every 10 ms until it holds (``TIMEOUT`` at most: a failure, not a
    hang)."""
    async with asyncio.timeout(TIMEOUT):
        for _ in itertools.count():
            if await check():
                return
            await asyncio.sleep(0.01)


async def test_the_commands_of_one_read_are_applied_together(owner, loops, sender,
                                                            redis_client):
    owner.hold = asyncio.Event()
    sends = [asyncio.create_task(sender.forward(SESSION, {"message": f"m{i}"}, TIMEOUT))
             for i in range(3)]
    key = session_key(SESSION, "cmd")
    await _polled(lambda: _at_least(redis_client.xlen(key), 3))  # all three in the stream
    loops()
    await _polled(lambda: _at_least(_now(len(owner.applied)), 3))  # one at a time: only 1
    owner.hold.set()
    assert sorted(await asyncio.gather(*sends)) == [1, 2, 3]
    assert sorted(data["message"] for data in await stored(owner)) == ["m0", "m1", "m2"]


async def test_the_owners_error_comes_back_with_its_code_message_and_status(owner, loops,
                                                                           sender):
    loops()
    owner.fail_with = SessionLoading(SESSION)
    with pytest.raises(Conflict) as info:
        await sender.forward(SESSION, {"message": "hi"}, TIMEOUT)
    local = SessionLoading(SESSION)
    assert (info.value.code, info.value.message, info.value.extra) == (
        local.code, local.message, local.extra)
    assert status_for(info.value) == status_for(local) == 409
    assert await stored(owner) == []


async def test_a_bug_of_the_owner_answers_internal_error_and_is_logged(owner, loops, sender,
                                                                      caplog):
    loops()
    owner.fail_with = RuntimeError("boom")
    with pytest.raises(HiveError) as info:
        await sender.forward(SESSION, {"message": "hi"}, TIMEOUT)
    assert (info.value.code, info.value.message, status_for(info.value)) == (
        "internal_error", "internal server error", 500)
    assert any(record.exc_info and "boom" in str(record.exc_info[1])
               for record in caplog.records if record.levelno == logging.ERROR)
    owner.fail_with = None
    assert await sender.forward(SESSION, {"message": "again"}, TIMEOUT) == 1  # it goes on


async def test_no_owner_answers_a_timeout_and_the_retry_is_applied_once(owner, loops, sender):
    with pytest.raises(ForwardTimeout) as info:
        await sender.forward(SESSION, {"message": "hi"}, 0.3)
    request_id = info.value.extra["request_id"]
    assert isinstance(info.value, Unavailable) and request_id in info.value.message
    loops()  # an owner starts: the command that timed out is applied (once)
    again = await sender.forward(SESSION, {"message": "hi"}, TIMEOUT, request_id=request_id)
    assert again == 1 and await stored(owner) == [{"message": "hi"}]
    assert [command.request_id for command in owner.applied] == [request_id]


async def test_a_duplicate_request_id_is_applied_once_and_answers_the_same_seq(owner, loops,
                                                                              sender):
    loops()
    first = await sender.forward(SESSION, {"message": "a"}, TIMEOUT, request_id="r-1")
    racing = await asyncio.gather(*(sender.forward(SESSION, {"message": "a"}, TIMEOUT,
                                                   request_id="r-2") for _ in range(3)))
    again = await sender.forward(SESSION, {"message": "a"}, TIMEOUT, request_id="r-1")
    assert (first, racing, again) == (1, [2, 2, 2], 1)
    assert [command.request_id for command in owner.applied] == ["r-1", "r-2"]
    assert await stored(owner) == [{"message": "a"}] * 2


async def test_a_command_its_dead_owner_was_applying_is_in_doubt_never_applied_again(
        owner, loops, sender, redis_client):
    owner.hold = asyncio.Event()
    node_a = loops("node-a")
    sending = asyncio.create_task(sender.forward(SESSION, {"message": "hi"}, TIMEOUT,
                                                 request_id="r-1"))
    async with asyncio.timeout(TIMEOUT):
        while not owner.applied:  # node-a took it and is applying it
            await redis_client.ping()
    await node_a.stop()  # dies mid-apply: r-1 stays pending, its entry unacknowledged
    assert await redis_client.get(request_key(SESSION, "r-1")) == b"pending"
    owner.hold = None
    loops("node-b")  # takes the session over and claims node-a's entry
    with pytest.raises(Unavailable) as info:
        await sending
    assert info.value.code == "forward_in_doubt" and "r-1" in info.value.message
    assert len(owner.applied) == 1 and await stored(owner) == []
    assert await redis_client.xlen(session_key(SESSION, "cmd")) == 0


async def test_the_owner_loop_goes_on_after_its_connection_is_killed(owner, loops, sender,
                                                                    redis_url):
    own = node_client(redis_url)
    loop = CommandLoop(own, SESSION, "node-a", owner.handle, block_ms=200,
                       backoff=(0.01, 0.05))
    loop.start()
    assert await sender.forward(SESSION, {"message": "a"}, TIMEOUT) == 1
    async with redis.asyncio.Redis.from_url(redis_url) as admin:
        killed = 0
        async with asyncio.timeout(TIMEOUT):
            while not killed:
                blocked = [info["id"] for info in await admin.client_list()
                           if info["cmd"] == "xreadgroup" and "b" in info["flags"]]
                killed = blocked and await admin.client_kill_filter(_id=blocked[0])
    assert await sender.forward(SESSION, {"message": "b"}, TIMEOUT) == 2
    assert loop.backoff.outages == 1
    await loop.stop()
    await loop.stop()  # idempotent
    assert not [task for task in asyncio.all_tasks()
                if task.get_name().startswith("redis-commands:")]
    await own.aclose()


async def test_a_redis_failure_on_the_way_answers_unavailable_with_the_request_id():
    client = node_client(f"redis://127.0.0.1:{_free_port()}/0")
    with pytest.raises(ForwardUnavailable) as info:
        await Forwarder(client).forward(SESSION, {"message": "hi"}, TIMEOUT, request_id="r-9")
    assert info.value.extra == {"request_id": "r-9"} and "r-9" in info.value.message
    await client.aclose()
