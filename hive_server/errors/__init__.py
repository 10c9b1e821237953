"""Domain errors. Each has a stable ``code``; the web layer maps classes to HTTP statuses.

Nothing here knows about HTTP. Services raise these; one middleware turns them into
``{"error": message, "code": code, **extra}`` with a status chosen by the class.

This module holds the base class and one class per status (its generic code). The named
errors, each a subclass carrying its own code and message, are grouped by concern:
``errors.sessions``, ``errors.catalog``, ``errors.triggers`` and ``errors.requests``. A raise
site names the error (``raise SessionLoading(session_id)``); it never spells a code.
"""

from __future__ import annotations


class HiveError(Exception):
    """Base class of every domain error: ``code`` is the class's, ``extra`` joins the answer."""

    code: str = "error"

    def __init__(self, message: str, *, extra: dict | None = None):
        super().__init__(message)
        self.message = message
        self.extra = extra or {}


class InvalidInput(HiveError):
    """The request is well formed but its content is not acceptable (400)."""

    code = "invalid_input"


class ValidationFailed(HiveError):
    """The body does not match the schema (422)."""

    code = "validation_error"


class NotFound(HiveError):
    """An id names nothing that exists (404)."""

    code = "not_found"


class Conflict(HiveError):
    """The action clashes with current state (409)."""

    code = "conflict"


class PayloadTooLarge(HiveError):
    """A body or field is over its size limit (413)."""

    code = "payload_too_large"


class UnsupportedMediaType(HiveError):
    """The body is not JSON (415)."""

    code = "unsupported_media_type"


class Unauthorized(HiveError):
    """Missing or wrong credentials or signature (401)."""

    code = "unauthorized"


class Forbidden(HiveError):
    """The request is refused by a local-security rule (403)."""

    code = "forbidden"


class Unavailable(HiveError):
    """The component is shutting down or overloaded (503)."""

    code = "unavailable"


class Busy(HiveError):
    """A bounded queue is full; try again later (429)."""

    code = "busy"
