"""``GET /api/sessions/{id}/files``: a session's workspace, listed."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from hive_server.models.agent_views import Response

EntryKind = Literal["file", "dir", "symlink", "other"]


class WorkspaceEntry(Response):
    path: str = Field(description="relative to the workspace, '/' separated")
    type: EntryKind = Field(
        description="a symlink is listed, never followed; it downloads only when it leads "
                    "to a file inside the workspace; other: a FIFO, socket or device")
    size: int | None = Field(description="bytes (files only)")
    modified_at: float = Field(description="epoch seconds")


class WorkspaceListing(Response):
    session_id: str
    entries: list[WorkspaceEntry] = Field(description="sorted by path")
    truncated: bool = Field(description="more entries than the listing holds (10000)")
