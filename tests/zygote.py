"""Server processes forked from a preloaded interpreter, for the tests that start many.

A ``python -m hive_server serve`` spends most of its start importing: about 0.8 s of CPU of
the 0.9 s a start and stop cost, and 2 s more when its model is Claude (the Anthropic SDK).
The suite starts about forty servers. So each pytest worker starts, on its first server, a
*zygote*: ``python -m tests.zygote``, which imports ``hive_server.cli`` (and, for the
``sdk`` flavour, the SDK), then waits. Each server is a ``fork()`` of it that sets its
environment, working folder, standard streams and ``sys.argv`` as the exec would and calls
the same ``hive_server.cli.main`` that ``python -m hive_server`` calls. The child is a real
process of its own: its own pid, signals, kill -9, exit status, descriptors and limits. What
it does not do is import: the zygote did, with no thread and no event loop running, so a
``fork()`` copies nothing half-done.

What still execs a fresh interpreter: the README walk-through (``python -m hive_server`` as
written), the check that a server on the offline model never loads the SDK, the comparison in
tests/test_zygote.py, the benchmarks' servers (what they time includes the imports) and the
setup scripts' tests.

The zygote's protocol, on a ``SOCK_SEQPACKET`` socket pair (one message per datagram, with
descriptors): a request is a pickled ``Spawn`` with three descriptors (the child's stdin,
stdout and stderr); the zygote answers ``("started", pid)`` and, when a child ends,
``("exited", pid, returncode)`` (``-N`` for signal N, as asyncio reports it). It exits, killing
any child left, when the worker closes its end or dies (``PR_SET_PDEATHSIG``).

``spawn(argv, env, ...)`` returns a ``ForkedProcess``, the part of
``asyncio.subprocess.Process`` the tests use: ``pid``, ``stdout`` and ``stderr`` (a
``StreamReader`` when ``PIPE``), ``returncode``, ``wait()``, ``communicate()``,
``send_signal()``, ``terminate()``, ``kill()``. ``spawn_blocking`` is the same for code with no
event loop (the fuzz test's session fixture), as much of ``subprocess.Popen`` as it uses.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ctypes
import os
import pickle
import selectors
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]
PRELOADS = {"plain": ("hive_server.cli",), "sdk": ("hive_server.cli", "anthropic")}
PR_SET_PDEATHSIG = 1
MAX_MESSAGE = 1 << 20
EOF_WAIT = 5.0  # seconds wait() gives the child's pipes to close once it has exited
# looked up at import, never in a forked child
_PRCTL = ctypes.CDLL(None).prctl if sys.platform == "linux" else None


def die_with_parent() -> None:
    """In a child: SIGKILL when its parent goes (Linux only)."""
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass(frozen=True)
class Spawn:
    argv: tuple[str, ...]  # after ``python -m hive_server``
    env: dict[str, str]
    cwd: str
    preexec: Callable[[], None] | None  # pickled by reference: a module-level function


# --- the zygote (python -m tests.zygote FLAVOUR FD) -------------------------------------------


class _Zygote:
    """The zygote's loop: fork a child per request, report each child's end."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.children: set[int] = set()

    def serve(self) -> tuple[Spawn, list[int]] | None:
        """In a child: its request and descriptors, the zygote's own state closed. In the
        zygote: None once the worker has closed its end."""
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler: the wakeup fd is written
        signal.set_wakeup_fd(wake_w)
        selector = selectors.DefaultSelector()
        selector.register(self.sock, selectors.EVENT_READ)
        selector.register(wake_r, selectors.EVENT_READ)
        while True:
            for key, _ in selector.select():
                if key.fileobj is not self.sock:
                    os.read(wake_r, 4096)
                    if not self._reap():
                        return None
                    continue
                message, fds, _, _ = socket.recv_fds(self.sock, MAX_MESSAGE, 3)
                if not message:
                    return None
                pid = os.fork()
                if pid == 0:
                    signal.set_wakeup_fd(-1)
                    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                    selector.close()
                    for fd in (wake_r, wake_w):
                        os.close(fd)
                    self.sock.close()
                    return pickle.loads(message), fds
                self.children.add(pid)
                for fd in fds:
                    os.close(fd)
                if not self._tell(("started", pid)):
                    return None

    def _reap(self) -> bool:
        """Report each child that ended; False once the worker can no longer be told."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return True
            if pid == 0:
                return True
            self.children.discard(pid)
            if not self._tell(("exited", pid, os.waitstatus_to_exitcode(status))):
                return False

    def _tell(self, message: tuple[object, ...]) -> bool:
        try:
            self.sock.send(pickle.dumps(message))
        except OSError:  # the worker's end is gone: the zygote ends, and its children with it
            return False
        return True

    def kill_children(self) -> None:
        """The worker is gone: no server outlives it."""
        for pid in self.children:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        while True:
            try:
                os.wait()
            except ChildProcessError:
                return


def _become(spawn: Spawn, fds: list[int]) -> int:
    """In the forked child: what exec would have set up, then the CLI's own entry."""
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    for fd in set(fds) - {0, 1, 2}:
        os.close(fd)
    os.environ.clear()
    os.environ.update(spawn.env)
    os.chdir(spawn.cwd)
    if spawn.preexec is not None:
        spawn.preexec()
    from hive_server import cli

    sys.argv = [str(Path(cli.__file__).with_name("__main__.py")), *spawn.argv]
    return cli.main(list(spawn.argv))


def main(argv: list[str]) -> int:
    flavour, fd = argv
    die_with_parent()
    for module in PRELOADS[flavour]:
        __import__(module)
    zygote = _Zygote(socket.socket(fileno=int(fd)))
    child = zygote.serve()
    if child is None:
        zygote.kill_children()
        return 0
    return _become(*child)


# --- the client (in a pytest worker) -----------------------------------------------------------


class Zygote:
    """One zygote process and the thread that reads its answers."""

    def __init__(self, flavour: str):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.zygote", flavour, str(theirs.fileno())],
            pass_fds=[theirs.fileno()], cwd=ROOT, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL)
        theirs.close()
        self.sock = ours
        self._request = threading.Lock()  # one request at a time: its answer is the next
        self._lock = threading.Lock()  # the futures, shared with the reading thread
        self._started: concurrent.futures.Future[tuple[int, Any]] | None = None
        self._exits: dict[int, concurrent.futures.Future[int]] = {}
        threading.Thread(target=self._read, name=f"zygote-{flavour}", daemon=True).start()

    def _read(self) -> None:
        while message := self._next():
            kind, pid, *rest = pickle.loads(message)
            with self._lock:  # a child's "exited" always comes after its "started"
                if kind == "started":
                    assert self._started is not None
                    self._exits[pid] = exited = concurrent.futures.Future()
                    self._started.set_result((pid, exited))
                else:
                    self._exits.pop(pid).set_result(rest[0])
        with self._lock:  # the zygote is gone, and its children with it
            for future in self._exits.values():
                future.set_exception(RuntimeError("the zygote process exited"))
            if self._started is not None and not self._started.done():
                self._started.set_exception(RuntimeError("the zygote process exited"))

    def _next(self) -> bytes:
        """The zygote's next answer; b"" once it is gone (or this end was closed)."""
        try:
            return self.sock.recv(MAX_MESSAGE)
        except OSError:
            return b""

    def spawn(self, spawn: Spawn, fds: tuple[int, int, int]) -> tuple[int, Any]:
        """Fork a child: its pid and a future of its returncode."""
        with self._request:
            with self._lock:
                self._started = started = concurrent.futures.Future()
            socket.send_fds(self.sock, [pickle.dumps(spawn)], list(fds))
            return started.result(timeout=30)


_zygotes: dict[str, Zygote] = {}
_spawn_lock = threading.Lock()


def _zygote(flavour: str) -> Zygote:
    with _spawn_lock:
        if flavour not in _zygotes or _zygotes[flavour].process.poll() is not None:
            _zygotes[flavour] = Zygote(flavour)
        return _zygotes[flavour]


@dataclass
class _Pipe:
    """One of the child's output pipes, read by the test's loop."""

    reader: asyncio.StreamReader
    transport: asyncio.BaseTransport
    closed: asyncio.Future[None]


class _PipeProtocol(asyncio.StreamReaderProtocol):
    def __init__(self, reader: asyncio.StreamReader, closed: asyncio.Future[None]):
        super().__init__(reader)
        self._closed_future = closed

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if not self._closed_future.done():
            self._closed_future.set_result(None)


async def _pipe(read_end: int) -> _Pipe:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    closed = loop.create_future()
    transport, _ = await loop.connect_read_pipe(lambda: _PipeProtocol(reader, closed),
                                                os.fdopen(read_end, "rb", 0))
    return _Pipe(reader, transport, closed)


class ForkedProcess:
    """A forked server, as much of ``asyncio.subprocess.Process`` as the tests use."""

    def __init__(self, pid: int, exited: concurrent.futures.Future[int],
                 stdout: _Pipe | None, stderr: _Pipe | None):
        self.pid = pid
        self.stdout = stdout.reader if stdout else None
        self.stderr = stderr.reader if stderr else None
        self._exited = exited
        self._pipes = [pipe for pipe in (stdout, stderr) if pipe is not None]

    @property
    def returncode(self) -> int | None:
        """Set once the child has ended (as asyncio's is), waited for or not."""
        done = self._exited.done() and self._exited.exception() is None
        return self._exited.result() if done else None

    async def wait(self) -> int:
        returncode = await asyncio.wrap_future(self._exited)
        for pipe in self._pipes:
            if not pipe.closed.done():
                try:  # a pipe ends when the child and what inherited it are gone
                    await asyncio.wait_for(asyncio.shield(pipe.closed), EOF_WAIT)
                except TimeoutError:
                    pass
            pipe.transport.close()
        return returncode

    async def communicate(self) -> tuple[bytes, bytes]:
        """Both outputs to their end (b"" for one not piped), then the exit."""
        async def read(reader: asyncio.StreamReader | None) -> bytes:
            return b"" if reader is None else await reader.read()

        out, err = await asyncio.gather(read(self.stdout), read(self.stderr))
        await self.wait()
        return out, err

    def send_signal(self, sig: int) -> None:
        if not self._exited.done():  # never to a pid that may have been reused
            os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


Stream = int | IO[Any] | None  # PIPE, DEVNULL, a descriptor, a file, None: this process's


def _fork(argv: tuple[str, ...], env: dict[str, str], stdout: Stream, stderr: Stream,
          preexec: Callable[[], None] | None) -> tuple[int, Any, list[int | None]]:
    """Fork through this worker's zygote (``sdk`` when ``env`` has an Anthropic key: its model
    is Claude): the pid, a future of its returncode, the read ends of stdout and stderr (None
    where not piped)."""
    flavour = "sdk" if "ANTHROPIC_API_KEY" in env else "plain"
    # conftest: a test that starts a server is slow, one on Claude in the SDK's worker group
    sys.audit("tests.zygote.spawn", argv, flavour)
    zygote = _zygote(flavour)
    child_fds: list[int] = [0]
    ours: list[int] = []  # closed once the child has its copies
    read_ends: list[int | None] = []
    try:
        for stream, default in ((stdout, 1), (stderr, 2)):
            read_end = None
            if stream is None:
                fd = default
            elif stream == subprocess.PIPE:
                read_end, fd = os.pipe2(os.O_CLOEXEC)
                ours.append(fd)
            elif stream == subprocess.DEVNULL:
                fd = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
                ours.append(fd)
            else:
                fd = stream if isinstance(stream, int) else stream.fileno()
            child_fds.append(fd)
            read_ends.append(read_end)
        pid, exited = zygote.spawn(Spawn(argv, env, str(ROOT), preexec), tuple(child_fds))
    except BaseException:
        for read_end in read_ends:
            if read_end is not None:
                os.close(read_end)
        raise
    finally:
        for fd in ours:
            os.close(fd)
    return pid, exited, read_ends


async def spawn(argv: tuple[str, ...], env: dict[str, str], *,
                stdout: Stream = subprocess.PIPE, stderr: Stream = None,
                preexec: Callable[[], None] | None = None) -> ForkedProcess:
    """Fork ``python -m hive_server *argv`` with this process's stdin and ``stdout`` and
    ``stderr`` as ``asyncio.create_subprocess_exec`` takes them (the fork takes milliseconds:
    the loop waits for it)."""
    pid, exited, read_ends = _fork(argv, env, stdout, stderr, preexec)
    pipes = [None if read_end is None else await _pipe(read_end) for read_end in read_ends]
    return ForkedProcess(pid, exited, *pipes)


class BlockingForkedProcess:
    """``spawn_blocking``'s child: as much of ``subprocess.Popen`` as the tests use."""

    def __init__(self, pid: int, exited: concurrent.futures.Future[int], stdout: IO[str]):
        self.pid = pid
        self.stdout = stdout  # text
        self._exited = exited

    def terminate(self) -> None:
        if not self._exited.done():
            os.kill(self.pid, signal.SIGTERM)

    def wait(self, timeout: float | None = None) -> int:
        code = self._exited.result(timeout)
        self.stdout.close()
        return code


def spawn_blocking(argv: tuple[str, ...], env: dict[str, str], *,
                   stderr: Stream = subprocess.DEVNULL) -> BlockingForkedProcess:
    """``spawn`` for code with no event loop: stdout a text pipe."""
    pid, exited, (read_end, _) = _fork(argv, env, subprocess.PIPE, stderr, None)
    assert read_end is not None
    return BlockingForkedProcess(pid, exited, os.fdopen(read_end, "r"))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
