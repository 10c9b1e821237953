"""Several ``hive-server`` node processes on one Redis (issue 14), for the failover tests.

``running_cluster(root, redis_url, n)`` starts nodes ``n1``..``nN`` (``ServerProcess``, each
with its own ``--home`` under ``root/n<i>`` and its stderr in ``root/n<i>/stderr.log``), all
on the same agents and queens folders (``root/agents``, ``root/queens``: the test writes its
agents there first) and the same Redis, with a short lease (``LEASE_SECONDS``). Leaving the
block kills every node still running (SIGKILL also ends a SIGSTOPped one) and stops every
follower; a node also gets SIGKILL from the kernel if its parent, the worker's zygote
(tests/zygote.py, itself killed when the worker dies), goes (``PR_SET_PDEATHSIG``), so no node
outlives a failed or interrupted run.

``Follower``: one SSE client of a session, opened on one node with ``?after_seq=0`` and
reopened with ``Last-Event-ID`` on its node, or on another running node once its node is
killed or paused, whenever its stream ends or breaks; it records every seq it received, in
order, and each node it connected to.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import IO, Any, TypeVar

import aiohttp
import orjson
import redis.asyncio

from hive_server.core.eventlog_redis import session_key
from tests.server_process import ServerProcess
from tests.sse_reader import _parse as parse_frame
from tests.zygote import die_with_parent

LEASE_SECONDS = 2.0
START_TIMEOUT = 30.0  # three Python servers starting at once on a shared 2-core machine
POLL = 0.05  # seconds between polls of health or a Redis key while waiting on wall time
READ_TIMEOUT = 3.0  # a follower's stream silent this long (its node paused) is reopened
RECONNECT_PAUSE = 0.1  # before a follower reopens a stream that could not be opened
REQUEST_SECONDS = 10.0  # an API call's bound (a forwarded chat waits for a takeover)
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=REQUEST_SECONDS)
T = TypeVar("T")


class Node:
    """One node process: its name (= ``--node-id``), URL, token, signals and stderr."""

    def __init__(self, root: Path, name: str, redis_url: str, agents: Path, queens: Path):
        self.name = name
        self.folder = root / name
        self.folder.mkdir(parents=True)
        self.log_path = self.folder / "stderr.log"
        self._log: IO[bytes] = self.log_path.open("wb")
        # ServerProcess passes its own --agents-dir/--queens-dir first: the later ones win
        self.server = ServerProcess(
            self.folder, "--redis", redis_url, "--node-id", name,
            "--lease-seconds", str(LEASE_SECONDS), "--durability", "fsync",
            "--no-watch-folders", "--agents-dir", str(agents), "--queens-dir", str(queens),
            preexec=die_with_parent, stderr=self._log)
        self.paused = False

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def headers(self) -> dict[str, str]:
        return self.server.headers

    @property
    def running(self) -> bool:
        """Started, not killed and not paused: it may answer."""
        proc = self.server.proc
        return proc is not None and proc.returncode is None and not self.paused

    async def start(self) -> Node:
        await self.server.start(START_TIMEOUT)
        return self

    async def kill9(self) -> None:
        assert self.server.proc is not None
        self.server.proc.kill()
        assert await self.server.proc.wait() == -signal.SIGKILL

    def pause(self) -> None:
        assert self.server.proc is not None
        self.paused = True
        self.server.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.server.proc is not None
        self.server.proc.send_signal(signal.SIGCONT)
        self.paused = False

    def stderr(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    async def close(self) -> None:
        await self.server.kill_quietly()
        self._log.close()


class Cluster:
    """The nodes, one HTTP client for the test, the test's Redis client, the followers."""

    def __init__(self, root: Path, redis_url: str, count: int):
        self.root = root
        self.agents = root / "agents"
        self.queens = root / "queens"
        self.nodes = [Node(root, f"n{i}", redis_url, self.agents, self.queens)
                      for i in range(1, count + 1)]
        self.redis = redis.asyncio.Redis.from_url(redis_url)
        self.http = aiohttp.ClientSession(timeout=REQUEST_TIMEOUT)
        self.followers: list[Follower] = []
        self._tasks: list[asyncio.Task[None]] = []

    def node(self, name: str) -> Node:
        return next(node for node in self.nodes if node.name == name)

    def running(self, *, besides: Node | None = None) -> list[Node]:
        return [node for node in self.nodes if node.running and node is not besides]

    async def request(self, node: Node, method: str, path: str,
                      body: Any = None) -> tuple[int, Any]:
        """One API call to ``node``: (status, JSON answer or the text when not JSON)."""
        async with self.http.request(method, node.url + path.lstrip("/"), json=body,
                                     headers=node.headers) as resp:
            text = await resp.text()
            try:
                return resp.status, orjson.loads(text)
            except orjson.JSONDecodeError:
                return resp.status, text

    async def health(self, node: Node) -> dict[str, Any]:
        status, body = await self.request(node, "GET", "/api/health")
        assert status == 200, f"{node.name} health: {status} {body}"
        return body

    async def lease(self, session_id: str) -> str | None:
        """The lease key's value, ``<node id>:<token>``, or None when no node holds it."""
        value = await self.redis.get(session_key(session_id, "lease"))
        return None if value is None else value.decode()

    async def owner(self, session_id: str) -> str | None:
        value = await self.lease(session_id)
        return None if value is None else value.rsplit(":", 1)[0]

    async def wait_owner(self, session_id: str, other_than: str | None,
                         timeout: float) -> tuple[str, float]:
        """The first lease holder that is not ``other_than`` and the seconds it took to
        appear; AssertionError (with the holder seen last) after ``timeout``."""
        start = time.monotonic()
        holder = await self.poll(f"a node other than {other_than} holding {session_id}",
                                 lambda: self.owner(session_id),
                                 lambda held: held is not None and held != other_than, timeout)
        return holder, time.monotonic() - start

    async def poll(self, what: str, probe: Callable[[], Awaitable[T]],
                   done: Callable[[T], Any], timeout: float) -> T:
        """``await probe()`` every ``POLL`` s until ``done`` of its answer; AssertionError
        naming ``what``, the last answer and the nodes' stderr after ``timeout``."""
        start = time.monotonic()
        while True:
            answer = await probe()
            if done(answer):
                return answer
            if time.monotonic() - start > timeout:
                shown = repr(answer)[-2000:]
                raise AssertionError(f"{what}: not within {timeout} s; last seen {shown}\n"
                                     f"{self.stderr_tails()}")
            await asyncio.sleep(POLL)

    async def log(self, session_id: str) -> list[tuple[str, dict[str, Any]]]:
        """The session's stream in Redis: (entry id, event) for every entry."""
        entries = await self.redis.xrange(session_key(session_id, "log"), "-", "+")
        return [(entry_id.decode(), orjson.loads(fields[b"e"])) for entry_id, fields in entries]

    def follow(self, node: Node, session_id: str) -> Follower:
        follower = Follower(self, node, session_id)
        self.followers.append(follower)
        self._tasks.append(asyncio.create_task(follower.run(), name=f"follow:{node.name}"))
        return follower

    def spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        """A task of the test's (a chatter): owned here, cancelled at the end."""
        task = asyncio.create_task(coro, name=name)
        self._tasks.append(task)
        return task

    def stderr_tails(self, chars: int = 3000) -> str:
        return "\n".join(f"--- {node.name} stderr (tail) ---\n{node.stderr()[-chars:]}"
                         for node in self.nodes)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for node in self.nodes:
            await node.close()
        await self.http.close()
        await self.redis.aclose()


@contextlib.asynccontextmanager
async def running_cluster(root: Path, redis_url: str, count: int) -> AsyncIterator[Cluster]:
    """``count`` nodes started at once and answering; all killed when the block ends."""
    cluster = Cluster(root, redis_url, count)
    try:
        await asyncio.gather(*(node.start() for node in cluster.nodes))
        yield cluster
    finally:
        await cluster.close()


class Follower:
    """One SSE client of a session; see the module docstring."""

    def __init__(self, cluster: Cluster, node: Node, session_id: str):
        self.cluster = cluster
        self.home = node
        self.session_id = session_id
        self.seen: list[int] = []
        self.connects: list[tuple[str, int | None, int]] = []  # (node, Last-Event-ID, status)
        self.failure: Exception | None = None
        self._changed = asyncio.Condition()

    @property
    def last(self) -> int | None:
        return self.seen[-1] if self.seen else None

    def _target(self) -> Node | None:
        if self.home.running:
            return self.home
        others = self.cluster.running(besides=self.home)
        return others[0] if others else None

    async def run(self) -> None:
        """Follow until cancelled, reopening the stream whenever it ends or breaks; anything
        else (a frame that does not parse) ends the follower and fails its ``until``."""
        try:
            while True:
                node = self._target()
                if node is not None:
                    with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                        await self._stream(node)
                await asyncio.sleep(RECONNECT_PAUSE)
        except Exception as exc:  # noted for ``until``, which reports it
            async with self._changed:
                self.failure = exc
                self._changed.notify_all()

    async def _stream(self, node: Node) -> None:
        headers = dict(node.headers)
        query = ""
        if self.last is None:
            query = "?after_seq=0"
        else:
            headers["Last-Event-ID"] = str(self.last)
        url = f"{node.url}api/sessions/{self.session_id}/events{query}"
        timeout = aiohttp.ClientTimeout(total=None, sock_read=READ_TIMEOUT)
        async with self.cluster.http.get(url, headers=headers, timeout=timeout) as resp:
            self.connects.append((node.name, self.last, resp.status))
            if resp.status != 200:
                return
            while node.running and (raw := await resp.content.readuntil(b"\n\n")):
                if not raw.endswith(b"\n\n"):
                    return  # cut off mid-frame: the stream broke
                frame = parse_frame(raw.decode())
                if frame is not None and frame["id"] is not None:
                    await self._note(frame["id"])

    async def _note(self, seq: int) -> None:
        async with self._changed:
            self.seen.append(seq)
            self._changed.notify_all()

    async def until(self, seq: int, timeout: float) -> None:
        """Until a seq >= ``seq`` was received; AssertionError after ``timeout``."""
        try:
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(
                    lambda: self.failure is not None or (self.last or 0) >= seq)
        except TimeoutError:
            raise AssertionError(
                f"the follower of {self.home.name} got up to {self.last}, not {seq}, in "
                f"{timeout} s; connects: {self.connects[-10:]}") from None
        if self.failure is not None:
            raise AssertionError(f"the follower of {self.home.name} failed: {self.failure!r}")
