"""Tools the model can call: agent tools from ``tools.py`` and the built-in workspace tools.

Trust model: an agent folder's ``tools.py`` is trusted code. It is imported and runs inside the
server process with the server's permissions, like a plugin — install only agents you trust.
Its tools receive arguments the model chose, validated against the function's signature. The
confinement below (no absolute paths, no ``..``, no symlinks leading out, size caps) protects the
*built-in* file tools, which the model drives with arbitrary paths; it is not a sandbox for
agent code.

A ``Tool`` is a ``ToolSpec`` (what the model sees) plus ``run(args) -> str``. ``run`` raises
``ToolError`` for an error result. A function with a ``workspace: Path`` parameter gets the
session's workspace injected: ``tool.bind(workspace)`` (or ``bind_tools``) returns the tool that
passes it; the parameter never appears in the schema.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import functools
import importlib.util
import inspect
import logging
import sys
import time
import typing
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import Executor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pydantic
import pydantic_core

from hive_server import errors
from hive_server.llm.base import ToolSpec
from hive_server.models.validation import describe_validation_error
from hive_server.services.tools.schema import parse_docstring, strip_titles

log = logging.getLogger(__name__)

RunFn = Callable[[dict[str, Any]], Awaitable[str]]

WORKSPACE_PARAM = "workspace"
READ_MAX_BYTES = 256 * 1024
WRITE_MAX_BYTES = 1024 * 1024
LIST_MAX_ENTRIES = 500
RESULT_MAX_CHARS = READ_MAX_BYTES + 1024  # longer tool results are cut (read_file's fit)
BUILTIN_TOOL_NAMES = frozenset({"get_time", "read_file", "write_file", "list_files"})


class ToolError(Exception):
    """A tool call failed; the message is the error result the model sees."""


class AgentLoadError(errors.InvalidInput):
    """An agent's ``tools.py`` cannot be loaded (syntax error, failing import, bad signature)."""

    code = "agent_load_error"


@dataclasses.dataclass(frozen=True, slots=True)
class Tool:
    """A callable tool. ``binder`` is set when the tool wants the session workspace."""

    spec: ToolSpec
    run: RunFn
    binder: Callable[[Path], RunFn] | None = dataclasses.field(
        default=None, repr=False, compare=False)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def needs_workspace(self) -> bool:
        return self.binder is not None

    def bind(self, workspace: Path) -> Tool:
        """The tool with ``workspace`` injected into every call (itself if it needs none)."""
        if self.binder is None:
            return self
        return Tool(self.spec, self.binder(workspace))


def bind_tools(tools: Mapping[str, Tool], workspace: Path) -> dict[str, Tool]:
    """Bind every tool of a set to one session workspace."""
    return {name: tool.bind(workspace) for name, tool in tools.items()}


@dataclasses.dataclass(frozen=True, slots=True)
class _FunctionCall:
    """Validates arguments, calls the function, renders the result.

    A sync function runs on ``executor`` (the default executor when ``None``): the catalog
    gives agent tools their own threads, so a tool that blocks never starves the server's
    file I/O. A sync function that returns an awaitable (an async function behind a plain
    decorator) has it awaited.
    """

    name: str
    fn: Callable[..., Any]
    args_model: type[pydantic.BaseModel]
    wants_workspace: bool
    workspace: Path | None = None
    executor: Executor | None = None

    def bind(self, workspace: Path) -> _FunctionCall:
        return dataclasses.replace(self, workspace=workspace)

    async def __call__(self, args: dict[str, Any]) -> str:
        kwargs = self._validate(args)
        if self.wants_workspace:
            if self.workspace is None:
                raise ToolError(f"tool {self.name!r} needs a session workspace; bind it first")
            kwargs[WORKSPACE_PARAM] = self.workspace
        try:
            result = await self._call(kwargs)
        except ToolError:
            raise
        except (Exception, SystemExit) as exc:  # agent code: any failure (sys.exit too, which
            # would otherwise stop the event loop) is the tool's error result
            log.warning("tool %s failed", self.name, exc_info=True)
            raise ToolError(f"{type(exc).__name__}: {exc}") from exc
        return self._render(result)

    async def _call(self, kwargs: dict[str, Any]) -> object:
        if inspect.iscoroutinefunction(self.fn):
            return await self.fn(**kwargs)
        call = functools.partial(contextvars.copy_context().run, self.fn, **kwargs)
        result = await asyncio.get_running_loop().run_in_executor(self.executor, call)
        if inspect.isawaitable(result):
            result = await result
        return result

    def _render(self, result: object) -> str:
        try:
            return result_text(result)
        except ValueError as exc:  # pydantic's serialization error is one
            log.warning("tool %s returned an unrenderable %s", self.name, type(result).__name__)
            raise ToolError(f"tool {self.name!r} returned a value that cannot be shown as text "
                            f"or JSON ({type(result).__name__}): {exc}") from exc

    def _validate(self, args: object) -> dict[str, Any]:
        if not isinstance(args, dict):
            raise ToolError(f"arguments for tool {self.name!r} must be a JSON object")
        try:
            parsed = self.args_model.model_validate(args)
        except pydantic.ValidationError as exc:
            raise ToolError(f"invalid arguments for tool {self.name!r}: "
                            f"{describe_validation_error(exc)}") from exc
        return {field.alias or key: getattr(parsed, key)
                for key, field in type(parsed).model_fields.items()}


def result_text(value: object) -> str:
    """A tool's return value as the text the model sees: str as is, anything else as JSON.

    Text longer than ``RESULT_MAX_CHARS`` is cut, with a note saying so.
    """
    text = value if isinstance(value, str) else pydantic_core.to_json(value, fallback=str).decode()
    if len(text) <= RESULT_MAX_CHARS:
        return text
    return (f"{text[:RESULT_MAX_CHARS]}\n\n"
            f"[truncated: showing {RESULT_MAX_CHARS} of {len(text)} characters]")


def tool_from_function(fn: Callable[..., Any], *, name: str | None = None,
                       executor: Executor | None = None) -> Tool:
    """Build a tool from a type-hinted function (a sync one runs on ``executor``).

    Raises ``TypeError``/``NameError`` (or pydantic's ``PydanticUserError`` for a type it
    cannot validate) when the function cannot be a tool.
    """
    spec, call = _spec_and_call(fn, name=name, executor=executor)
    return Tool(spec, call, call.bind if call.wants_workspace else None)


def _spec_and_call(fn: Callable[..., Any], *, name: str | None = None,
                   executor: Executor | None = None) -> tuple[ToolSpec, _FunctionCall]:
    """The function's tool spec (its JSON schema) and the call that validates and runs it."""
    tool_name = name or fn.__name__
    signature = inspect.signature(fn)
    hints = typing.get_type_hints(fn, include_extras=True)
    summary, arg_docs = parse_docstring(inspect.getdoc(fn) or "")
    fields: dict[str, Any] = {}
    for index, param in enumerate(signature.parameters.values()):
        if param.name == WORKSPACE_PARAM:
            continue
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD, param.POSITIONAL_ONLY):
            raise TypeError(f"parameter {param.name!r}: *args, **kwargs and positional-only "
                            "parameters are not supported")
        if param.name not in hints:
            raise TypeError(f"parameter {param.name!r} has no type hint")
        default = ... if param.default is param.empty else param.default
        fields[f"p{index}"] = (hints[param.name], pydantic.Field(
            default, alias=param.name, description=arg_docs.get(param.name)))
    args_model = pydantic.create_model(
        f"{tool_name}_arguments", __config__=pydantic.ConfigDict(extra="forbid"), **fields)
    schema = strip_titles(args_model.model_json_schema())
    spec = ToolSpec(tool_name, summary or f"Run {tool_name}.", schema)
    call = _FunctionCall(tool_name, fn, args_model, WORKSPACE_PARAM in signature.parameters,
                         executor=executor)
    return spec, call


def tools_from_module(path: Path, module_name: str, *, source: bytes | None = None,
                      executor: Executor | None = None) -> dict[str, Tool]:
    """Load ``tools.py`` at ``path``; every public, hinted function defined in it is a tool.

    ``module_name`` must be unique per agent and version (so a reload runs the new code). The
    module sits in ``sys.modules`` only while its body runs (so dataclasses and the like can
    find it) and is removed afterwards. No bytecode cache is written into the agent folder.
    ``source`` is the file's content when the caller has already read it (the catalog does, so
    the code that runs is the code its version hash describes). Sync tools run on ``executor``.
    """
    module = _load_module(path, module_name, source)
    tools: dict[str, Tool] = {}
    for attr, value in vars(module).items():
        if attr.startswith("_") or not inspect.isfunction(value):
            continue
        if value.__module__ != module_name or not value.__annotations__:
            continue  # imported from elsewhere, or an unhinted helper
        try:
            tools[attr] = tool_from_function(value, executor=executor)
        except (TypeError, NameError, ValueError, pydantic.PydanticUserError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise AgentLoadError(f"tools.py: function {attr!r}: {reason}") from exc
    return tools


def _load_module(path: Path, module_name: str, source: bytes | None) -> Any:
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None:
        raise AgentLoadError(f"cannot load {path.name} as a Python module")
    module = importlib.util.module_from_spec(spec)
    try:
        text = path.read_bytes() if source is None else source
        code = compile(text, str(path), "exec", dont_inherit=True)
    except SyntaxError as exc:
        raise AgentLoadError(f"tools.py has a syntax error at line {exc.lineno}: {exc.msg}",
                             extra={"line": exc.lineno}) from exc
    except (OSError, ValueError) as exc:
        raise AgentLoadError(f"tools.py cannot be read: {exc}") from exc
    sys.modules[module_name] = module
    try:
        exec(code, module.__dict__)
    except (Exception, SystemExit) as exc:  # foreign module code: any failure is a load error
        raise AgentLoadError(f"tools.py failed to import: {type(exc).__name__}: {exc}") from exc
    finally:
        sys.modules.pop(module_name, None)
    return module


# ---------------------------------------------------------------- built-in workspace tools


def builtin_tools(workspace: Path, clock_now: Callable[[], float]) -> dict[str, Tool]:
    """``get_time``, ``read_file``, ``write_file``, ``list_files`` for one session workspace
    (``get_time`` reads ``clock_now``). Their schemas are the ones built once per process."""

    def now_in(timezone: str | None = None) -> str:
        return iso_time(clock_now(), timezone)

    tools = {}
    for spec, call in _builtin_prototypes():
        own = dataclasses.replace(call, fn=now_in) if call.fn is get_time else call.bind(workspace)
        tools[spec.name] = Tool(spec, own)
    return tools


@functools.cache
def _builtin_prototypes() -> tuple[tuple[ToolSpec, _FunctionCall], ...]:
    """Each built-in tool's schema and argument model, built once per process: a pydantic
    model and its JSON schema per session were a fifth of a boot with many sessions."""
    return tuple(_spec_and_call(fn) for fn in (get_time, read_file, write_file, list_files))


def get_time(timezone: str | None = None) -> str:
    """Return the current date and time in ISO 8601.

    Args:
        timezone: IANA time zone name such as "Europe/Berlin"; UTC when omitted.
    """
    return iso_time(time.time(), timezone)  # a session's own copy reads the server's clock


def iso_time(now: float, timezone: str | None) -> str:
    if not timezone:
        return datetime.fromtimestamp(now, UTC).isoformat()
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ToolError(f"unknown time zone {timezone!r}; use an IANA name such as "
                        "'Europe/Berlin'") from exc
    return datetime.fromtimestamp(now, zone).isoformat()


def confine(workspace: Path, path: str) -> Path:
    """Resolve ``path`` inside ``workspace``; refuse absolute paths, ``..`` and symlink escapes."""
    if not path.strip():
        raise ToolError("path must not be empty")
    candidate = Path(path)
    if candidate.is_absolute() or path.startswith("~"):
        raise ToolError(f"absolute paths are not allowed: {path!r}; "
                        "use a path relative to the workspace")
    if ".." in candidate.parts:
        raise ToolError(f"'..' is not allowed in paths: {path!r}")
    root = workspace.resolve()
    target = (root / candidate).resolve()
    if not target.is_relative_to(root):
        raise ToolError(f"{path!r} leads outside the workspace (through a symlink)")
    return target


def read_file(path: str, *, workspace: Path) -> str:
    """Read a text file from the session workspace (at most 256 KiB are returned).

    Args:
        path: File path relative to the workspace, e.g. "notes/today.md".
    """
    target = confine(workspace, path)
    if target.is_dir():
        raise ToolError(f"{path!r} is a directory; use list_files")
    if not target.is_file():
        raise ToolError(f"no such file in the workspace: {path!r}")
    with target.open("rb") as handle:
        data = handle.read(READ_MAX_BYTES + 1)
    text = data[:READ_MAX_BYTES].decode("utf-8", errors="replace")
    if len(data) > READ_MAX_BYTES:
        size = target.stat().st_size
        text += f"\n\n[truncated: showing the first {READ_MAX_BYTES} of {size} bytes]"
    return text


def write_file(path: str, content: str, append: bool = False, *, workspace: Path) -> str:
    """Write (or append) text to a file in the session workspace; folders are created.

    Args:
        path: File path relative to the workspace, e.g. "reports/summary.md".
        content: The text to write (at most 1 MiB per call).
        append: Add to the end of the file instead of replacing it.
    """
    data = content.encode("utf-8")
    if len(data) > WRITE_MAX_BYTES:
        raise ToolError(f"content is {len(data)} bytes; the limit is {WRITE_MAX_BYTES} per call")
    target = confine(workspace, path)
    if target.is_dir() or target == workspace.resolve():
        raise ToolError(f"{path!r} is a directory")
    if target.exists() and not target.is_file():  # a FIFO would block this thread
        raise ToolError(f"{path!r} is not a regular file")
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("ab" if append else "wb") as handle:
        handle.write(data)
    verb = "appended" if append else "wrote"
    return f"{verb} {len(data)} bytes to {path}"


def list_files(path: str = ".", *, workspace: Path) -> str:
    """List the files and folders of a workspace folder (folders end with "/").

    Args:
        path: Folder relative to the workspace; the workspace itself when omitted.
    """
    target = confine(workspace, path)
    if not target.exists():
        if target == workspace.resolve():
            return "(the workspace is empty)"
        raise ToolError(f"no such folder in the workspace: {path!r}")
    if not target.is_dir():
        raise ToolError(f"{path!r} is a file; use read_file")
    entries = sorted(target.iterdir(), key=lambda p: p.name)
    lines = [_describe(entry) for entry in entries[:LIST_MAX_ENTRIES]]
    if len(entries) > LIST_MAX_ENTRIES:
        lines.append(f"[{len(entries) - LIST_MAX_ENTRIES} more entries not shown]")
    return "\n".join(lines) if lines else "(empty folder)"


def _describe(entry: Path) -> str:
    if entry.is_symlink():
        return f"{entry.name} (symlink)"
    if entry.is_dir():
        return f"{entry.name}/"
    return f"{entry.name} ({entry.stat().st_size} bytes)"
