"""``hive-server check-log``: reports every problem of a session's log, ``--fix`` swaps in a
clean copy and keeps the original, and it refuses to fix while a server holds the home."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from hive_server import cli
from hive_server.core.eventlog_reader import read_after_file
from hive_server.models.events import Event, EventType


def line(seq: int) -> bytes:
    return Event(seq=seq, type=EventType.LLM_TEXT_DELTA, session_id="s",
                 data={"content": f"text {seq} \u2028"}).to_json()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def session_log(home: Path, lines: list[bytes], tail: bytes = b"") -> Path:
    path = home / "sessions" / "s" / "events.jsonl"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"".join(raw + b"\n" for raw in lines) + tail)
    return path


BAD = [line(1), b"\x00" * 30, line(2), b'{"seq":3,"type":"ll', line(4), line(4),
       b'{"seq":5,"x":"\xff"}', line(5), b'{"type":"x"}', line(6), line(2), line(7), line(9)]
KINDS = ["nul", "invalid_json", "seq_gap", "duplicate_seq", "invalid_utf8", "not_an_event",
         "seq_out_of_order", "seq_gap", "torn_tail"]


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(["check-log", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def offset_of(lines: list[bytes], index: int) -> int:
    return sum(len(raw) + 1 for raw in lines[:index])


def test_a_clean_log_exits_0(home, capsys):
    session_log(home, [line(seq) for seq in range(1, 6)])
    code, out, _ = run(capsys, "s", "--home", str(home))
    assert code == 0
    assert out.strip().endswith("5 events, last seq 5, 0 problem(s)")


def test_each_problem_is_reported_with_offset_length_and_kind(home, capsys):
    path = session_log(home, BAD, tail=b'{"seq":10,"ty')
    before = path.read_bytes()
    code, out, _ = run(capsys, "s", "--home", str(home))
    assert code == 1
    found = re.findall(r"offset (\d+), (\d+) bytes: (\w+)", out)
    assert [kind for _, _, kind in found] == KINDS
    assert (int(found[0][0]), int(found[0][1])) == (offset_of(BAD, 1), 30)
    assert (int(found[3][0]), int(found[3][1])) == (offset_of(BAD, 5), len(line(4)))
    assert "seq 3 missing" in out and "seq 8 missing" in out
    assert int(found[-1][0]) == len(before) - 13 and found[-1][1] == "13"
    assert "7 events, last seq 9, 9 problem(s)" in out
    assert path.read_bytes() == before  # a report never writes


def test_fix_swaps_in_a_clean_copy_and_keeps_the_original(home, capsys):
    path = session_log(home, BAD, tail=b'{"seq":10,"ty')
    original, events = path.read_bytes(), read_after_file(path, 0)
    code, out, _ = run(capsys, str(path), "--fix", "--home", str(home / "elsewhere"))
    assert code == 1 and "fixed; the original is kept as events.jsonl.corrupt-" in out
    backups = list(path.parent.glob("events.jsonl.corrupt-*"))
    assert len(backups) == 1 and re.fullmatch(r"events\.jsonl\.corrupt-\d{8}T\d{6}Z",
                                              backups[0].name)
    assert backups[0].read_bytes() == original
    kept = [BAD[i] for i in (0, 2, 4, 7, 9, 11, 12)]
    assert path.read_bytes() == b"".join(raw + b"\n" for raw in kept)
    assert read_after_file(path, 0) == events
    assert not list(path.parent.glob(".*fixing"))
    code, out, _ = run(capsys, "s", "--fix", "--home", str(home))
    assert code == 1 and "nothing to rewrite" in out  # only the gaps (seqs 3 and 8) are left
    assert len(list(path.parent.glob("events.jsonl.corrupt-*"))) == 1


def test_fix_refuses_while_a_server_holds_the_home(home, capsys):
    path = session_log(home, BAD)
    before = path.read_bytes()
    lock = cli._lock_home(home)
    assert lock is not None
    try:
        code, _, err = run(capsys, "s", "--fix", "--home", str(home))
        assert code == 2 and "a server is running" in err and "server.lock" in err
        code, _, _ = run(capsys, str(path), "--fix")  # the home is found from the path
        assert code == 2
        code, out, _ = run(capsys, "s", "--home", str(home))  # a report only reads
        assert code == 1 and "problem(s)" in out
    finally:
        os.close(lock)
    assert path.read_bytes() == before
    assert not list(path.parent.glob("events.jsonl.corrupt-*"))


def test_an_unknown_session_is_exit_2(home, capsys):
    code, _, err = run(capsys, "nope", "--home", str(home))
    assert code == 2 and "no event log" in err
