"""The agent catalog: every folder under the agents dir, reloaded while the server runs.

``AgentCatalog.reload()`` scans the folder in a thread. Each agent folder gets a version (a hash
of its ``agent.json``, ``tools.py``, ``triggers.json`` and ``README.md``); only folders whose
version changed are parsed again (``agent_folder.load_folder``), and the entry of an unchanged
folder is the same object as before. A folder with a bad name, a missing or invalid manifest,
or a broken ``tools.py`` is listed with its error; it never breaks the scan. Plain files,
hidden folders and ``__pycache__`` are ignored. Entries are immutable snapshots: a session
keeps the entry it loaded.

Sync tools from ``tools.py`` run on the catalog's own thread pool (``TOOL_THREADS`` threads), not
on the default executor the server's file I/O uses: tools that block never stall event logs or
requests. ``close()`` shuts the pool down.

``CatalogWatcher`` owns the one task that runs ``watchfiles.awatch`` on the agents dir and calls
``reload()`` after each batch of changes; it is the catalog's lifecycle in the app (``start``
scans and watches, ``stop`` stops watching and closes the catalog)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path

from hive_server.core.clock import Clock, SystemClock
from hive_server.errors.catalog import (
    AgentAmbiguous,
    AgentInvalid,
    AgentNotFound,
    AgentPathInvalid,
    AgentPathOutside,
    AgentRequired,
    MetadataEmpty,
    MetadataFieldNotAllowed,
    ReadmeNotFound,
)
from hive_server.models.agent import METADATA_FIELDS, is_agent_id
from hive_server.services.catalog.agent_folder import (
    AgentEntry,
    agent_folders,
    load_folder,
    patch_manifest,
    remove_folder,
)
from hive_server.services.catalog.watcher import FolderWatcher

__all__ = ["AgentCatalog", "AgentEntry", "CatalogChange", "CatalogWatcher"]

log = logging.getLogger(__name__)

TOOL_THREADS = 32


@dataclasses.dataclass(frozen=True, slots=True)
class CatalogChange:
    """Agent ids added, changed (new version) and removed by one reload."""

    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.added or self.changed or self.removed)


ChangeCallback = Callable[[CatalogChange], None]


class AgentCatalog:
    """The agents found in ``agents_dir``; ``reload()`` refreshes them."""

    def __init__(self, agents_dir: Path, *, clock: Clock | None = None) -> None:
        self.agents_dir = agents_dir
        self._clock = clock or SystemClock()
        self._entries: dict[str, AgentEntry] = {}
        self._subscribers: list[ChangeCallback] = []
        self._scan_lock = asyncio.Lock()
        self._write_lock = asyncio.Lock()
        self._tool_threads = ThreadPoolExecutor(TOOL_THREADS, thread_name_prefix="agent-tool")

    def close(self) -> None:
        """Shut down the agent tool threads (queued calls are cancelled, running ones end on
        their own: a thread cannot be stopped)."""
        self._tool_threads.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ reading

    def entries(self) -> list[AgentEntry]:
        """Every listed folder, valid or not, sorted by id."""
        return [self._entries[key] for key in sorted(self._entries)]

    def get(self, agent_id: str) -> AgentEntry:
        entry = self._entries.get(agent_id)
        if entry is None:
            raise AgentNotFound(agent_id)
        return entry

    def readme(self, agent_id: str) -> str:
        """The text of the agent folder's README.md (404 ``readme_not_found`` without one)."""
        text = self.get(agent_id).readme
        if text is None:
            raise ReadmeNotFound(agent_id)
        return text

    def get_valid(self, agent_id: str) -> AgentEntry:
        """The entry, which must be loadable (``InvalidInput`` ``agent_invalid`` otherwise)."""
        entry = self.get(agent_id)
        if not entry.is_valid:
            raise AgentInvalid(agent_id, entry.error)
        return entry

    def lookup(self, agent_id: str | None, agent_path: str | None) -> AgentEntry:
        """The listed entry (valid or not) named by ``agent_id`` or ``agent_path``.

        Exactly one of them: both is ``agent_ambiguous``, neither ``agent_required``.
        """
        if agent_id is not None and agent_path is not None:
            raise AgentAmbiguous()
        if agent_path is not None:
            agent_id = self.resolve_path(agent_path)  # an empty path: agent_path_invalid
        if not agent_id:
            raise AgentRequired()
        return self.get(agent_id)

    def resolve_path(self, agent_path: str) -> str:
        """The agent id named by a client's ``agent_path``.

        Accepts ``agents/<id>``, a bare ``<id>``, a path relative to the agents dir, or an
        absolute path. Anything that does not name a real folder directly inside the agents
        dir (``..``, nested folders, a symlink, even one to another agent: a path names the
        folder itself, never what a link points to) raises ``agent_path_outside``.
        Existence is not checked: follow with ``get``.
        """
        text = agent_path.strip()
        if not text or "\x00" in text:
            raise AgentPathInvalid()
        root = self.agents_dir.resolve()
        candidate = Path(text)
        if not candidate.is_absolute():
            parts = candidate.parts
            if len(parts) > 1 and parts[0] in ("agents", self.agents_dir.name):
                parts = parts[1:]
            candidate = root.joinpath(*parts)
        folder = candidate.parent.resolve() / candidate.name
        if folder.parent != root or not is_agent_id(folder.name) or folder.is_symlink():
            raise AgentPathOutside(
                f"agent_path {agent_path!r} is not a folder directly inside the agents directory")
        return folder.name

    def subscribe(self, callback: ChangeCallback) -> Callable[[], None]:
        """Call ``callback(change)`` after every reload that changed something.

        Returns the function that unsubscribes. A failing callback is logged and never keeps
        the others from running.
        """
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            with suppress(ValueError):
                self._subscribers.remove(callback)

        return unsubscribe

    # ------------------------------------------------------------------ reloading

    async def reload(self) -> CatalogChange:
        """Rescan the agents dir; notify subscribers when something changed."""
        async with self._scan_lock:
            old = self._entries
            new = await asyncio.to_thread(self._scan, old, self._clock.time())
            change = _diff(old, new)
            self._entries = new
        if change:
            log.info("agent catalog: added=%s changed=%s removed=%s",
                     list(change.added), list(change.changed), list(change.removed))
            self._notify(change)
        return change

    def _notify(self, change: CatalogChange) -> None:
        for callback in list(self._subscribers):
            try:
                callback(change)
            except Exception:  # fan-out boundary: one subscriber never breaks the others
                log.exception("agent catalog subscriber %r failed", callback)

    def _scan(self, old: Mapping[str, AgentEntry], now: float) -> dict[str, AgentEntry]:
        root = self.agents_dir.resolve()
        return {folder.name: load_folder(folder, root, old.get(folder.name), now,
                                         self._tool_threads)
                for folder in agent_folders(self.agents_dir)}

    # ------------------------------------------------------------------ writing

    async def delete(self, agent_id: str) -> CatalogChange:
        """Remove the agent's folder (a real folder directly inside the agents dir) and reload."""
        async with self._write_lock:
            folder = self._folder_for_write(agent_id)
            await asyncio.to_thread(remove_folder, folder, self.agents_dir.resolve())
        return await self.reload()

    async def update_metadata(self, agent_id: str, fields: Mapping[str, object]) -> AgentEntry:
        """Patch ``name``/``description``/``goal``/``icon``/``tags``/``category`` in agent.json.

        The patched manifest is validated before anything is written; the file is replaced
        atomically and keys this server does not know are kept.
        """
        not_allowed = sorted(set(fields) - METADATA_FIELDS)
        if not_allowed:
            raise MetadataFieldNotAllowed(not_allowed, sorted(METADATA_FIELDS))
        if not fields:
            raise MetadataEmpty()
        async with self._write_lock:
            folder = self._folder_for_write(agent_id)
            await asyncio.to_thread(patch_manifest, folder, self.agents_dir.resolve(),
                                    dict(fields))
        await self.reload()
        return self.get(agent_id)

    def _folder_for_write(self, agent_id: str) -> Path:
        entry = self.get(agent_id)  # only listed folders: a name from the scan, never a path
        return self.agents_dir / entry.agent_id


class CatalogWatcher(FolderWatcher):
    """Reloads the catalog whenever files under the agents dir change."""

    def __init__(self, catalog: AgentCatalog, *, debounce_ms: int = 300,
                 watch: bool = True) -> None:
        super().__init__(catalog.agents_dir, catalog.reload, debounce_ms=debounce_ms,
                         name="agent catalog", watch=watch)
        self.catalog = catalog

    async def stop(self) -> None:
        """Stop watching, then close the catalog (its sessions are already stopped)."""
        await super().stop()
        self.catalog.close()


def _diff(old: Mapping[str, AgentEntry], new: Mapping[str, AgentEntry]) -> CatalogChange:
    return CatalogChange(
        added=tuple(sorted(new.keys() - old.keys())),
        changed=tuple(sorted(key for key in new.keys() & old.keys()
                             if new[key].version != old[key].version)),
        removed=tuple(sorted(old.keys() - new.keys())))
