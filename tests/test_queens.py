"""Queen profiles from YAML folders, and the examples shipped in the repo's queens/ and agents/."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from hive_server import errors
from hive_server.models.queen import DEFAULT_QUEEN, QueenProfile
from hive_server.models.triggers import parse_triggers_file
from hive_server.services.catalog.agents import AgentCatalog
from hive_server.services.catalog.queens import QueenRegistry
from hive_server.services.tools.base import bind_tools
from hive_server.services.tools.builtins import BUILTIN_TOOL_NAMES

REPO = Path(__file__).resolve().parent.parent

WARDEN = """
name: Warden
title: keeper of the gates
core_traits: [watchful, terse]
skills:
  - access reviews
model: claude-sonnet-4-5
system_prompt: Guard the hive.
examples:
  - user: who got in?
    queen: nobody new.
mood: stern
"""


def read_only_match(folder: Path, pattern: str) -> str:
    [path] = folder.glob(pattern)
    return path.read_text()


def write(folder: Path, name: str, text: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(textwrap.dedent(text))


@pytest.fixture
def queens_dir(tmp_path: Path) -> Path:
    root = tmp_path / "queens"
    write(root, "warden.yaml", WARDEN)
    write(root, "bard.yml", "name: Bard\ncore_traits: cheerful\n")
    write(root, "broken.yaml", "name: [unclosed\n")
    write(root, "listy.yaml", "- just\n- a list\n")
    write(root, "nameless.yaml", "title: no name here\n")
    write(root, "Bad Id.yaml", "name: Spaces\n")
    write(root, "README.md", "not a profile")
    write(root, ".hidden.yaml", "name: Hidden\n")
    return root


@pytest.fixture
async def registry(queens_dir: Path) -> QueenRegistry:
    reg = QueenRegistry(queens_dir)
    await reg.reload()
    return reg


async def test_profiles_load_with_unknown_keys_kept(registry: QueenRegistry) -> None:
    assert [q.id for q in registry.list()] == ["bard", "warden"]
    warden = registry.get("warden")
    assert warden.name == "Warden"
    assert warden.core_traits == ["watchful", "terse"]
    assert warden.model == "claude-sonnet-4-5"
    assert warden.examples == [{"user": "who got in?", "queen": "nobody new."}]
    assert warden.model_extra == {"mood": "stern"}
    assert registry.get("bard").core_traits == ["cheerful"]  # one string is a list of one


async def test_invalid_files_are_listed_with_their_errors(registry: QueenRegistry) -> None:
    problems = {bad.queen_id: bad.error for bad in registry.invalid()}
    assert sorted(problems) == ["Bad Id", "broken", "listy", "nameless"]
    assert problems["broken"].startswith("invalid YAML")
    assert problems["listy"] == "the profile must be a YAML mapping"
    assert problems["nameless"] == "invalid profile: name: Field required"
    assert "invalid queen id" in problems["Bad Id"]


async def test_lookup_by_id_and_by_name(registry: QueenRegistry) -> None:
    assert registry.get("warden").id == "warden"
    assert registry.get("WARDEN").id == "warden"
    assert registry.get("Bard").id == "bard"
    with pytest.raises(errors.NotFound) as missing:
        registry.get("nobody")
    assert missing.value.code == "queen_not_found"
    with pytest.raises(errors.InvalidInput) as invalid:
        registry.get("broken")
    assert invalid.value.code == "queen_invalid"


async def test_default_is_the_first_profile_or_the_builtin(registry: QueenRegistry,
                                                           tmp_path: Path) -> None:
    assert registry.default().id == "bard"
    assert registry.get("default").id == "bard"
    write(registry.queens_dir, "default.yaml", "name: Chosen\n")
    await registry.reload()
    assert registry.default().name == "Chosen"
    empty = QueenRegistry(tmp_path / "missing")
    await empty.reload()
    assert empty.list() == [DEFAULT_QUEEN]
    assert empty.default() is DEFAULT_QUEEN
    assert empty.get("default") is DEFAULT_QUEEN


async def test_reload_picks_up_changes(registry: QueenRegistry) -> None:
    write(registry.queens_dir, "warden.yaml", "name: Warden Two\n")
    (registry.queens_dir / "bard.yml").unlink()
    await registry.reload()
    assert [q.name for q in registry.list()] == ["Warden Two"]


async def test_a_profile_that_has_no_json_form_is_invalid_not_a_500(make_client,
                                                                   settings) -> None:
    write(settings.queens_dir, "blob.yaml", 'name: Blob\nextra: !!binary "gAAA"\n')
    write(settings.queens_dir, "dated.yaml", "name: Dated\ncreated: 2024-05-01\n")
    client = await make_client(settings)

    resp = await client.get("/api/queen/profiles")

    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert [(p["id"], p["created"]) for p in body["profiles"]] == [("dated", "2024-05-01")]
    [bad] = body["invalid"]
    assert bad["id"] == "blob" and "JSON" in bad["error"]


def test_system_prompt_text_builds_the_persona() -> None:
    queen = QueenProfile(id="w", name="Warden", title="keeper of the gates",
                         core_traits=["watchful", "terse"], skills=["access reviews"],
                         system_prompt="Guard the hive.\n")
    assert queen.system_prompt_text() == (
        "You are Warden, keeper of the gates.\n\n"
        "Core traits: watchful, terse.\n\n"
        "Skills: access reviews.\n\n"
        "Guard the hive.")
    with_colony = queen.system_prompt_text("Daily Notes (daily_notes): keeps notes")
    assert with_colony.endswith("\n\nLoaded colony: Daily Notes (daily_notes): keeps notes")
    assert QueenProfile(id="x", name="Bare").system_prompt_text() == "You are Bare."


# ------------------------------------------------------------------ shipped examples


async def test_shipped_queens_validate() -> None:
    registry = QueenRegistry(REPO / "queens")
    await registry.reload()
    assert registry.invalid() == []
    assert {q.id for q in registry.list()} >= {"hive_keeper", "scribe"}
    assert registry.get("Hive Keeper").id == "hive_keeper"
    for queen in registry.list():
        assert queen.system_prompt_text().startswith(f"You are {queen.name}")


async def test_shipped_agents_validate() -> None:
    catalog = AgentCatalog(REPO / "agents")
    await catalog.reload()
    assert {e.agent_id: e.error for e in catalog.entries()} == {
        entry.agent_id: None for entry in catalog.entries()}
    assert {"daily_notes", "webhook_triage"} <= {e.agent_id for e in catalog.entries()}
    for entry in catalog.entries():
        assert entry.manifest is not None and entry.readme
        offered = set(entry.tools) | BUILTIN_TOOL_NAMES
        assert set(entry.manifest.tools) <= offered, entry.agent_id
        for worker in entry.manifest.workers.values():
            assert set(worker.tools) <= offered, entry.agent_id
        if entry.triggers_raw is not None:
            specs, problems = parse_triggers_file(entry.triggers_raw)
            assert problems == [] and specs, entry.agent_id


async def test_daily_notes_tools_write_a_digest(tmp_path: Path) -> None:
    catalog = AgentCatalog(REPO / "agents")
    await catalog.reload()
    tools = bind_tools(catalog.get_valid("daily_notes").tools, tmp_path)
    await tools["append_note"].run({"text": "Q3 review moved to Friday", "tag": "Meeting"})
    await tools["append_note"].run({"text": "TODO send the invoice"})
    assert "[meeting] Q3 review" in await tools["list_notes"].run({"tag": "meeting"})
    result = await tools["write_digest"].run({})
    digest = read_only_match(tmp_path, "digest-*.md")
    assert result.startswith("Wrote digest-")
    assert "## Open todos\n\n- [ ] send the invoice" in digest
    assert "## meeting" in digest and "Q3 review moved to Friday" in digest


async def test_webhook_triage_classifies_records_and_summarises(tmp_path: Path) -> None:
    catalog = AgentCatalog(REPO / "agents")
    await catalog.reload()
    entry = catalog.get_valid("webhook_triage")
    specs, _ = parse_triggers_file(entry.triggers_raw or b"")
    assert {(s.id, s.trigger_type) for s in specs} == {("alerts", "webhook"),
                                                       ("hourly_summary", "timer")}
    tools = bind_tools(entry.tools, tmp_path)
    outage = '{"title": "Postgres primary down", "service": "db-1"}'
    recorded = await tools["triage"].run({"payload_json": outage})
    assert recorded.startswith("Recorded INC-0001 (critical, owner data): Postgres primary down")
    warning = '{"alertname": "HighLatency", "severity": "warning", "status": "firing"}'
    classified = await tools["classify_payload"].run({"payload_json": warning})
    assert '"severity": "medium"' in classified and '"owner": "on-call"' in classified
    summary = await tools["summarize_incidents"].run({"since_minutes": 60})
    assert "1 incident: 1 critical." in summary
    assert read_only_match(tmp_path, "summary-*.md") in summary
