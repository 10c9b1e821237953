"""Sessions on disk: ``$HIVE_HOME/sessions/<id>/{meta.json, events.jsonl, workspace/}``.

Every path is built from a validated id (a single safe segment), so nothing outside the
sessions directory is ever read or removed.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import orjson
from pydantic import ValidationError

from hive_server.core.eventlog import last_seq_file
from hive_server.errors import InvalidInput, NotFound
from hive_server.models.session import SessionMeta, is_safe_id


class SessionStore:
    def __init__(self, home: Path):
        self.root = home / "sessions"

    def path(self, session_id: str) -> Path:
        if not is_safe_id(session_id):
            raise InvalidInput(f"invalid session id: {session_id!r}", code="invalid_session_id")
        path = self.root / session_id
        if path.parent != self.root:
            raise InvalidInput(f"invalid session id: {session_id!r}", code="invalid_session_id")
        return path

    def exists(self, session_id: str) -> bool:
        return (self.path(session_id) / "meta.json").is_file()

    async def read_meta(self, session_id: str) -> SessionMeta:
        path = self.path(session_id) / "meta.json"
        try:
            raw = await asyncio.to_thread(path.read_bytes)
            return _own(SessionMeta.model_validate_json(raw), session_id)
        except FileNotFoundError:
            raise NotFound(f"session {session_id!r} not found", code="session_not_found") from None
        except ValidationError as exc:
            raise InvalidInput(f"session {session_id!r} has a corrupt meta.json: {exc}",
                               code="session_corrupt") from exc

    async def list_metas(self) -> list[tuple[SessionMeta, int]]:
        """Every session folder with a readable meta.json, with its last seq; newest first."""
        return await asyncio.to_thread(self._list_metas)

    def _list_metas(self) -> list[tuple[SessionMeta, int]]:
        if not self.root.is_dir():
            return []
        found: list[tuple[SessionMeta, int]] = []
        for child in self.root.iterdir():
            if not child.is_dir() or child.is_symlink() or not is_safe_id(child.name):
                continue
            try:
                meta = SessionMeta.model_validate(orjson.loads((child / "meta.json").read_bytes()))
            except (OSError, ValueError):
                continue
            meta = _own(meta, child.name)
            found.append((meta, last_seq_file(child / "events.jsonl")))
        found.sort(key=lambda item: item[0].created_at, reverse=True)
        return found

    async def delete(self, session_id: str) -> None:
        path = self.path(session_id)
        if not path.is_dir() or path.is_symlink():
            raise NotFound(f"session {session_id!r} not found", code="session_not_found")
        await asyncio.to_thread(shutil.rmtree, path)


def _own(meta: SessionMeta, session_id: str) -> SessionMeta:
    """The folder name is the id (a copied folder is a session of its own, never a second
    writer of the session it was copied from)."""
    if meta.session_id == session_id:
        return meta
    return meta.model_copy(update={"session_id": session_id})
