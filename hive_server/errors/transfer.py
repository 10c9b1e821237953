"""Errors of moving a session between homes (``hive-server export-session`` and
``import-session``): the command prints the message on one line and exits with code 2."""

from __future__ import annotations

from pathlib import Path

from hive_server.errors import Conflict, InvalidInput, NotFound


class BadImportLine(InvalidInput):
    """A line of the file to import is not the next event of one session (400)."""

    code = "invalid_import"

    def __init__(self, number: int, why: str):
        super().__init__(f"line {number}: {why}; nothing was imported")


class IncompleteImport(InvalidInput):
    """The file to import lacks what a session needs: any event, a ``session_started`` (400)."""

    code = "invalid_import"

    def __init__(self, why: str) -> None:
        super().__init__(f"{why}; nothing was imported")


class SessionExists(Conflict):
    """The home (or the Redis, shown as its URL) already has a session of that id (409)."""

    code = "session_exists"

    def __init__(self, session_id: str, home: Path | str):
        super().__init__(f"a session {session_id!r} already exists in {home}; import it under "
                         "another id with --as ID, or delete that one first")


class HomeInUse(Conflict):
    """A server runs on the home (it holds ``server.lock``) (409)."""

    code = "home_in_use"

    def __init__(self, home: Path, action: str):
        super().__init__(f"a server is running on {home} (it holds server.lock); stop it "
                         f"before {action}")


class SessionIsLive(Conflict):
    """The session is live (or about to be resumed) on the server running on its home (409)."""

    code = "session_live"

    def __init__(self, session_id: str, home: Path):
        super().__init__(f"session {session_id!r} is live on the server running on {home}; "
                         f"stop it first (DELETE /api/sessions/{session_id}), or stop the "
                         "server, then export it")


class NoSessionLog(NotFound):
    """The home has no event log for that session (404)."""

    code = "session_not_found"

    def __init__(self, session_id: str, home: Path):
        super().__init__(f"no session {session_id!r} in {home} (no "
                         f"sessions/{session_id}/events.jsonl there)")


class NoSessionStream(NotFound):
    """The Redis has no event stream for that session (404)."""

    code = "session_not_found"

    def __init__(self, session_id: str, redis_url: str):
        super().__init__(f"no session {session_id!r} in Redis at {redis_url} (no stream "
                         f"hive:{{{session_id}}}:log there)")
