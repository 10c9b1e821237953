"""The agent catalog on real folders: discovery, reloads, delete, metadata, the watcher."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path

import pytest

from hive_server import errors, keys
from hive_server.core.clock import FakeClock
from hive_server.services.catalog.agents import AgentCatalog, CatalogChange, CatalogWatcher
from tests.agent_fixtures import write_agent
from tests.conftest import make_settings
from tests.queen_support import write_queen
from tests.sse_reader import read_until

LOADED_AT = 1_700_000_000.0
SHOUT_TOOLS = "def shout(text: str) -> str:\n    '''Shout.'''\n    return text.upper()\n"


@pytest.fixture
def agents_dir(tmp_path: Path) -> Path:
    """A realistic agents dir: two good agents and every kind of junk next to them."""
    root = tmp_path / "agents"
    write_agent(root, "alpha", {"name": "Alpha", "tools": ["shout"], "future_key": 1},
               tools=SHOUT_TOOLS, triggers="[]", readme="# Alpha\n")
    write_agent(root, "beta", {"name": "Beta", "category": "ops"})
    (root / "notes.txt").write_text("a plain file, not an agent")
    write_agent(root, ".hidden", {"name": "Hidden"})
    write_agent(root, "__pycache__")
    write_agent(root, "no_manifest", readme="just a readme")
    write_agent(root, "bad_json", "{not json")
    write_agent(root, "bad_schema", {"name": "", "max_parallel_workers": 99})
    write_agent(root, "Bad Name", {"name": "Spaces"})
    write_agent(root, "broken_tools", {"name": "Broken"}, tools="def oops(:\n")
    return root


@pytest.fixture
async def catalog(agents_dir: Path) -> AgentCatalog:
    cat = AgentCatalog(agents_dir, clock=FakeClock(LOADED_AT))
    await cat.reload()
    return cat


def errors_by_id(catalog: AgentCatalog) -> dict[str, str | None]:
    return {entry.agent_id: entry.error for entry in catalog.entries()}


async def test_discovery_lists_valid_and_invalid_folders(catalog: AgentCatalog) -> None:
    found = errors_by_id(catalog)
    assert sorted(found) == ["Bad Name", "alpha", "bad_json", "bad_schema", "beta",
                             "broken_tools", "no_manifest"]
    assert found["alpha"] is None and found["beta"] is None
    assert found["no_manifest"] == "agent.json is missing"
    assert "agent.json is not valid JSON" in str(found["bad_json"])
    assert "name: String should have at least 1 character" in str(found["bad_schema"])
    assert "max_parallel_workers: Input should be less than or equal to 32" in str(
        found["bad_schema"])
    assert "invalid agent id 'Bad Name'" in str(found["Bad Name"])
    assert "syntax error at line 1" in str(found["broken_tools"])


async def test_entry_carries_manifest_tools_triggers_and_readme(catalog: AgentCatalog,
                                                                agents_dir: Path) -> None:
    alpha = catalog.get_valid("alpha")
    assert alpha.path == agents_dir / "alpha"
    assert alpha.manifest is not None and alpha.manifest.name == "Alpha"
    assert alpha.manifest.max_parallel_workers == 4
    assert alpha.triggers_raw == b"[]"
    assert alpha.readme == "# Alpha\n"
    assert alpha.loaded_at == LOADED_AT
    assert await alpha.tools["shout"].run({"text": "hi"}) == "HI"
    beta = catalog.get("beta")
    assert beta.tools == {} and beta.triggers_raw is None and beta.readme is None
    broken = catalog.get("broken_tools")
    assert broken.manifest is not None and broken.manifest.name == "Broken"
    assert not broken.is_valid


async def test_get_and_get_valid_raise_domain_errors(catalog: AgentCatalog) -> None:
    with pytest.raises(errors.NotFound) as missing:
        catalog.get("nope")
    assert missing.value.code == "agent_not_found"
    with pytest.raises(errors.InvalidInput) as invalid:
        catalog.get_valid("bad_json")
    assert invalid.value.code == "agent_invalid"


async def test_reload_reports_added_changed_and_removed(catalog: AgentCatalog,
                                                        agents_dir: Path) -> None:
    seen: list[CatalogChange] = []
    catalog.subscribe(seen.append)
    write_agent(agents_dir, "gamma", {"name": "Gamma"})
    write_agent(agents_dir, "beta", {"name": "Beta 2"})
    shutil.rmtree(agents_dir / "alpha")
    change = await catalog.reload()
    assert change == CatalogChange(added=("gamma",), changed=("beta",), removed=("alpha",))
    assert seen == [change]
    assert catalog.get("beta").manifest.name == "Beta 2"  # type: ignore[union-attr]


async def test_unchanged_folders_are_not_parsed_again(tmp_path: Path) -> None:
    root = tmp_path / "agents"
    imports = tmp_path / "imports.log"
    counting = f"open({str(imports)!r}, 'a').write('x')\n" + SHOUT_TOOLS
    folder = write_agent(root, "counted", {"name": "Counted"}, tools=counting)
    catalog = AgentCatalog(root)
    await catalog.reload()
    first = catalog.get("counted")
    os.utime(folder / "tools.py", (1, 1))  # touched, same content
    assert not await catalog.reload()
    assert catalog.get("counted") is first
    assert imports.read_text() == "x"
    (folder / "tools.py").write_text(counting + "\n# edited\n")
    assert await catalog.reload() == CatalogChange(changed=("counted",))
    assert catalog.get("counted").version != first.version
    assert imports.read_text() == "xx"


async def test_broken_folder_is_not_reparsed_and_recovers_when_fixed(
        catalog: AgentCatalog, agents_dir: Path) -> None:
    broken = catalog.get("broken_tools")
    assert not await catalog.reload()
    assert catalog.get("broken_tools") is broken
    (agents_dir / "broken_tools" / "tools.py").write_text(SHOUT_TOOLS)
    assert await catalog.reload() == CatalogChange(changed=("broken_tools",))
    assert list(catalog.get_valid("broken_tools").tools) == ["shout"]


async def test_a_failing_subscriber_never_breaks_the_others(catalog: AgentCatalog,
                                                            agents_dir: Path) -> None:
    def explode(change: CatalogChange) -> None:
        raise RuntimeError("subscriber bug")

    seen: list[CatalogChange] = []
    catalog.subscribe(explode)
    unsubscribe = catalog.subscribe(seen.append)
    write_agent(agents_dir, "delta", {"name": "Delta"})
    await catalog.reload()
    assert seen == [CatalogChange(added=("delta",))]
    unsubscribe()
    unsubscribe()  # idempotent
    write_agent(agents_dir, "epsilon", {"name": "Epsilon"})
    await catalog.reload()
    assert len(seen) == 1


async def test_missing_agents_dir_is_an_empty_catalog(tmp_path: Path) -> None:
    catalog = AgentCatalog(tmp_path / "nowhere")
    assert not await catalog.reload()
    assert catalog.entries() == []


@pytest.mark.parametrize("given", ["agents/alpha", "alpha", "./agents/alpha/", "alpha/"])
async def test_resolve_path_accepts_paths_inside(catalog: AgentCatalog, given: str) -> None:
    assert catalog.resolve_path(given) == "alpha"


async def test_resolve_path_accepts_an_absolute_path(catalog: AgentCatalog,
                                                     agents_dir: Path) -> None:
    assert catalog.resolve_path(str(agents_dir / "beta")) == "beta"


@pytest.mark.parametrize("given", ["../alpha", "agents/../../etc", "/etc", "alpha/sub",
                                   "agents/alpha/tools.py", "linked_out", "Bad Name"])
async def test_resolve_path_refuses_anything_else(catalog: AgentCatalog, agents_dir: Path,
                                                  tmp_path: Path, given: str) -> None:
    write_agent(tmp_path / "elsewhere", "linked_out", {"name": "Outside"})
    (agents_dir / "linked_out").symlink_to(tmp_path / "elsewhere" / "linked_out")
    with pytest.raises(errors.InvalidInput) as refused:
        catalog.resolve_path(given)
    assert refused.value.code == "agent_path_outside"


async def test_symlinked_folder_is_listed_with_an_error(agents_dir: Path,
                                                        tmp_path: Path) -> None:
    write_agent(tmp_path / "elsewhere", "outside", {"name": "Outside"})
    (agents_dir / "outside").symlink_to(tmp_path / "elsewhere" / "outside")
    catalog = AgentCatalog(agents_dir)
    await catalog.reload()
    assert "symlink" in str(catalog.get("outside").error)


async def test_delete_removes_the_folder_and_reloads(catalog: AgentCatalog,
                                                     agents_dir: Path) -> None:
    change = await catalog.delete("alpha")
    assert change == CatalogChange(removed=("alpha",))
    assert not (agents_dir / "alpha").exists()
    with pytest.raises(errors.NotFound):
        await catalog.delete("alpha")


async def test_delete_refuses_folders_outside(catalog: AgentCatalog, agents_dir: Path,
                                              tmp_path: Path) -> None:
    target = write_agent(tmp_path / "elsewhere", "outside", {"name": "Outside"})
    (agents_dir / "outside").symlink_to(target)
    await catalog.reload()
    with pytest.raises(errors.InvalidInput) as refused:
        await catalog.delete("outside")
    assert refused.value.code == "agent_path_outside"
    assert (target / "agent.json").exists()
    with pytest.raises(errors.NotFound):
        await catalog.delete("../elsewhere/outside")
    assert target.exists()


async def test_update_metadata_patches_atomically(catalog: AgentCatalog,
                                                  agents_dir: Path) -> None:
    path = agents_dir / "alpha" / "agent.json"
    path.chmod(0o644)
    entry = await catalog.update_metadata("alpha", {"name": "Alpha Prime", "tags": ["x"],
                                                    "icon": None})
    assert entry.manifest is not None and entry.manifest.name == "Alpha Prime"
    on_disk = json.loads(path.read_text())
    assert on_disk == {"name": "Alpha Prime", "tools": ["shout"], "future_key": 1,
                       "tags": ["x"], "icon": None}
    assert path.stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in path.parent.iterdir()) == [
        "README.md", "agent.json", "tools.py", "triggers.json"]


async def test_update_metadata_validates_before_writing(catalog: AgentCatalog,
                                                        agents_dir: Path) -> None:
    path = agents_dir / "alpha" / "agent.json"
    before = path.read_bytes()
    with pytest.raises(errors.ValidationFailed, match="name"):
        await catalog.update_metadata("alpha", {"name": ""})
    with pytest.raises(errors.InvalidInput) as not_allowed:
        await catalog.update_metadata("alpha", {"tools": ["rm_rf"]})
    assert not_allowed.value.code == "metadata_field_not_allowed"
    with pytest.raises(errors.NotFound):
        await catalog.update_metadata("nope", {"name": "X"})
    with pytest.raises(errors.InvalidInput) as unreadable:
        await catalog.update_metadata("bad_json", {"name": "X"})
    assert unreadable.value.code == "agent_invalid"
    assert path.read_bytes() == before


async def test_update_metadata_can_fix_a_manifest_but_never_writes_an_invalid_one(
        catalog: AgentCatalog, agents_dir: Path) -> None:
    write_agent(agents_dir, "nameless", {"description": "forgot the name"})
    await catalog.reload()
    assert catalog.get("nameless").error == "agent.json is invalid: name: Field required"
    entry = await catalog.update_metadata("nameless", {"name": "Named"})
    assert entry.is_valid and entry.manifest.name == "Named"  # type: ignore[union-attr]
    with pytest.raises(errors.ValidationFailed, match="max_parallel_workers"):
        await catalog.update_metadata("bad_schema", {"name": "Fixed"})  # still out of range


async def test_watcher_sees_a_new_folder(tmp_path: Path) -> None:
    root = tmp_path / "agents"  # missing: the watcher creates it
    catalog = AgentCatalog(root)
    watcher = CatalogWatcher(catalog, debounce_ms=50)
    arrived = asyncio.Event()
    unsubscribe = catalog.subscribe(
        lambda change: arrived.set() if "late" in change.added else None)
    await watcher.start()
    try:
        assert root.is_dir() and watcher.running
        staging = write_agent(root, ".staging", {"name": "Late"})  # hidden: never listed
        staging.rename(root / "late")  # appears at once, complete
        await asyncio.wait_for(arrived.wait(), timeout=10)
    finally:
        await watcher.stop()
        unsubscribe()
    assert not watcher.running
    assert catalog.get_valid("late").manifest.name == "Late"  # type: ignore[union-attr]
    await watcher.stop()  # stopping twice is harmless


async def test_without_watching_the_folder_is_scanned_once_at_start(tmp_path: Path) -> None:
    root = tmp_path / "agents"
    write_agent(root, "early", {"name": "Early"})
    catalog = AgentCatalog(root)
    watcher = CatalogWatcher(catalog, watch=False)  # the watch_folders = false setting
    await watcher.start()
    assert not watcher.running and catalog.get_valid("early").manifest.name == "Early"  # type: ignore[union-attr]
    await watcher.stop()


async def test_an_app_watching_its_folders_reloads_them_and_stops_both_watchers(make_client,
                                                                                tmp_path):
    settings = make_settings(tmp_path, watch_folders=True)  # the tests' default is off
    client = await make_client(settings)
    events = await client.get("/api/events/global")
    write_agent(settings.agents_dir, ".staging", {"name": "Late"}).rename(
        settings.agents_dir / "late")
    (frame,) = await read_until(events, lambda e: e["type"] == "tool_catalog_refreshed", 10)
    assert frame["event"]["data"]["added"] == ["late"]
    write_queen(settings.queens_dir)  # "warden"
    async with asyncio.timeout(10):
        while "warden" not in [queen.id for queen in client.app[keys.QUEENS].list()]:  # noqa: ASYNC110
            await asyncio.sleep(0.02)  # a file event from the OS: the registry has nothing to await
    events.close()
    await client.close()
    assert [t for t in asyncio.all_tasks() if t.get_name().startswith("watch:")] == []
