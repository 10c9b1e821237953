"""``hive-server export-session`` / ``import-session``: a session moves to another home byte for
byte and resumes there; a bad file, an id that exists or a running server is refused with one
line and exit code 2, leaving nothing behind."""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

import orjson
import pytest

from hive_server import cli
from hive_server.models.events import Event, EventType
from hive_server.services.sessions.transfer import export_session, import_session
from tests.conftest import make_settings
from tests.hive_api import HiveApi

NOW = "2026-11-29T12:00:00+00:00"


def event(seq: int, kind: str = EventType.LLM_TEXT_DELTA, session_id: str = "s",
          **data: object) -> bytes:
    return Event(seq=seq, type=kind, session_id=session_id,
                 timestamp=f"2026-11-2{seq % 10}T10:00:00+00:00", data=dict(data)).to_json()


def started(seq: int = 1, session_id: str = "s") -> bytes:
    return event(seq, EventType.SESSION_STARTED, session_id, queen_id="q", queen_name="Q",
                 agent_id=None, model="offline-1", provider="offline", resumed=False,
                 previous_seq=0)


def said(seq: int, text: str) -> bytes:
    return event(seq, EventType.CLIENT_INPUT_RECEIVED, content=text, source="user")


GOOD = [started(), said(2, "hello there"), event(3), said(4, "and again")]


def jsonl(lines: list[bytes]) -> bytes:
    return b"".join(raw + b"\n" for raw in lines)


def write(path: Path, lines: list[bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(jsonl(lines))
    return path


def lock_free(home: Path) -> int | None:
    return cli._lock_home(home)


def server_running(home: Path) -> None:
    return None


def run_import(source: Path | str, home: Path, as_id: str | None = None, *,
               lock=lock_free, stdin: bytes = b"") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = import_session(str(source), home=home, as_id=as_id, lock_home=lock,
                          stdin=io.BytesIO(stdin), out=out, err=err, now=lambda: NOW)
    return code, out.getvalue(), err.getvalue()


def run_export(session_id: str, home: Path, output: str = "-", *,
               lock=lock_free) -> tuple[int, bytes, str]:
    out, err = io.BytesIO(), io.StringIO()
    code = export_session(session_id, home=home, output=output, lock_home=lock, stdout=out,
                          err=err)
    return code, out.getvalue(), err.getvalue()


def session_folder(home: Path, session_id: str, lines: list[bytes], status: str) -> Path:
    folder = home / "sessions" / session_id
    write(folder / "events.jsonl", lines)
    meta = {"session_id": session_id, "created_at": NOW, "updated_at": NOW, "queen_id": "q",
            "queen_name": "Q", "model": "offline-1", "status": status}
    (folder / "meta.json").write_bytes(orjson.dumps(meta))
    return folder


def leftovers(home: Path) -> list[str]:
    root = home / "sessions"
    return sorted(os.listdir(root)) if root.is_dir() else []


# -- the round trip through the real app -----------------------------------------------------------
async def test_a_session_moves_to_another_home_byte_for_byte_and_resumes_there(
        tmp_path, make_client, capsys):
    first = HiveApi(await make_client(make_settings(tmp_path)))
    await first.chatted("moved", 2)
    assert (await first.client.delete("/api/sessions/moved")).status == 200
    source = first.home / "sessions" / "moved"
    exported = tmp_path / "moved.jsonl"
    assert cli.main(["export-session", "moved", "-o", str(exported),
                     "--home", str(first.home)]) == 0
    assert exported.read_bytes() == (source / "events.jsonl").read_bytes()
    home2 = tmp_path / "home2"
    assert cli.main(["import-session", str(exported), "--home", str(home2)]) == 0
    assert "imported session moved" in capsys.readouterr().out
    assert (home2 / "sessions/moved/events.jsonl").read_bytes() == exported.read_bytes()
    old, new = (orjson.loads((folder / "meta.json").read_bytes())
                for folder in (source, home2 / "sessions/moved"))
    for key in ("queen_id", "queen_name", "model", "phase", "status", "message_count",
                "first_message", "last_message", "title", "last_seq", "handoff", "agent_id"):
        assert new[key] == old[key], key

    second = HiveApi(await make_client(make_settings(tmp_path, home=home2)))
    history = await (await second.client.get("/api/sessions/history")).json()
    assert [row["session_id"] for row in history["sessions"]] == ["moved"]
    cold = await second.client.get("/api/sessions/moved")
    assert cold.status == 200 and (await cold.json())["cold"] is True
    replay = await (await second.client.get("/api/sessions/moved/events/history")).json()
    assert [orjson.dumps(e) for e in replay["events"]] == exported.read_bytes().splitlines()
    await second.create_session(session_id="moved")
    resumed = await second.wait_for("moved", "session_started", after_seq=old["last_seq"])
    assert resumed["seq"] == old["last_seq"] + 1
    assert resumed["data"]["resumed"] is True
    assert resumed["data"]["previous_seq"] == old["last_seq"]


async def test_an_import_into_a_home_with_a_clean_index_shows_in_its_history(
        tmp_path, make_client):
    settings = make_settings(tmp_path)
    first = HiveApi(await make_client(settings))
    await first.create_session(session_id="here")
    await first.client.close()  # a clean stop: the index is marked clean, then caught up
    assert run_import(write(tmp_path / "in.jsonl", GOOD), settings.home, "came")[0] == 0
    again = await make_client(settings)
    history = await (await again.get("/api/sessions/history")).json()
    rows = {row["session_id"]: row for row in history["sessions"]}
    assert set(rows) == {"here", "came"}
    assert rows["came"]["cold"] is True and rows["came"]["title"] == "hello there"


# -- export ------------------------------------------------------------------------------------
def test_export_to_stdout_writes_the_logs_own_lines(tmp_path):
    home = tmp_path / "home"
    folder = session_folder(home, "s", GOOD, "stopped")
    code, out, err = run_export("s", home)
    assert code == 0 and out == (folder / "events.jsonl").read_bytes()
    assert "4 events of s (last seq 4) written to stdout, 0 line(s) left out" in err


def test_export_leaves_out_bad_lines_and_reports_each_with_its_offset(tmp_path):
    home = tmp_path / "home"
    lines = [GOOD[0], b"\x00" * 20, GOOD[1], b'{"seq": 3, "ty', GOOD[2], GOOD[2], GOOD[3]]
    session_folder(home, "s", lines, "stopped")
    (home / "sessions/s/events.jsonl").open("ab").write(b'{"seq": 5')  # a torn tail
    code, out, err = run_export("s", home)
    assert code == 1
    assert out == jsonl(GOOD)
    offsets = [int(found) for found in re.findall(r"left out offset (\d+)", err)]
    assert offsets == [len(GOOD[0]) + 1, len(jsonl(lines[:3])), len(jsonl(lines[:5])),
                       len(jsonl(lines))]
    assert re.findall(r"bytes: (\w+)", err) == ["nul", "invalid_json", "duplicate_seq",
                                                "torn_tail"]


def test_export_reports_a_seq_gap_that_an_import_would_refuse(tmp_path):
    home = tmp_path / "home"
    session_folder(home, "s", [GOOD[0], GOOD[1], GOOD[3]], "stopped")
    code, out, err = run_export("s", home)
    assert code == 1 and out == jsonl([GOOD[0], GOOD[1], GOOD[3]])
    assert "seq 3 missing (import-session refuses a file with a gap)" in err


def test_export_while_a_server_runs_refuses_a_live_session_and_reads_a_cold_one(tmp_path):
    home = tmp_path / "home"
    session_folder(home, "live", GOOD, "idle")
    session_folder(home, "cold", GOOD, "stopped")
    output = tmp_path / "out.jsonl"
    output.write_bytes(b"kept")
    code, _, err = run_export("live", home, str(output), lock=server_running)
    assert code == 2 and "session 'live' is live on the server running on" in err
    assert output.read_bytes() == b"kept"  # a refused export leaves FILE as it was
    code, _, _ = run_export("cold", home, str(output), lock=server_running)
    assert code == 0 and output.read_bytes() == jsonl(GOOD)
    code, out, _ = run_export("live", home)  # no server: a session left live is cold now
    assert code == 0 and out == jsonl(GOOD)
    assert sorted(os.listdir(tmp_path)) == ["home", "out.jsonl"]  # no temp file left


@pytest.mark.parametrize("session_id", ["nope", "../x"])
def test_export_of_a_session_that_is_not_there_is_exit_2(tmp_path, session_id):
    code, out, err = run_export(session_id, tmp_path / "home")
    assert code == 2 and out == b""
    assert "no session 'nope'" in err or "invalid session id" in err


# -- import ------------------------------------------------------------------------------------
BAD_FILES = {
    "not json": ([GOOD[0], b'{"seq": 2, "type', GOOD[2]], "line 2: not an event (invalid_json)"),
    "a gap": ([GOOD[0], GOOD[1], GOOD[3]], "line 3: seq 4 where seq 3 was expected"),
    "not from 1": ([event(2)], "line 1: seq 2 where seq 1 was expected"),
    "a duplicate": ([GOOD[0], GOOD[0]], "line 2: seq 1 where seq 2 was expected"),
    "two sessions": ([GOOD[0], event(2, session_id="t")], "line 2: session_id 't', but "
                                                         "line 1 has 's'"),
    "a blank line": ([GOOD[0], b""], "line 2: not an event (blank)"),
    "no zone": ([started(), event(2).replace(b"+00:00", b"")], "line 2: timestamp is not"),
    "data type": ([GOOD[0], event(2).replace(b'"data":{}', b'"data":[]')],
                  "line 2: data is a list"),
    "bad data": ([event(1, EventType.SESSION_STARTED, queen_name="Q")],
                 "line 1: session_started data: queen_id: Field required"),
    "no start": ([event(1), event(2)], "the file has no session_started event"),
    "unsafe id": ([started(session_id="../up")], "line 1: session_id '../up' is not a valid"),
    "empty": ([], "the file holds no event"),
}


@pytest.mark.parametrize("name", BAD_FILES)
def test_a_bad_file_is_refused_naming_the_line_and_leaves_nothing(tmp_path, name):
    lines, message = BAD_FILES[name]
    source = write(tmp_path / "in.jsonl", lines)
    home = tmp_path / "home"
    code, out, err = run_import(source, home)
    assert code == 2 and out == ""
    assert err.startswith("hive-server: import-session: ") and message in err
    assert err.count("\n") == 1
    assert leftovers(home) == []


def test_an_id_that_exists_is_refused_and_left_as_it_was(tmp_path):
    home = tmp_path / "home"
    folder = session_folder(home, "s", [GOOD[0]], "stopped")
    code, _, err = run_import(write(tmp_path / "in.jsonl", GOOD), home)
    assert code == 2 and "a session 's' already exists" in err and "--as ID" in err
    assert (folder / "events.jsonl").read_bytes() == jsonl([GOOD[0]])
    assert leftovers(home) == ["s"]


def test_an_import_is_refused_while_a_server_runs_on_the_home(tmp_path):
    home = tmp_path / "home"
    lock = cli._lock_home(home)
    assert lock is not None
    try:
        code, _, err = run_import(write(tmp_path / "in.jsonl", GOOD), home)
    finally:
        os.close(lock)
    assert code == 2 and "a server is running on" in err and "server.lock" in err
    assert leftovers(home) == []


def test_as_rewrites_the_session_id_of_every_event_and_nothing_else(tmp_path):
    home = tmp_path / "home"
    source = write(tmp_path / "in.jsonl", GOOD)
    assert run_import(source, home)[0] == 0
    code, out, _ = run_import(source, home, "copy")
    assert code == 0 and "imported session copy: 4 events" in out
    original = [orjson.loads(raw) for raw in GOOD]
    copied = [orjson.loads(raw) for raw in
              (home / "sessions/copy/events.jsonl").read_bytes().splitlines()]
    assert copied == [{**fields, "session_id": "copy"} for fields in original]
    meta = orjson.loads((home / "sessions/copy/meta.json").read_bytes())
    assert meta["session_id"] == "copy" and meta["message_count"] == 2
    assert (meta["first_message"], meta["last_message"]) == ("hello there", "and again")
    assert (meta["status"], meta["last_seq"], meta["updated_at"]) == ("stopped", 4, NOW)
    assert run_import(source, home, "history")[0] == 2  # a reserved id
    assert leftovers(home) == ["copy", "s"]


def test_import_reads_stdin_and_rebuilds_the_colony_from_its_events(tmp_path):
    loaded = event(2, EventType.WORKER_COLONY_LOADED, agent_id="a", agent_path="/x/a",
                   name="A", version="1", tools=[], workers=[])
    home = tmp_path / "home"
    code, _, _ = run_import("-", home, stdin=jsonl([started(), loaded]))
    assert code == 0
    meta = orjson.loads((home / "sessions/s/meta.json").read_bytes())
    assert (meta["agent_id"], meta["agent_path"], meta["phase"]) == ("a", "/x/a", "colony")
    assert meta["created_at"] == "2026-11-21T10:00:00+00:00"
    unloaded = event(3, EventType.WORKER_COLONY_UNLOADED, agent_id="a", reason="request")
    assert run_import("-", home, "t", stdin=jsonl([started(), loaded, unloaded]))[0] == 0
    meta = orjson.loads((home / "sessions/t/meta.json").read_bytes())
    assert (meta["agent_id"], meta["phase"]) == (None, "independent")


def test_a_file_that_cannot_be_read_or_written_is_exit_2(tmp_path):
    code, _, err = run_import(tmp_path / "missing.jsonl", tmp_path / "home")
    assert code == 2 and "missing.jsonl: No such file or directory" in err
    session_folder(tmp_path / "home", "s", GOOD, "stopped")
    code, _, err = run_export("s", tmp_path / "home", str(tmp_path / "no" / "out.jsonl"))
    assert code == 2 and err == f"hive-server: export-session: {tmp_path / 'no'}: no such folder\n"


def test_a_last_line_without_its_newline_is_imported_with_one(tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_bytes(jsonl(GOOD)[:-1])
    assert run_import(source, tmp_path / "home")[0] == 0
    assert (tmp_path / "home/sessions/s/events.jsonl").read_bytes() == jsonl(GOOD)
