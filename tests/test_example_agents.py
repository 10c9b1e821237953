"""The shipped example agents, driven over HTTP the way their READMEs say (offline model), on
copies of the repo's ``agents/`` folders under tmp_path."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.agent_fixtures import call_line, worker_line
from tests.queen_support import chat, of_type, results_in_call_order, until

REPO_AGENTS = Path(__file__).resolve().parent.parent / "agents"


@pytest.fixture
async def client(make_client, settings):
    shutil.copytree(REPO_AGENTS, settings.agents_dir,
                    ignore=shutil.ignore_patterns("__pycache__"))
    return await make_client(settings)


def workspace(settings, session_id: str = "s") -> Path:
    return settings.home / "sessions" / session_id / "workspace"


async def run(client, stream, message: str) -> list[dict]:
    await chat(client, "s", message)
    return await until(stream, "execution_completed")


def worker_results(events: list[dict]) -> list[str]:
    """The results of the workers' tool calls, in the order each worker made its calls."""
    return [data["result"] for data in results_in_call_order(events, "worker:")]


def readme_messages(agent_id: str) -> list[str]:
    """The chat messages the README's offline example sends, one per line, in order."""
    text = (REPO_AGENTS / agent_id / "README.md").read_text()
    return [line for line in text.splitlines() if line.startswith("call:")]


async def test_daily_notes_as_its_readme_says(client, api, settings):
    await api.create_session(session_id="s", agent_id="daily_notes")
    stream = await api.events("s")
    notes, digest_line, listing = readme_messages("daily_notes")
    saved = worker_results(await run(client, stream, notes))
    assert sorted(r.split()[2] for r in saved) == ["#1", "#2"]  # parallel: either may be #1
    assert sorted(r.split()[3] for r in saved) == ["[meeting]:", "[work]:"]
    events = await run(client, stream, digest_line)
    (done,) = of_type(events, "worker_completed")
    assert done["stream_id"] == "worker:digest_writer-2"
    (digest,) = workspace(settings).glob("digest-*.md")
    text = digest.read_text()
    assert "Notes: 2. Open todos: 1." in text
    assert "- [ ] send the invoice to ACME" in text and "Q3 review moved to Friday" in text
    events = await run(client, stream, listing)
    listed = of_type(events, "tool_call_completed")[0]["data"]["result"]
    assert digest.name in listed and "notes.jsonl" in listed
    events = await run(client, stream, call_line("read_file", path=digest.name))
    assert "Open todos: 1" in of_type(events, "tool_call_completed")[0]["data"]["result"]


async def test_webhook_triage_as_its_readme_says(client, api, settings):
    await api.create_session(session_id="s", agent_id="webhook_triage")
    stream = await api.events("s")
    triage, classify_and_record, summarize = readme_messages("webhook_triage")
    events = await run(client, stream, triage)
    assert of_type(events, "worker_started")[0]["data"]["worker"] == "triager"
    assert worker_results(events)[0].startswith(
        "Recorded INC-0001 (critical, owner data): Postgres primary down")
    classified, recorded = worker_results(await run(client, stream, classify_and_record))
    assert json.loads(classified)["severity"] == "medium"
    assert recorded.startswith("Recorded INC-0002 (high, owner payments)")
    (summary,) = worker_results(await run(client, stream, summarize))
    assert "2 incidents: 1 critical, 1 high." in summary
    assert len(list(workspace(settings).glob("summary-*.md"))) == 1


async def test_webhook_triage_hourly_summary_runs_offline(client, api, settings):
    await api.create_session(session_id="s", agent_id="webhook_triage")
    stream = await api.events("s")
    resp = await client.post("/api/sessions/s/triggers/hourly_summary/run", json={})
    assert resp.status == 202
    events = await until(stream, "execution_completed")
    (summary,) = worker_results(events)
    assert "No incidents. All quiet." in summary
    assert len(list(workspace(settings).glob("summary-*.md"))) == 1


async def test_parallel_triage_calls_get_distinct_incident_ids(client, api, settings):
    await api.create_session(session_id="s", agent_id="webhook_triage")
    stream = await api.events("s")
    calls = [call_line("triage", payload_json=json.dumps({"title": f"disk full on node {n}"}))
             for n in range(12)]
    await run(client, stream, "\n".join(worker_line(call) for call in calls[:4]) + "\n"
              + worker_line("\n".join(calls[4:])))
    lines = (workspace(settings) / "incidents.jsonl").read_text().splitlines()
    ids = [json.loads(line)["id"] for line in lines]
    assert sorted(ids) == [f"INC-{n:04d}" for n in range(1, 13)]
