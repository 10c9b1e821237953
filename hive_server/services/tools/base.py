"""The tool base: what a tool the model can call is, and how a type-hinted function becomes
one. Agent tools are loaded from an agent folder's ``tools.py`` by ``plugins.py``; the built-in
workspace tools are in ``builtins.py``.

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
import inspect
import logging
import typing
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

import pydantic
import pydantic_core

from hive_server import errors
from hive_server.errors.backend import UNRECORDABLE
from hive_server.llm.base import ToolSpec
from hive_server.models.validation import describe_validation_error
from hive_server.services.tools.schema import parse_docstring, strip_titles

log = logging.getLogger(__name__)

RunFn = Callable[[dict[str, Any]], Awaitable[str]]

WORKSPACE_PARAM = "workspace"
RESULT_MAX_CHARS = 257 * 1024
"""Longer tool results are cut. ``read_file``'s 256 KiB and its truncation note fit."""


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
class FunctionCall:
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

    def bind(self, workspace: Path) -> FunctionCall:
        # built directly: every session binds each built-in tool at its start, and
        # ``dataclasses.replace`` was a tenth of the event loop's CPU per resumed session
        return FunctionCall(name=self.name, fn=self.fn, args_model=self.args_model,
                            wants_workspace=self.wants_workspace, workspace=workspace,
                            executor=self.executor)

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
        except UNRECORDABLE:  # the session's log failed meanwhile: its turn ends, not the tool
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
    spec, call = spec_and_call(fn, name=name, executor=executor)
    return Tool(spec, call, call.bind if call.wants_workspace else None)


def spec_and_call(fn: Callable[..., Any], *, name: str | None = None,
                  executor: Executor | None = None) -> tuple[ToolSpec, FunctionCall]:
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
    call = FunctionCall(tool_name, fn, args_model, WORKSPACE_PARAM in signature.parameters,
                         executor=executor)
    return spec, call
