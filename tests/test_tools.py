"""Tools from function signatures, tools.py loading, and the confined built-in file tools."""

from __future__ import annotations

import asyncio
import sys
import textwrap
from pathlib import Path
from typing import Annotated, Literal

import pytest
from pydantic import Field

from hive_server import errors
from hive_server.core.clock import FakeClock
from hive_server.services.tools.base import (
    AgentLoadError,
    Tool,
    ToolError,
    bind_tools,
    tool_from_function,
)
from hive_server.services.tools.builtins import READ_MAX_BYTES, WRITE_MAX_BYTES, builtin_tools
from hive_server.services.tools.plugins import tools_from_module

NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z


def search(query: str, limit: int = 5, mode: Literal["fast", "deep"] = "fast",
           tags: list[str] | None = None, exact: bool = False, weight: float = 1.0,
           options: dict | None = None) -> dict:
    """Search the archive for documents.

    Longer explanation that is not part of the description.

    Args:
        query: Words to look for.
        limit (int): How many results
            to return at most.
        mode: Search strategy.

    Returns:
        The hits.
    """
    return {"query": query, "limit": limit, "mode": mode, "tags": tags}


async def shout(text: str) -> str:
    """Upper-case the text."""
    await asyncio.sleep(0)
    return text.upper()


def save(name: str, workspace: Path) -> str:
    """Write a marker file into the workspace."""
    (workspace / name).write_text("saved")
    return f"saved {name}"


def fails(reason: str) -> str:
    """Always fails."""
    raise RuntimeError(reason)


def bounded(count: Annotated[int, Field(ge=1, le=3)]) -> int:
    """Annotated constraints are enforced."""
    return count


def schema_of(tool: Tool) -> dict:
    return tool.spec.input_schema


def test_schema_comes_from_the_signature() -> None:
    schema = schema_of(tool_from_function(search))
    assert schema["type"] == "object"
    assert schema["required"] == ["query"]
    assert schema["additionalProperties"] is False
    props = schema["properties"]
    assert props["query"] == {"type": "string", "description": "Words to look for."}
    assert props["limit"] == {"type": "integer", "default": 5,
                              "description": "How many results to return at most."}
    assert props["mode"]["enum"] == ["fast", "deep"]
    assert props["mode"]["default"] == "fast"
    assert {"type": "array", "items": {"type": "string"}} in props["tags"]["anyOf"]
    assert {"type": "null"} in props["tags"]["anyOf"]
    assert props["exact"] == {"type": "boolean", "default": False}
    assert props["weight"] == {"type": "number", "default": 1.0}
    assert props["options"]["default"] is None
    assert "title" not in schema and "title" not in props["query"]


def test_description_is_the_first_paragraph_of_the_docstring() -> None:
    tool = tool_from_function(search)
    assert tool.spec.name == "search"
    assert tool.spec.description == "Search the archive for documents."


def test_function_without_docstring_gets_a_generic_description() -> None:
    def ping(host: str) -> str:
        return host

    assert tool_from_function(ping).spec.description == "Run ping."


async def test_sync_tool_runs_and_non_string_results_become_json() -> None:
    result = await tool_from_function(search).run({"query": "bees", "tags": ["a"]})
    assert result == '{"query":"bees","limit":5,"mode":"fast","tags":["a"]}'


async def test_async_tool_is_awaited() -> None:
    assert await tool_from_function(shout).run({"text": "buzz"}) == "BUZZ"


@pytest.mark.parametrize(("args", "expected"), [
    ({}, "query: Field required"),
    ({"query": "x", "limit": "many"}, "limit: Input should be a valid integer"),
    ({"query": "x", "mode": "slow"}, "mode: Input should be 'fast' or 'deep'"),
    ({"query": "x", "surprise": 1}, "surprise: Extra inputs are not permitted"),
])
async def test_invalid_arguments_raise_a_clear_tool_error(args: dict, expected: str) -> None:
    with pytest.raises(ToolError, match="invalid arguments for tool 'search'") as caught:
        await tool_from_function(search).run(args)
    assert expected in str(caught.value)


async def test_annotated_constraints_are_checked() -> None:
    tool = tool_from_function(bounded)
    assert tool.spec.input_schema["properties"]["count"]["maximum"] == 3
    with pytest.raises(ToolError, match="less than or equal to 3"):
        await tool.run({"count": 4})


async def test_arguments_must_be_an_object() -> None:
    with pytest.raises(ToolError, match="must be a JSON object"):
        await tool_from_function(shout).run(["buzz"])  # type: ignore[arg-type]


async def test_exception_in_a_tool_becomes_a_tool_error() -> None:
    with pytest.raises(ToolError, match="RuntimeError: disk on fire"):
        await tool_from_function(fails).run({"reason": "disk on fire"})


async def test_workspace_is_injected_and_hidden_from_the_schema(tmp_path: Path) -> None:
    tool = tool_from_function(save)
    assert tool.needs_workspace
    assert list(schema_of(tool)["properties"]) == ["name"]
    with pytest.raises(ToolError, match="needs a session workspace"):
        await tool.run({"name": "a.txt"})
    bound = bind_tools({"save": tool}, tmp_path)["save"]
    assert await bound.run({"name": "a.txt"}) == "saved a.txt"
    assert (tmp_path / "a.txt").read_text() == "saved"
    with pytest.raises(ToolError, match="workspace: Extra inputs"):
        await bound.run({"name": "b.txt", "workspace": "/etc"})


def test_unsupported_signatures_are_refused() -> None:
    def untyped(a, b: int) -> int:  # type: ignore[no-untyped-def]
        return b

    def star(*names: str) -> str:
        return ""

    with pytest.raises(TypeError, match="'a' has no type hint"):
        tool_from_function(untyped)
    with pytest.raises(TypeError, match="not supported"):
        tool_from_function(star)


# ------------------------------------------------------------------ tools.py modules


def write_module(folder: Path, source: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "tools.py"
    path.write_text(textwrap.dedent(source))
    return path


async def test_module_public_hinted_functions_become_tools(tmp_path: Path) -> None:
    path = write_module(tmp_path / "agent", """
        from __future__ import annotations
        import dataclasses
        from os.path import join
        from pathlib import Path

        @dataclasses.dataclass
        class Point:
            x: int

        def double(n: int) -> int:
            '''Double a number.'''
            return Point(n * 2).x

        def note(text: str, workspace: Path) -> str:
            '''Keep a note.'''
            return text

        def _private(n: int) -> int:
            return n

        def untyped_helper(n):
            return n
    """)
    tools = tools_from_module(path, "hive_test_tools_a")
    assert sorted(tools) == ["double", "note"]  # not join, Point, _private, untyped_helper
    assert await tools["double"].run({"n": 4}) == "8"
    assert tools["note"].needs_workspace
    assert "hive_test_tools_a" not in sys.modules
    assert not (tmp_path / "agent" / "__pycache__").exists()


async def test_module_reload_under_a_new_name_runs_the_new_code(tmp_path: Path) -> None:
    path = write_module(tmp_path / "agent", "def v() -> int:\n    return 1\n")
    first = tools_from_module(path, "hive_test_tools_v1")
    path.write_text("def v() -> int:\n    return 2\n")
    second = tools_from_module(path, "hive_test_tools_v2")
    assert await first["v"].run({}) == "1"
    assert await second["v"].run({}) == "2"


@pytest.mark.parametrize(("source", "message"), [
    ("def broken(:\n", "syntax error at line 1"),
    ("import module_that_does_not_exist_anywhere\n", "ModuleNotFoundError"),
    ("raise RuntimeError('boom at import')\n", "RuntimeError: boom at import"),
    ("def f(x: 'Undefined') -> int:\n    return 1\n", "function 'f': name 'Undefined'"),
    ("class Opaque:\n    pass\ndef g(x: Opaque) -> int:\n    return 1\n",
     "function 'g': Unable to generate pydantic-core schema"),
])
def test_broken_tools_py_raises_agent_load_error(tmp_path: Path, source: str,
                                                 message: str) -> None:
    path = write_module(tmp_path / "agent", source)
    with pytest.raises(AgentLoadError, match=message) as caught:
        tools_from_module(path, "hive_test_tools_broken")
    assert isinstance(caught.value, errors.InvalidInput)
    assert caught.value.code == "agent_load_error"
    assert "hive_test_tools_broken" not in sys.modules


# ------------------------------------------------------------------ built-in tools


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "notes.md").write_text("hello")
    (ws / "sub").mkdir()
    (tmp_path / "secret.txt").write_text("top secret")
    return ws


@pytest.fixture
def builtins(workspace: Path) -> dict[str, Tool]:
    return builtin_tools(workspace, FakeClock(NOW))


async def test_get_time_uses_the_clock_and_time_zones(builtins: dict[str, Tool]) -> None:
    assert await builtins["get_time"].run({}) == "2027-01-15T08:00:00+00:00"
    berlin = await builtins["get_time"].run({"timezone": "Europe/Berlin"})
    assert berlin == "2027-01-15T09:00:00+01:00"
    with pytest.raises(ToolError, match="unknown time zone 'Mars/Olympus'"):
        await builtins["get_time"].run({"timezone": "Mars/Olympus"})


async def test_read_write_and_list_inside_the_workspace(builtins: dict[str, Tool],
                                                        workspace: Path) -> None:
    assert await builtins["read_file"].run({"path": "notes.md"}) == "hello"
    written = await builtins["write_file"].run({"path": "out/report.md", "content": "# R\n"})
    assert written == "wrote 4 bytes to out/report.md"
    await builtins["write_file"].run({"path": "out/report.md", "content": "more",
                                      "append": True})
    assert (workspace / "out" / "report.md").read_text() == "# R\nmore"
    listing = await builtins["list_files"].run({})
    assert listing.splitlines() == ["notes.md (5 bytes)", "out/", "sub/"]
    assert await builtins["list_files"].run({"path": "sub"}) == "(empty folder)"


@pytest.mark.parametrize("tool_args", [
    ("read_file", {"path": "../secret.txt"}),
    ("read_file", {"path": "sub/../../secret.txt"}),
    ("write_file", {"path": "../escape.txt", "content": "x"}),
    ("list_files", {"path": ".."}),
])
async def test_dot_dot_is_refused(builtins: dict[str, Tool], tool_args: tuple) -> None:
    name, args = tool_args
    with pytest.raises(ToolError, match=r"'\.\.' is not allowed"):
        await builtins[name].run(args)


async def test_absolute_paths_are_refused(builtins: dict[str, Tool], tmp_path: Path) -> None:
    with pytest.raises(ToolError, match="absolute paths are not allowed"):
        await builtins["read_file"].run({"path": str(tmp_path / "secret.txt")})
    with pytest.raises(ToolError, match="absolute paths are not allowed"):
        await builtins["write_file"].run({"path": "/tmp/x", "content": "x"})


async def test_symlinks_leading_out_are_refused(builtins: dict[str, Tool], workspace: Path,
                                                tmp_path: Path) -> None:
    (workspace / "leak").symlink_to(tmp_path / "secret.txt")
    (workspace / "outdir").symlink_to(tmp_path)
    with pytest.raises(ToolError, match="leads outside the workspace"):
        await builtins["read_file"].run({"path": "leak"})
    with pytest.raises(ToolError, match="leads outside the workspace"):
        await builtins["write_file"].run({"path": "leak", "content": "overwritten"})
    with pytest.raises(ToolError, match="leads outside the workspace"):
        await builtins["write_file"].run({"path": "outdir/new.txt", "content": "x"})
    assert (tmp_path / "secret.txt").read_text() == "top secret"
    assert not (tmp_path / "new.txt").exists()


async def test_symlink_inside_the_workspace_is_fine(builtins: dict[str, Tool],
                                                    workspace: Path) -> None:
    (workspace / "alias.md").symlink_to(workspace / "notes.md")
    assert await builtins["read_file"].run({"path": "alias.md"}) == "hello"
    assert "alias.md (symlink)" in await builtins["list_files"].run({})


async def test_read_is_truncated_and_write_is_capped(builtins: dict[str, Tool],
                                                     workspace: Path) -> None:
    (workspace / "big.txt").write_bytes(b"a" * (READ_MAX_BYTES + 10))
    text = await builtins["read_file"].run({"path": "big.txt"})
    assert text.startswith("a" * 100)
    assert text.endswith(f"[truncated: showing the first {READ_MAX_BYTES} of "
                         f"{READ_MAX_BYTES + 10} bytes]")
    with pytest.raises(ToolError, match="the limit is"):
        await builtins["write_file"].run({"path": "huge.txt",
                                          "content": "b" * (WRITE_MAX_BYTES + 1)})
    assert not (workspace / "huge.txt").exists()


async def test_file_tool_errors_are_clear(builtins: dict[str, Tool]) -> None:
    with pytest.raises(ToolError, match=r"no such file in the workspace: 'missing\.md'"):
        await builtins["read_file"].run({"path": "missing.md"})
    with pytest.raises(ToolError, match="is a directory"):
        await builtins["read_file"].run({"path": "sub"})
    with pytest.raises(ToolError, match="is a directory"):
        await builtins["write_file"].run({"path": "sub", "content": "x"})
    with pytest.raises(ToolError, match="path must not be empty"):
        await builtins["read_file"].run({"path": " "})


async def test_list_files_on_a_missing_workspace(tmp_path: Path) -> None:
    tools = builtin_tools(tmp_path / "not-yet", FakeClock(NOW))
    assert await tools["list_files"].run({}) == "(the workspace is empty)"
    await tools["write_file"].run({"path": "first.txt", "content": "1"})
    assert (tmp_path / "not-yet" / "first.txt").read_text() == "1"
