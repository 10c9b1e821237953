"""A stopped session written by hand (meta.json + events.jsonl) with every kind of transcript
entry, fixed times, known token counts and HTML injection attempts: the fixture of the
accounting and export tests.

Hand-computed accounting (llm/pricing.py: claude-sonnet-4 is $3 in / $15 out per million,
cache reads 10%, cache writes 125% of the input price):
- turn 1, claude-sonnet-4-5, 1000 in / 200 out, cost_usd recorded 0.006
  (1000 * 3e-6 + 200 * 15e-6);
- turn 2, claude-sonnet-4-5, 1500 in of which 1000 cache read and 200 cache write, 100 out,
  cost_usd absent (an older log): priced at read time as 300 * 3e-6 + 1000 * 3e-7
  + 200 * 3.75e-6 + 100 * 15e-6 = 0.0009 + 0.0003 + 0.00075 + 0.0015 = 0.00345;
- a worker's turn, offline-1, 50 in / 10 out, cost 0;
- a turn of an unpriced model, 10 in / 10 out: not in the cost, counted as unpriced.
Total cost 0.00945; tokens in 2560, out 320, cache read 1000, cache write 200.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from hive_server.models.event_data import (
    ClientInputReceived,
    ClientInputRequested,
    EventData,
    ExecutionCompleted,
    ExecutionFailed,
    ExecutionStarted,
    LlmTurnComplete,
    Question,
    SessionStarted,
    SessionStopped,
    ToolCallCompleted,
    ToolCallStarted,
    UsageData,
    WorkerCompleted,
    WorkerFailed,
    WorkerStarted,
)
from hive_server.models.events import Event
from hive_server.models.session import SessionMeta
from hive_server.models.trigger_events import TriggerFired

SESSION = "cold1"
SCRIPT = '<script>alert("x")</script>'
IMG = '"><img src=x onerror=alert(1)>'
COST = 0.00945
BAD_LINE = b'{"seq": 7, "type": "tool_call_comp\x00\x00 torn'


def _turn(text: str, tool: tuple[str, str, dict[str, Any]] | None, model: str, tokens: tuple,
          cost: float | None, latency: float | None, ttft: float | None) -> LlmTurnComplete:
    content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    if tool is not None:
        content.append({"type": "tool_use", "id": tool[0], "name": tool[1], "input": tool[2]})
    return LlmTurnComplete(
        message={"role": "assistant", "content": content}, model=model,
        stop_reason="tool_use" if tool else "end_turn", input_tokens=tokens[0],
        output_tokens=tokens[1], cached_tokens=tokens[2], cache_creation_tokens=tokens[3],
        cost_usd=cost, latency_ms=latency, ttft_ms=ttft)


def _fired(manual: bool) -> TriggerFired:
    return TriggerFired(
        trigger_id="daily", name="Daily <digest>", trigger_type="timer",
        trigger_config={"interval_minutes": 5}, task=f"Summarise the inbox {SCRIPT}",
        active=True, enabled=True, source="api", next_fire_in=None, next_fire_at=None,
        fire_count=1, last_fired_at=None, tick=None, manual=manual, missed=0)


def payloads() -> list[tuple[str, EventData]]:
    """(stream, payload) in log order."""
    sonnet = "claude-sonnet-4-5"
    return [
        ("queen", SessionStarted(queen_id="warden", queen_name="Warden", agent_id="notes",
                                 model=sonnet, provider="anthropic", resumed=False,
                                 previous_seq=0)),
        ("queen", ClientInputReceived(content=f"Hi {SCRIPT}\nsecond line")),
        ("queen", ExecutionStarted(trigger="user", input_seq=2)),
        ("queen", _turn(f"Let me look {IMG}", ("t1", "list_files", {"path": "<b>."}), sonnet,
                        (1000, 200, 0, 0), 0.006, 800.0, 120.0)),
        ("queen", ToolCallStarted(tool_use_id="t1", tool_name="list_files",
                                  tool_input={"path": "<b>."})),
        ("queen", ToolCallCompleted(tool_use_id="t1", tool_name="list_files",
                                    result=f"{IMG} notes.txt")),
        ("queen", _turn("Which one?", ("t2", "ask_user", {"question": "Which file?"}), sonnet,
                        (1500, 100, 1000, 200), None, 1200.0, 300.0)),
        ("queen", ToolCallStarted(tool_use_id="t2", tool_name="ask_user",
                                  tool_input={"question": "Which file?"})),
        ("queen", ClientInputRequested(questions=[Question(
            id="q1", prompt=f"Which file? {IMG}", options=["notes.txt", "<other>"])],
            tool_use_id="t2")),
        ("queen", ClientInputReceived(content=f"notes.txt {SCRIPT}", answers_request_seq=9)),
        ("queen", ToolCallCompleted(tool_use_id="t2", tool_name="ask_user", result="notes.txt")),
        ("worker:default-1", WorkerStarted(worker_id="default-1", worker="default",
                                           task="count <lines>")),
        ("worker:default-1", _turn("3 lines", None, "offline-1", (50, 10, 0, 0), 0.0, 5.0,
                                   2.0)),
        ("worker:default-1", WorkerCompleted(worker_id="default-1", worker="default",
                                             result="3 lines", turns=1)),
        ("queen", ExecutionCompleted(turns=2, usage=UsageData(input_tokens=2500,
                                                              output_tokens=300))),
        ("queen", _fired(False)),
        ("queen", ClientInputReceived(text="[TRIGGER: timer/daily] Task: Summarise",
                                      source="trigger", trigger_id="daily", trigger_seq=16)),
        ("queen", ExecutionStarted(trigger="trigger", input_seq=17)),
        ("queen", _turn("", None, "mystery-model", (10, 10, 0, 0), None, None, None)),
        ("queen", ExecutionFailed(error=f"boom {SCRIPT}", error_type="api_error")),
        ("queen", _fired(True)),
        ("worker:default-2", WorkerStarted(worker_id="default-2", worker="default",
                                           task="explode")),
        ("worker:default-2", WorkerFailed(worker_id="default-2", worker="default",
                                          error="cancelled")),
        ("queen", ToolCallStarted(tool_use_id="t3", tool_name="explode", tool_input="now")),
        ("queen", SessionStopped(reason="shutdown")),
    ]


def events(session_id: str = SESSION) -> list[Event]:
    return [Event(seq=seq, type=payload.TYPE.value, session_id=session_id, stream_id=stream,
                  node_id=stream, execution_id="x1", colony_id="notes",
                  timestamp=f"2026-11-29T10:00:{seq:02d}.000000+00:00",
                  data=payload.model_dump())
            for seq, (stream, payload) in enumerate(payloads(), start=1)]


def write_session(home: Path, session_id: str = SESSION, *, bad_line: bool = True,
                  **meta: Any) -> Path:
    """The session folder under ``home`` (a bad line after seq 6 when ``bad_line``)."""
    folder = home / "sessions" / session_id
    folder.mkdir(parents=True)
    lines = [event.to_json() for event in events(session_id)]
    if bad_line:
        lines.insert(6, BAD_LINE)
    (folder / "events.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    values: dict[str, Any] = {
        "session_id": session_id, "created_at": "2026-11-29T10:00:00+00:00",
        "updated_at": "2026-11-29T10:00:25+00:00", "queen_id": "warden",
        "queen_name": "Warden", "agent_id": "notes", "model": "claude-sonnet-4-5",
        "status": "stopped", "title": f"Report {IMG}", **meta}
    (folder / "meta.json").write_bytes(SessionMeta.model_validate(values).model_dump_json(
        indent=2).encode())
    return folder


def read_meta(folder: Path) -> dict[str, Any]:
    return orjson.loads((folder / "meta.json").read_bytes())
