"""Errors of sessions: ids, live/loading/stopping states, the log, the queen, the workspace."""

from __future__ import annotations

from hive_server.errors import Busy, Conflict, InvalidInput, NotFound, Unavailable


class InvalidSessionId(InvalidInput):
    """A session id that is not a safe folder name, or a reserved one (400)."""

    code = "invalid_session_id"

    def __init__(self, session_id: str):
        super().__init__(f"invalid session id: {session_id!r}")


class SessionIdMismatch(InvalidInput):
    """``session_id`` and ``queen_resume_from`` name different sessions (400)."""

    code = InvalidSessionId.code

    def __init__(self) -> None:
        super().__init__("session_id and queen_resume_from name different sessions")


class SessionCorrupt(InvalidInput):
    """``meta.json`` is corrupt or unreadable; it was kept aside as ``kept_as`` (400)."""

    code = "session_corrupt"

    def __init__(self, session_id: str, kept_as: str, error: str):
        super().__init__(f"session {session_id!r} has a corrupt meta.json (kept as "
                         f"{kept_as}): {error}", extra={"kept_as": kept_as})


class SessionNotFound(NotFound):
    """No such session on disk (404)."""

    code = "session_not_found"

    def __init__(self, session_id: str):
        super().__init__(f"session {session_id!r} not found")


class NothingToResume(NotFound):
    """``queen_resume_from`` names no session on disk (404)."""

    code = SessionNotFound.code

    def __init__(self, session_id: str):
        super().__init__(f"no session {session_id!r} to resume")


class NotQueenSession(NotFound):
    """The session exists but belongs to another queen (404)."""

    code = SessionNotFound.code

    def __init__(self, session_id: str, queen_id: str):
        super().__init__(f"session {session_id!r} is not a session of queen {queen_id!r}")


class SessionNotLive(NotFound):
    """The session is not running (404)."""

    code = "session_not_live"

    def __init__(self, session_id: str):
        super().__init__(f"session {session_id!r} is not live")


class SessionLoading(Conflict):
    """The session is starting; retry when it is live (409, with ``loading: true``)."""

    code = "session_loading"

    def __init__(self, session_id: str):
        super().__init__(f"session {session_id!r} is loading", extra={"loading": True})


class SessionLive(Conflict):
    """The action needs the session stopped (409)."""

    code = "session_live"

    def __init__(self, session_id: str):
        super().__init__(f"session {session_id!r} is live")


class SessionAlreadyLive(Conflict):
    """Starting a session that is already running (409)."""

    code = SessionLive.code

    def __init__(self, session_id: str):
        super().__init__(f"session {session_id!r} is already live")


class ShuttingDown(Conflict):
    """The server is shutting down and starts no session (409)."""

    code = "shutting_down"

    def __init__(self) -> None:
        super().__init__("server is shutting down")


class ColonyAlreadyLoaded(Conflict):
    """The session runs a colony already (409)."""

    code = "colony_already_loaded"

    def __init__(self, agent_id: str):
        super().__init__(f"colony {agent_id!r} is already loaded")


class NoColonyLoaded(Conflict):
    """The session runs no colony (409)."""

    code = "no_colony_loaded"

    def __init__(self) -> None:
        super().__init__("no colony is loaded")


class SessionStopping(Unavailable):
    """The session stopped while the request was handled (503)."""

    code = "session_stopping"

    def __init__(self, session_id: str | None = None):
        super().__init__("the session is stopping" if session_id is None
                         else f"session {session_id!r} is stopping")


class LogUnavailable(Unavailable):
    """The session's event log can no longer be written (503)."""

    code = "log_unavailable"

    def __init__(self, session_id: str, reason: BaseException):
        super().__init__(f"session {session_id!r} cannot store events: {reason}")


class ResourceExhausted(Unavailable):
    """The server is out of file descriptors (503)."""

    code = "resource_exhausted"

    def __init__(self) -> None:
        super().__init__("the server has run out of file descriptors; try again later")


class InboxFull(Busy):
    """The queen has as many inputs waiting as its inbox holds (429)."""

    code = "inbox_full"

    def __init__(self) -> None:
        super().__init__("the queen's inbox is full; retry later")


class EmptyTitle(InvalidInput):
    """A session title that is blank (400)."""

    code = "empty_title"

    def __init__(self) -> None:
        super().__init__("title is empty")


class InvalidQueenId(InvalidInput):
    """A URL's queen id that is not an id (400)."""

    code = "invalid_queen_id"

    def __init__(self, queen_id: str):
        super().__init__(f"invalid queen id: {queen_id!r}")


class InvalidAgentId(InvalidInput):
    """A URL's agent id that is not an id (400)."""

    code = "invalid_agent_id"

    def __init__(self, agent_id: str):
        super().__init__(f"invalid agent id: {agent_id!r}")


class InvalidFormat(InvalidInput):
    """An export format this server does not write (400)."""

    code = "invalid_format"

    def __init__(self, formats: tuple[str, ...]):
        super().__init__(f"format must be one of {', '.join(formats)}")


class ImagesNotSupported(InvalidInput):
    """A chat message with attachments (400)."""

    code = "images_not_supported"

    def __init__(self) -> None:
        super().__init__("attachments (images, files) are not supported by this server")


class InvalidPath(InvalidInput):
    """A workspace path that is absolute, has ``~``, ``..`` or NUL, or leads out (400)."""

    code = "invalid_path"


class WorkspaceFileNotFound(NotFound):
    """No such file in the session's workspace (404)."""

    code = "file_not_found"

    def __init__(self, path: str):
        super().__init__(f"no such file in the workspace: {path!r}")


class FileUnreadable(InvalidInput):
    """A workspace file that cannot be opened (a symlink loop, no permission) (400)."""

    code = "file_unreadable"

    def __init__(self, path: str, reason: str | None):
        super().__init__(f"{path!r} cannot be read: {reason}")


class NotAFile(InvalidInput):
    """A workspace path that is a folder or a special file (400)."""

    code = "not_a_file"

    def __init__(self, path: str):
        super().__init__(f"{path!r} is not a file")
