"""The queen profiles found in the queens dir (``<queen_id>.yaml`` / ``.yml``).

``reload()`` reads the folder in a thread. A file that is not valid YAML, not a mapping, or not
a valid profile is listed by ``invalid()`` with its error and never breaks the others. With no
valid profile installed, the built-in ``DEFAULT_QUEEN`` stands in.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from pathlib import Path

import pydantic
import yaml

from hive_server.errors.catalog import QueenInvalid, QueenNotFound
from hive_server.models.queen import DEFAULT_QUEEN, QueenProfile, is_queen_id
from hive_server.models.validation import describe_validation_error

log = logging.getLogger(__name__)

QUEEN_SUFFIXES = (".yaml", ".yml")
MAX_PROFILE_BYTES = 256 * 1024


@dataclasses.dataclass(frozen=True, slots=True)
class InvalidQueen:
    """A profile file that could not be used, and why."""

    queen_id: str
    path: Path
    error: str


class QueenProfileError(Exception):
    """Why one profile file cannot be used."""


@dataclasses.dataclass(frozen=True, slots=True)
class _Loaded:
    profiles: dict[str, QueenProfile]
    invalid: dict[str, InvalidQueen]


class QueenRegistry:
    """Queen profiles by id (the file stem); lookups also accept the profile's name."""

    def __init__(self, queens_dir: Path) -> None:
        self.queens_dir = queens_dir
        self._loaded = _Loaded({}, {})

    async def reload(self) -> None:
        self._loaded = await asyncio.to_thread(_load_dir, self.queens_dir)

    def list(self) -> list[QueenProfile]:
        """Valid profiles sorted by id; the built-in default when there are none."""
        profiles = self._loaded.profiles
        return [profiles[key] for key in sorted(profiles)] or [DEFAULT_QUEEN]

    def invalid(self) -> list[InvalidQueen]:
        """Profile files that failed to load, with their errors, sorted by id."""
        return [self._loaded.invalid[key] for key in sorted(self._loaded.invalid)]

    def default(self) -> QueenProfile:
        """The profile with id ``default``, else the first installed one, else the built-in."""
        profiles = self._loaded.profiles
        return profiles.get("default") or self.list()[0]

    def get(self, queen_id: str) -> QueenProfile:
        """The profile by id, or by name (case-insensitive). ``default`` always resolves."""
        profile = self._loaded.profiles.get(queen_id)
        if profile is not None:
            return profile
        wanted = queen_id.strip().casefold()
        for candidate in self.list():
            if candidate.name.casefold() == wanted or candidate.id == queen_id:
                return candidate
        if queen_id == DEFAULT_QUEEN.id:
            return self.default()
        bad = self._loaded.invalid.get(queen_id)
        if bad is not None:
            raise QueenInvalid(queen_id, bad.error)
        raise QueenNotFound(queen_id)


def _load_dir(queens_dir: Path) -> _Loaded:
    loaded = _Loaded({}, {})
    for path in _profile_files(queens_dir):
        queen_id = path.stem
        try:
            if queen_id in loaded.profiles or queen_id in loaded.invalid:
                raise QueenProfileError(f"another profile file already has the id {queen_id!r}")
            loaded.profiles[queen_id] = load_profile(path, queens_dir.resolve())
        except QueenProfileError as exc:
            loaded.invalid.setdefault(queen_id, InvalidQueen(queen_id, path, str(exc)))
            log.warning("queen profile %s is invalid: %s", path, exc)
    return loaded


def _profile_files(queens_dir: Path) -> list[Path]:
    try:
        children = sorted(queens_dir.iterdir())
    except FileNotFoundError:
        return []
    except OSError:
        log.exception("cannot list the queens dir %s", queens_dir)
        return []
    return [child for child in children
            if child.suffix in QUEEN_SUFFIXES and not child.name.startswith(".")
            and child.is_file()]


def load_profile(path: Path, root: Path) -> QueenProfile:
    """Read one profile file; ``QueenProfileError`` says what is wrong with it."""
    if not is_queen_id(path.stem):
        raise QueenProfileError(
            f"invalid queen id {path.stem!r}: use 1-64 lowercase letters, digits, '_' or '-'")
    if not path.resolve().is_relative_to(root):
        raise QueenProfileError(f"{path.name} points outside the queens dir")
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_PROFILE_BYTES + 1)
    except OSError as exc:
        raise QueenProfileError(f"cannot read {path.name}: {exc}") from exc
    if len(data) > MAX_PROFILE_BYTES:
        raise QueenProfileError(f"{path.name} is larger than {MAX_PROFILE_BYTES} bytes")
    try:
        raw = yaml.safe_load(data)
    except yaml.YAMLError as exc:
        raise QueenProfileError(f"invalid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise QueenProfileError("the profile must be a YAML mapping")
    try:
        profile = QueenProfile.model_validate({**raw, "id": path.stem})
    except pydantic.ValidationError as exc:
        raise QueenProfileError(f"invalid profile: {describe_validation_error(exc)}") from exc
    try:  # unknown keys are kept and shown back, so they need a JSON form (not !!binary)
        profile.model_dump_json()
    except ValueError as exc:
        raise QueenProfileError(f"a value has no JSON form: {exc}") from exc
    return profile
