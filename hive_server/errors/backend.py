"""Errors of the storage backend: Redis that cannot be reached or cannot persist as the
durability mode needs (refused at start), and appends a Redis log refuses (fencing, seq)."""

from __future__ import annotations

from hive_server.errors import Conflict, InvalidInput, Unavailable
from hive_server.errors.sessions import LogUnavailable, SessionStopping


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


class FeedUnavailable(Unavailable):
    """A node cannot stream a session's events from Redis (503)."""

    code = "redis_feed_unavailable"

    def __init__(self, session_id: str, reason: BaseException | str):
        super().__init__(f"session {session_id!r}: cannot stream its events from Redis: "
                         f"{reason}")


class ForwardTimeout(Unavailable):
    """The session's owner did not answer a forwarded command in time (503). It may still be
    applied: sent again with the same request id, it is applied once and answers its seq."""

    code = "forward_timeout"

    def __init__(self, session_id: str, request_id: str, timeout: float):
        super().__init__(
            f"session {session_id!r}: its owner did not acknowledge the request within "
            f"{timeout:g} s; it may still be applied: send it again with request id "
            f"{request_id!r} to learn its seq", extra={"request_id": request_id})


class ForwardInDoubt(Unavailable):
    """The owner that took a forwarded command stopped while applying it: whether it is stored
    is not known (503). Its request id is never applied again."""

    code = "forward_in_doubt"

    def __init__(self, session_id: str, request_id: str):
        super().__init__(
            f"session {session_id!r}: the node that owned it stopped while applying request "
            f"{request_id!r}; it may or may not be stored (read the session's events)",
            extra={"request_id": request_id})


class ForwardUnavailable(Unavailable):
    """Redis failed while a command went to the session's owner (503): it may or may not
    have been sent; sent again with the same request id it is applied once."""

    code = "forward_unavailable"

    def __init__(self, session_id: str, request_id: str, reason: BaseException):
        super().__init__(
            f"session {session_id!r}: Redis failed while the request went to the node that "
            f"owns it ({reason}); send it again with request id {request_id!r}: it is applied "
            "once", extra={"request_id": request_id})


class BadForwardedCommand(InvalidInput):
    """A command on a session's command stream that is not a JSON object (400): the owner
    answers it so, and applies nothing."""

    code = "invalid_forwarded_command"

    def __init__(self, raw: bytes):
        super().__init__(f"a forwarded command is a JSON object, not {raw[:80]!r}")


class SessionElsewhere(Conflict):
    """Another node of the cluster runs the session: this route is served only by its owner
    (409, extra ``node_id``: the owner). Chats, trigger runs, its events and its detail are
    served by every node."""

    code = "session_elsewhere"

    def __init__(self, session_id: str, node_id: str):
        super().__init__(f"session {session_id!r} is run by node {node_id!r}; send this request "
                         "to that node", extra={"node_id": node_id})


UNRECORDABLE = (LogUnavailable, LogFenced, SessionStopping)
"""The session's log cannot take another event: it failed (a disk error, a fenced append
after a lost lease) or the session is sealed. Work that meets one ends without recording."""


def unrecordable(exc: BaseException) -> bool:
    """``exc`` (or every error of a group: a turn's tool calls) is one of ``UNRECORDABLE``,
    directly or as the cause of a tool's failure."""
    if isinstance(exc, BaseExceptionGroup):
        return all(unrecordable(inner) for inner in exc.exceptions)
    return isinstance(exc, UNRECORDABLE) or (
        exc.__cause__ is not None and isinstance(exc.__cause__, UNRECORDABLE))
