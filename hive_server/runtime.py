"""The server process around the app: the home lock, the descriptor limit, the hard stop.

``HomeLock``: ``$HIVE_HOME/server.lock`` is held (``flock``) by the one server of a home; the
OS drops it when the process exits, even on kill -9. The file says who holds it: ``<pid>``
while the server runs, ``<pid> stopping`` once it shuts down, so a second server started
during a shutdown waits for it (bounded) instead of being refused.

``raise_fd_limit``: the soft ``RLIMIT_NOFILE`` goes up to the hard limit at start.

``hard_exit_after``: a daemon timer that ends the process with ``os._exit`` if a shutdown
outlives its grace period (a tool that ignores cancellation, a stuck thread): whatever still
runs, the process is gone a bounded time after SIGTERM.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import resource
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

LOCK_NAME = "server.lock"
POLL_SECONDS = 0.1  # how often a waiting server tries the lock again
FD_LIMIT_CAP = 1 << 20  # an unlimited hard limit is not a valid soft limit everywhere


class HomeLock:
    """This process's hold on ``$HIVE_HOME/server.lock`` (see the module docstring)."""

    def __init__(self, fd: int):
        self.fd = fd

    @classmethod
    def try_acquire(cls, home: Path) -> HomeLock | None:
        """The lock, or None when another process holds it."""
        home.mkdir(parents=True, exist_ok=True, mode=0o700)  # conversations live here
        fd = os.open(home / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        lock = cls(fd)
        lock._say(str(os.getpid()))
        return lock

    @classmethod
    def acquire(cls, home: Path, *, wait: float, say: Callable[[str], None],
                sleep: Callable[[float], None] = time.sleep,
                clock: Callable[[], float] = time.monotonic) -> HomeLock | None:
        """The lock; while its holder is stopping, wait up to ``wait`` seconds for it (saying
        so once). None when a running server holds it, or its holder outlived the wait."""
        lock = cls.try_acquire(home)
        if lock is not None:
            return lock
        pid, stopping = holder(home)
        if not stopping:
            say(f"HIVE_HOME {home} is already in use by another hive-server (pid {pid}; see "
                "its server.json)")
            return None
        say(f"waiting for the server (pid {pid}) to stop (up to {wait:g} s)")
        deadline = clock() + wait
        while clock() < deadline:
            sleep(POLL_SECONDS)
            if (lock := cls.try_acquire(home)) is not None:
                say(f"the server (pid {pid}) has stopped; starting")
                return lock
        say(f"the server (pid {pid}) still holds HIVE_HOME {home} after {wait:g} s; giving up")
        return None

    def mark_stopping(self) -> None:
        """Tell a server started from now on that this one is on its way out."""
        self._say(f"{os.getpid()} stopping")

    def release(self) -> None:
        os.close(self.fd)

    def _say(self, text: str) -> None:
        with contextlib.suppress(OSError):  # only informative: the flock is what counts
            os.ftruncate(self.fd, 0)
            os.pwrite(self.fd, f"{text}\n".encode(), 0)


def holder(home: Path) -> tuple[str, bool]:
    """The pid written in the lock file (``?`` if none yet) and whether it is stopping."""
    try:
        words = (home / LOCK_NAME).read_text("ascii", errors="replace").split()
    except OSError:
        words = []
    return (words[0] if words else "?"), words[1:2] == ["stopping"]


def raise_fd_limit() -> tuple[int, int]:
    """Raise the soft descriptor limit to the hard one; return (soft, hard) after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = FD_LIMIT_CAP if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:  # e.g. macOS caps it below the hard limit
            log.warning("could not raise the open-file limit from %d to %d: %s",
                        soft, target, exc)
    return soft, hard


def hard_exit_after(seconds: float, cleanup: Callable[[], None]) -> threading.Timer:
    """Start a daemon timer that runs ``cleanup`` and ends the process (exit code 1) after
    ``seconds``; cancel it when the shutdown finishes in time."""
    def expire() -> None:
        print(f"hive-server: shutdown still running after {seconds:g} s; exiting now",
              file=sys.stderr, flush=True)
        with contextlib.suppress(Exception):
            cleanup()
        logging.shutdown()
        os._exit(1)

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()
    return timer


def exit_now_if_threads_remain(code: int, settle: float = 0.5) -> None:
    """After a finished shutdown: if threads (tool calls that never return) are still running
    ``settle`` seconds on, end the process now instead of joining them at interpreter exit
    (idle pool threads that were told to stop are given that long to go)."""
    deadline = time.monotonic() + settle
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join(max(0.0, deadline - time.monotonic()))
    others = [t.name for t in threading.enumerate()
              if t is not threading.main_thread() and not t.daemon and t.is_alive()]
    if not others:
        return
    log.warning("exiting with %d thread(s) still running (%s): their tool calls are "
                "abandoned", len(others), ", ".join(sorted(others)))
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
