"""Agent tools from an agent folder's ``tools.py``: every public, type-hinted function in it.

Trust model: an agent folder's ``tools.py`` is trusted code. It is imported and runs inside the
server process with the server's permissions, like a plugin — install only agents you trust.
Its tools receive arguments the model chose, validated against the function's signature.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

import pydantic

from hive_server.services.tools.base import AgentLoadError, Tool, tool_from_function


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
