"""One agent folder on disk: read it into an ``AgentEntry``, remove it, patch its manifest.

A folder's version is a hash of its ``agent.json``, ``tools.py``, ``triggers.json`` and
``README.md``. Files are read only when they stay inside the agents dir (no symlinks leading out)
and are at most ``MAX_FILE_BYTES``. Everything that can go wrong with one folder becomes that
entry's ``error``; ``load_folder`` never raises for a broken folder.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import shutil
from collections.abc import Mapping
from concurrent.futures import Executor
from contextlib import suppress
from pathlib import Path

import pydantic

from hive_server.core.files import write_atomic
from hive_server.errors.catalog import (
    AgentNotFound,
    AgentPathOutside,
    ManifestUnreadable,
    MetadataInvalid,
)
from hive_server.models.agent import AgentManifest, is_agent_id
from hive_server.models.validation import describe_validation_error
from hive_server.services.tools.base import AgentLoadError, Tool
from hive_server.services.tools.builtins import BUILTIN_TOOL_NAMES
from hive_server.services.tools.plugins import tools_from_module

log = logging.getLogger(__name__)

AGENT_FILES = ("agent.json", "tools.py", "triggers.json", "README.md")
MAX_FILE_BYTES = 1024 * 1024


@dataclasses.dataclass(frozen=True, slots=True)
class AgentEntry:
    """One agent folder as loaded. ``error`` is set when the folder cannot be used.

    ``tools`` come from ``tools.py``; bind them to a session workspace (``tools.bind_tools``)
    before running them. ``triggers_raw`` is ``triggers.json`` as bytes, parsed by the trigger
    layer. ``version`` changes whenever one of ``AGENT_FILES`` changes.
    """

    agent_id: str
    path: Path
    manifest: AgentManifest | None
    error: str | None
    tools: Mapping[str, Tool]
    triggers_raw: bytes | None
    readme: str | None
    version: str
    loaded_at: float

    @property
    def is_valid(self) -> bool:
        return self.error is None and self.manifest is not None

    def worker_tool_names(self) -> set[str]:
        """Every tool one of its workers can call: the built-ins and ``tools.py`` tools a
        worker names, or all of them for a worker (the default one included) naming none."""
        if self.manifest is None:
            return set()
        offered = set(self.tools) | BUILTIN_TOOL_NAMES
        named = [self.manifest.tools, *(spec.tools for spec in self.manifest.workers.values())]
        return set().union(*((set(names) or offered) & offered for names in named))


@dataclasses.dataclass(frozen=True, slots=True)
class _Snapshot:
    files: dict[str, bytes]
    version: str


def agent_folders(root: Path) -> list[Path]:
    """The candidate agent folders: subfolders that are neither hidden nor ``__pycache__``."""
    try:
        children = sorted(root.iterdir())
    except FileNotFoundError:
        return []
    except OSError:
        log.exception("cannot list the agents dir %s", root)
        return []
    return [child for child in children
            if not child.name.startswith(".") and child.name != "__pycache__" and child.is_dir()]


def load_folder(folder: Path, root: Path, old: AgentEntry | None, now: float,
                executor: Executor | None = None) -> AgentEntry:
    """Parse one folder unless its version is unchanged; any failure becomes its error.

    The sync tools of its ``tools.py`` run on ``executor``.
    """
    try:
        _check_folder(folder, root)
        snapshot = _snapshot(folder, root)
    except AgentLoadError as exc:
        return _error_entry(folder, exc.message, old, now)
    if old is not None and old.version == snapshot.version:
        return old
    try:
        return _parse_folder(folder, snapshot, now, executor)
    except AgentLoadError as exc:
        return _error_entry(folder, exc.message, old, now, snapshot)
    except Exception as exc:  # plugin boundary: a broken folder never breaks the scan
        log.exception("loading agent folder %s failed", folder)
        return _error_entry(folder, f"{type(exc).__name__}: {exc}", old, now, snapshot)


def _check_folder(folder: Path, root: Path) -> None:
    if not is_agent_id(folder.name):
        raise AgentLoadError(
            f"invalid agent id {folder.name!r}: use 1-64 lowercase letters, digits, '_' or '-', "
            "starting with a letter or digit")
    if folder.is_symlink() or folder.resolve().parent != root:
        raise AgentLoadError("the agent folder is a symlink; only real folders inside the "
                             "agents dir are loaded")


def _read_inside(path: Path, root: Path) -> bytes | None:
    """The file's bytes (``None`` if missing); refuse symlinks out and oversized files."""
    if not path.exists():
        return None
    if not path.resolve().is_relative_to(root):
        raise AgentLoadError(f"{path.name} points outside the agents dir")
    with path.open("rb") as handle:
        data = handle.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise AgentLoadError(f"{path.name} is larger than {MAX_FILE_BYTES} bytes")
    return data


def _snapshot(folder: Path, root: Path) -> _Snapshot:
    digest = hashlib.sha256()
    files: dict[str, bytes] = {}
    try:
        for name in AGENT_FILES:
            data = _read_inside(folder / name, root)
            digest.update(f"{name}:{-1 if data is None else len(data)}\n".encode())
            if data is not None:
                files[name] = data
                digest.update(data)
    except OSError as exc:
        raise AgentLoadError(f"cannot read the agent folder: {exc}") from exc
    return _Snapshot(files, digest.hexdigest()[:16])


def _parse_manifest(data: bytes | None) -> AgentManifest:
    if data is None:
        raise AgentLoadError("agent.json is missing")
    try:
        raw = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AgentLoadError(f"agent.json is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise AgentLoadError("agent.json must contain a JSON object")
    try:
        return AgentManifest.model_validate(raw)
    except pydantic.ValidationError as exc:
        raise AgentLoadError(f"agent.json is invalid: {describe_validation_error(exc)}") from exc


def _parse_folder(folder: Path, snapshot: _Snapshot, now: float,
                  executor: Executor | None) -> AgentEntry:
    manifest = _parse_manifest(snapshot.files.get("agent.json"))
    tools: dict[str, Tool] = {}
    source = snapshot.files.get("tools.py")
    if source is not None:
        module_name = f"hive_agent_tools_{folder.name.replace('-', '_')}_{snapshot.version}"
        tools = tools_from_module(folder / "tools.py", module_name, source=source,
                                  executor=executor)
    _check_tool_names(manifest, tools)
    return _entry(folder, snapshot, now, manifest=manifest, tools=tools)


def _check_tool_names(manifest: AgentManifest, tools: Mapping[str, Tool]) -> None:
    """Every tool the agent or one of its workers names comes from tools.py or the built-ins."""
    offered = set(tools) | BUILTIN_TOOL_NAMES
    named = {"agent.json": manifest.tools,
             **{f"worker {name!r}": spec.tools for name, spec in manifest.workers.items()}}
    problems = [f"{who} names unknown tools {sorted(set(names) - offered)}"
                for who, names in named.items() if set(names) - offered]
    if problems:
        raise AgentLoadError(f"{'; '.join(problems)}; available: {sorted(offered)}")


def _entry(folder: Path, snapshot: _Snapshot, now: float, *, manifest: AgentManifest | None,
           tools: Mapping[str, Tool], error: str | None = None,
           version: str | None = None) -> AgentEntry:
    readme = snapshot.files.get("README.md")
    return AgentEntry(
        agent_id=folder.name, path=folder, manifest=manifest, error=error, tools=tools,
        triggers_raw=snapshot.files.get("triggers.json"),
        readme=None if readme is None else readme.decode("utf-8", errors="replace"),
        version=version or snapshot.version, loaded_at=now)


def _error_entry(folder: Path, error: str, old: AgentEntry | None, now: float,
                 snapshot: _Snapshot | None = None) -> AgentEntry:
    """An entry that lists the folder with its error; unchanged errors keep the old entry.

    With a snapshot the version is the content hash, so an unchanged broken folder is not
    parsed (nor its tools.py run) again; without one it is a hash of the error.
    """
    if snapshot is not None:
        version = snapshot.version
    else:
        version = "error-" + hashlib.sha256(error.encode()).hexdigest()[:16]
    if old is not None and old.version == version:
        return old
    manifest = None
    if snapshot is not None:
        with suppress(AgentLoadError):
            manifest = _parse_manifest(snapshot.files.get("agent.json"))
    return _entry(folder, snapshot or _Snapshot({}, version), now, manifest=manifest, tools={},
                  error=error, version=version)


def _real_folder(folder: Path, root: Path) -> Path:
    if folder.is_symlink() or folder.resolve().parent != root:
        raise AgentPathOutside(f"{folder.name!r} is not a real folder inside the agents dir")
    if not folder.is_dir():
        raise AgentNotFound(folder.name)
    return folder


def remove_folder(folder: Path, root: Path) -> None:
    """Delete an agent folder; only a real folder directly inside ``root``."""
    shutil.rmtree(_real_folder(folder, root))


def patch_manifest(folder: Path, root: Path, fields: dict[str, object]) -> None:
    """Merge ``fields`` into agent.json, validate the result, then replace the file atomically."""
    path = _real_folder(folder, root) / "agent.json"
    try:
        raw = json.loads(_read_inside(path, root) or b"null")
    except (AgentLoadError, OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ManifestUnreadable(f"agent.json cannot be read: {exc}") from exc
    if not isinstance(raw, dict):
        raise ManifestUnreadable("agent.json is missing or not a JSON object")
    merged = {**raw, **fields}
    try:
        AgentManifest.model_validate(merged)
    except pydantic.ValidationError as exc:
        detail = describe_validation_error(exc)
        raise MetadataInvalid(detail) from exc
    write_atomic(path, (json.dumps(merged, indent=2, ensure_ascii=False) + "\n").encode())
