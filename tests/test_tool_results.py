"""What a tool hands back to the model when agent code returns something odd, and where sync
agent tools run."""

from __future__ import annotations

import asyncio
import functools
import os
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from hive_server.core.clock import FakeClock
from hive_server.services.tools.base import RESULT_MAX_CHARS, ToolError, tool_from_function
from hive_server.services.tools.builtins import builtin_tools


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text for you")


def invalid_utf8() -> object:
    """Bytes that are not text."""
    return b"\xff\xfe"


def circular() -> object:
    """A list that contains itself."""
    loop: list[object] = []
    loop.append(loop)
    return loop


def unprintable() -> object:
    """An object without a text form."""
    return Unprintable()


@pytest.mark.parametrize("fn", [invalid_utf8, circular, unprintable])
async def test_a_result_that_cannot_be_rendered_is_a_tool_error(fn) -> None:
    with pytest.raises(ToolError, match=f"tool {fn.__name__!r} returned a value that cannot "
                                        "be shown"):
        await tool_from_function(fn).run({})


async def test_an_oversized_result_is_cut_with_a_note() -> None:
    def huge() -> str:
        """Far too much text."""
        return "x" * (RESULT_MAX_CHARS * 3)

    text = await tool_from_function(huge).run({})
    assert text.startswith("x" * RESULT_MAX_CHARS)
    assert text.endswith(f"[truncated: showing {RESULT_MAX_CHARS} of "
                         f"{RESULT_MAX_CHARS * 3} characters]")


def sync_wrapper(fn: Callable[..., Awaitable[str]]) -> Callable[..., Any]:
    """A decorator as people write it: a plain def around an async function."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    return wrapper


@sync_wrapper
async def decorated(text: str) -> str:
    """An async tool behind a sync decorator."""
    await asyncio.sleep(0)
    return text[::-1]


async def test_a_decorated_async_tool_is_awaited() -> None:
    tool = tool_from_function(decorated)
    assert list(tool.spec.input_schema["properties"]) == ["text"]
    assert await tool.run({"text": "abc"}) == "cba"


async def test_sync_tools_run_on_the_executor_they_are_given() -> None:
    def where() -> str:
        """The name of the thread running this."""
        return threading.current_thread().name

    with ThreadPoolExecutor(1, thread_name_prefix="agent-tool") as executor:
        text = await tool_from_function(where, executor=executor).run({})
    assert text.startswith("agent-tool")


async def test_write_file_refuses_a_fifo_instead_of_blocking_a_thread(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    write = builtin_tools(tmp_path, FakeClock(0.0))["write_file"]
    try:
        async with asyncio.timeout(2):
            with pytest.raises(ToolError, match="'pipe' is not a regular file"):
                await write.run({"path": "pipe", "content": "x"})
    finally:  # without the check, a writer thread waits for a reader: give it one
        reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        os.close(reader)
