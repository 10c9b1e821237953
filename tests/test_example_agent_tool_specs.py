"""The example agents' tool schemas and descriptions, pinned: what the model is shown for
agents/*/tools.py must not change when the docstring or schema code underneath changes.
Regenerate tests/golden/example_agent_tools.json only for a deliberate change of a tools.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hive_server.services.tools.plugins import tools_from_module

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = json.loads((ROOT / "tests" / "golden" / "example_agent_tools.json").read_text())


def specs_of(agent: str) -> dict[str, dict]:
    tools = tools_from_module(ROOT / "agents" / agent / "tools.py", f"pinned_{agent}_tools")
    return {name: {"name": tool.spec.name, "description": tool.spec.description,
                   "input_schema": tool.spec.input_schema} for name, tool in tools.items()}


@pytest.mark.parametrize("agent", sorted(GOLDEN))
def test_example_agent_tool_specs_are_unchanged(agent: str) -> None:
    assert specs_of(agent) == GOLDEN[agent]


def test_every_example_agent_with_tools_is_pinned() -> None:
    with_tools = {p.parent.name for p in (ROOT / "agents").glob("*/tools.py")}
    assert with_tools == set(GOLDEN) and all(GOLDEN[agent] for agent in GOLDEN)
