"""No silent loss of state: a corrupt or unreadable ``triggers.json`` or ``meta.json`` is kept
aside byte for byte (``<file>.corrupt-<UTC timestamp>``), reported (a WARNING naming the session
and file, a ``state_corrupt`` event, ``warnings`` or the history's ``corrupt`` list) and never
overwritten with empty state."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from tests.conftest import create_session
from tests.queen_support import of_type, read_log
from tests.trigger_support import cards, post_trigger, timer

GARBAGE = b'{"api": [{"id": "tick", "trigger_type": "tim'


def session_dir(settings, session_id: str = "s") -> Path:
    return settings.home / "sessions" / session_id


def kept(folder: Path, name: str) -> list[Path]:
    return sorted(folder.glob(f"{name}.corrupt-*"))


async def session_with_two_triggers(make_client, settings) -> None:
    """Session ``s`` with two API timers, then the server stops (the session resumes next)."""
    client = await make_client(settings)
    await create_session(client, session_id="s")
    await post_trigger(client, "s", timer("tick", interval_minutes=10))
    await post_trigger(client, "s", timer("tock", interval_minutes=20))
    await client.close()


def warned(caplog, *words: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno == logging.WARNING
            and all(word in r.getMessage() for word in words)]


# -- triggers.json ------------------------------------------------------------------------------

async def test_a_corrupt_triggers_json_is_kept_aside_reported_and_never_overwritten(
        make_client, settings, caplog):
    await session_with_two_triggers(make_client, settings)
    folder = session_dir(settings)
    (folder / "triggers.json").write_bytes(GARBAGE)
    caplog.set_level(logging.WARNING)
    client = await make_client(settings)

    (aside,) = kept(folder, "triggers.json")
    assert aside.read_bytes() == GARBAGE
    assert warned(caplog, "session s", "triggers.json", aside.name)
    (event,) = of_type(read_log(settings.home, "s"), "state_corrupt")
    assert event["data"]["file"] == "triggers.json" and event["data"]["kept_as"] == aside.name
    assert event["data"]["error"]
    answer = await (await client.get("/api/sessions/s")).json()
    (warning,) = answer["warnings"]
    assert warning["file"] == "triggers.json" and warning["kept_as"] == aside.name
    history = await (await client.get("/api/sessions/history")).json()
    (row,) = [r for r in history["sessions"] if r["session_id"] == "s"]
    assert [w["kept_as"] for w in row["warnings"]] == [aside.name]

    await post_trigger(client, "s", timer("new", interval_minutes=5))  # state is written again
    assert aside.read_bytes() == GARBAGE
    assert set(await cards(client, "s")) == {"new"}
    await client.close()
    client = await make_client(settings)  # the warning stays until the copy is dealt with
    answer = await (await client.get("/api/sessions/s")).json()
    assert [w["kept_as"] for w in answer["warnings"]] == [aside.name]
    assert len(of_type(read_log(settings.home, "s"), "state_corrupt")) == 1  # reported once


async def test_a_triggers_json_with_one_bad_entry_keeps_the_rest_and_a_copy_of_the_whole(
        make_client, settings):
    await session_with_two_triggers(make_client, settings)
    folder = session_dir(settings)
    saved = json.loads((folder / "triggers.json").read_text())
    saved["api"][1]["trigger_config"] = {"interval_minutes": "soon"}
    original = json.dumps(saved).encode()
    (folder / "triggers.json").write_bytes(original)
    client = await make_client(settings)

    assert set(await cards(client, "s")) == {"tick"}
    (aside,) = kept(folder, "triggers.json")
    assert aside.read_bytes() == original
    (event,) = of_type(read_log(settings.home, "s"), "state_corrupt")
    assert "tock" in event["data"]["error"]


async def test_an_unreadable_triggers_json_is_kept_aside_and_the_session_still_resumes(
        make_client, settings):
    await session_with_two_triggers(make_client, settings)
    folder = session_dir(settings)
    (folder / "triggers.json").unlink()
    (folder / "triggers.json").mkdir()  # a directory where the file should be
    client = await make_client(settings)

    answer = await (await client.get("/api/sessions/s")).json()
    assert answer["live"] is True
    (aside,) = kept(folder, "triggers.json")
    assert aside.is_dir()
    assert answer["warnings"][0]["kept_as"] == aside.name


# -- meta.json ----------------------------------------------------------------------------------

async def test_a_corrupt_meta_json_is_kept_aside_listed_and_never_replaced(
        make_client, settings, caplog):
    client = await make_client(settings)
    await create_session(client, session_id="s")
    await create_session(client, session_id="t")
    await client.close()
    folder = session_dir(settings)
    (folder / "meta.json").write_bytes(b'{"session_id": "s", "created_')
    log_before = (folder / "events.jsonl").read_bytes()
    caplog.set_level(logging.WARNING)
    client = await make_client(settings)

    (aside,) = kept(folder, "meta.json")
    assert aside.read_bytes() == b'{"session_id": "s", "created_'
    live = await (await client.get("/api/sessions")).json()
    assert [s["session_id"] for s in live["sessions"]] == ["t"]
    history = await (await client.get("/api/sessions/history")).json()
    # after the index's query: whichever reader kept it aside (the index's own thread, or
    # the resume at start) has said so
    assert warned(caplog, "session s", "meta.json", aside.name)
    assert [r["session_id"] for r in history["sessions"]] == ["t"]
    (corrupt,) = history["corrupt"]
    assert corrupt["session_id"] == "s" and corrupt["status"] == "corrupt"
    assert corrupt["file"] == "meta.json" and corrupt["kept_as"] == aside.name
    assert corrupt["error"]

    resp = await client.get("/api/sessions/s")
    assert resp.status == 400 and (await resp.json())["code"] == "session_corrupt"
    for body in ({"session_id": "s"}, {"queen_resume_from": "s"}):
        resp = await client.post("/api/sessions", json=body)
        assert resp.status == 400 and (await resp.json())["code"] == "session_corrupt"
    assert not (folder / "meta.json").exists()
    assert (folder / "events.jsonl").read_bytes() == log_before

    resp = await client.delete("/api/sessions/history/s")  # the user may still delete it
    assert resp.status == 200
    assert not folder.exists()


@pytest.mark.parametrize("content", [b"[1, 2]", b'{"session_id": "s"}', b"\xff\xfe"],
                         ids=["not-an-object", "missing-fields", "not-utf8"])
async def test_every_kind_of_bad_meta_json_is_reported(make_client, settings, content):
    client = await make_client(settings)
    await create_session(client, session_id="s")
    await client.close()
    (session_dir(settings) / "meta.json").write_bytes(content)
    client = await make_client(settings)
    history = await (await client.get("/api/sessions/history")).json()
    assert [c["session_id"] for c in history["corrupt"]] == ["s"]
    (aside,) = kept(session_dir(settings), "meta.json")
    assert aside.read_bytes() == content
