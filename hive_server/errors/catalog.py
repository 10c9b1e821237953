"""Errors of the catalog: agent folders (their manifest, path and metadata) and queens."""

from __future__ import annotations

from hive_server.errors import InvalidInput, NotFound, ValidationFailed


class AgentNotFound(NotFound):
    """No agent folder of that id (404)."""

    code = "agent_not_found"

    def __init__(self, agent_id: str):
        super().__init__(f"agent {agent_id!r} not found")


class ReadmeNotFound(NotFound):
    """The agent folder has no README.md (404)."""

    code = "readme_not_found"

    def __init__(self, agent_id: str):
        super().__init__(f"agent {agent_id!r} has no README.md")


class AgentInvalid(InvalidInput):
    """The agent folder does not load (its error is the catalog entry's) (400)."""

    code = "agent_invalid"

    def __init__(self, agent_id: str, error: str | None):
        super().__init__(f"agent {agent_id!r} is invalid: {error}")


class ManifestUnreadable(InvalidInput):
    """agent.json cannot be read or parsed, or is not a JSON object (400)."""

    code = AgentInvalid.code


class AgentAmbiguous(InvalidInput):
    """Both ``agent_id`` and ``agent_path`` are given (400)."""

    code = "agent_ambiguous"

    def __init__(self) -> None:
        super().__init__("give agent_id or agent_path, not both")


class AgentRequired(InvalidInput):
    """Neither ``agent_id`` nor ``agent_path`` is given (400)."""

    code = "agent_required"

    def __init__(self) -> None:
        super().__init__("agent_id or agent_path is required")


class AgentPathInvalid(InvalidInput):
    """An empty ``agent_path``, or one with NUL (400)."""

    code = "agent_path_invalid"

    def __init__(self) -> None:
        super().__init__("agent_path must not be empty")


class AgentPathOutside(InvalidInput):
    """A path that is not a real folder directly inside the agents directory (400)."""

    code = "agent_path_outside"


class MetadataFieldNotAllowed(InvalidInput):
    """A metadata patch with fields that cannot be patched (400)."""

    code = "metadata_field_not_allowed"

    def __init__(self, not_allowed: list[str], allowed: list[str]):
        super().__init__(f"fields {not_allowed} cannot be patched; allowed: {allowed}")


class MetadataEmpty(InvalidInput):
    """A metadata patch with no fields (400)."""

    code = "metadata_empty"

    def __init__(self) -> None:
        super().__init__("no fields to update")


class MetadataInvalid(ValidationFailed):
    """The patched manifest fails its schema (422 ``validation_error``)."""

    def __init__(self, detail: str):
        super().__init__(f"invalid metadata: {detail}")


class QueenInvalid(InvalidInput):
    """The queen's profile does not load (400)."""

    code = "queen_invalid"

    def __init__(self, queen_id: str, error: str | None):
        super().__init__(f"queen {queen_id!r} is invalid: {error}")


class QueenNotFound(NotFound):
    """No queen of that id (404)."""

    code = "queen_not_found"

    def __init__(self, queen_id: str):
        super().__init__(f"queen {queen_id!r} not found")
