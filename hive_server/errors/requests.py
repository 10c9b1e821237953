"""Errors of the request itself: its body, its query and headers, and the local-security checks."""

from __future__ import annotations

from collections.abc import Iterable

from hive_server.errors import Forbidden, InvalidInput, PayloadTooLarge


class MalformedJson(InvalidInput):
    """A body that is not JSON (400)."""

    code = "malformed_json"

    def __init__(self, reason: BaseException):
        super().__init__(f"malformed JSON: {reason}")


class BodyTooLarge(PayloadTooLarge):
    """A body over its size limit (413 ``payload_too_large``)."""

    def __init__(self, limit: int):
        super().__init__(f"body over {limit} bytes")


class EmptyMessage(InvalidInput):
    """A chat message or initial prompt that is blank (400)."""

    code = "empty_message"

    def __init__(self, what: str):
        super().__init__(f"{what} is empty")


class MessageTooLarge(PayloadTooLarge):
    """A chat message or initial prompt over its length limit (413)."""

    code = "message_too_large"

    def __init__(self, what: str, limit: int):
        super().__init__(f"{what} over {limit} characters")


class InvalidQuery(InvalidInput):
    """A query parameter (or a combination) that is not acceptable (400; with ``parameter``
    when one parameter is at fault)."""

    code = "invalid_query"

    def __init__(self, message: str, *, parameter: str | None = None):
        super().__init__(message, extra=None if parameter is None else {"parameter": parameter})


class InvalidTypes(InvalidInput):
    """``?types=`` names an unknown event type, on the event stream (400)."""

    code = "invalid_types"

    def __init__(self, unknown: Iterable[str]):
        super().__init__(f"unknown event types: {sorted(unknown)}")


class InvalidHistoryTypes(InvalidTypes):
    """``?types=`` names an unknown event type, on the history (400 ``invalid_query``)."""

    code = InvalidQuery.code


class InvalidLastEventId(InvalidInput):
    """A ``Last-Event-ID`` header that is not a seq (400)."""

    code = "invalid_last_event_id"

    def __init__(self) -> None:
        super().__init__("Last-Event-ID must be a seq (ASCII digits only)")


class HostNotAllowed(Forbidden):
    """A ``Host`` header that is neither loopback, ``--host`` nor allowed (403)."""

    code = "host_not_allowed"

    def __init__(self) -> None:
        super().__init__("Host header not allowed")


class OriginNotAllowed(Forbidden):
    """A cookie request without an allowed ``Origin``, or a refused CORS preflight (403)."""

    code = "origin_not_allowed"
