"""Errors of the storage backend: Redis that cannot be reached or cannot persist as the
durability mode needs (refused at start), and appends a Redis log refuses (fencing, seq)."""

from __future__ import annotations

from hive_server.errors import Conflict, Unavailable


class RedisUnreachable(Unavailable):
    """Redis does not answer at ``url`` (shown without its password) (503)."""

    code = "redis_unreachable"

    def __init__(self, url: str, reason: BaseException | str):
        super().__init__(f"cannot reach Redis at {url}: {reason}")


class RedisDurabilityRefused(Unavailable):
    """Redis cannot persist as the durability mode needs; the message says what to set (503)."""

    code = "redis_durability_refused"


class LogFenced(Conflict):
    """An append carried a lease that is no longer the session's: another node owns it (409)."""

    code = "log_fenced"

    def __init__(self, session_id: str, lease: str):
        super().__init__(f"session {session_id!r}: this node's lease {lease!r} was taken over; "
                         "its appends are refused")


class LogSeqRejected(Conflict):
    """The stream's last seq is not the one before the append's: another writer (409)."""

    code = "log_seq_rejected"

    def __init__(self, session_id: str, detail: str):
        super().__init__(f"session {session_id!r}: append refused by Redis: {detail}")
