"""A deterministic offline model: no network, no key, no waiting.

It streams its reply as several ``TextDelta`` chunks (``chunk_words`` words each) and then one
``TurnResult``. Usage is synthetic and cheap: ``input_tokens`` counts the words of the system
prompt and of the last message plus 4 per earlier message, ``output_tokens`` the words of the
reply text and tool inputs. The reported model is always the client's own ``default_model`` (a
requested model is ignored: this is not that model).

How it answers, first rule that applies wins:

1. The last message is a user message with ``tool_result`` blocks: one line per result,
   ``Tool <name> returned: <first 200 chars>`` (or ``Tool <name> failed: ...`` when
   ``is_error``), the name taken from the matching ``tool_use`` of the assistant message before
   it. Stop reason ``end_turn``: it never calls a tool right after tool results.
2. The last user text (string content, or its text blocks joined by newlines) has lines
   ``call:<tool_name> <json object>`` (the JSON is optional, default ``{}``) outside fenced
   code blocks (a fenced block, such as a trigger's payload, is data): every such line
   whose tool is offered becomes a ``tool_use`` block (several lines: parallel calls), after a
   text block ``Calling <a>, <b>.``; stop reason ``tool_use``. Lines naming a tool that is not
   offered, or with arguments that are not a JSON object, are listed as
   ``Not available: <names>.`` and not called; when nothing is left to call the reply is
   ``No tools called. Not available: <names>.`` with stop reason ``end_turn``.
3. The text starts with ``[TRIGGER:`` and ``run_worker`` is offered: call ``run_worker`` with
   ``{"task": <the rest of the line after "Task: ">}`` (the whole text when there is no
   ``Task: ``).
4. ``ask_user`` is offered and the text contains ``ask me`` (any case): call ``ask_user`` with
   ``{"question": "What would you like me to do next?"}``.
5. Otherwise a text reply, stop reason ``end_turn``:
   ``[offline model] (as <first line of the system prompt>) Message #<n> of this conversation.
   You said: "<text>". Previous: "<previous user text>".`` where ``n`` counts the user messages
   that carry text (tool-result-only messages do not count); the ``(as ...)`` part is left out
   without a system prompt, the ``Previous`` part when ``n`` is 1. Echoed texts are cut to 500
   characters.

Tool-use ids are ``toolu_off_<n>_<index>``, where ``n`` is the number of messages it was given,
or one more than the ``n`` of the newest such id among them if that is larger. Deterministic,
and never the id of a call still in the conversation it sees, even when that is a window cut
out of a longer one (the same window length can come back; the newest id only grows).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any

from hive_server.llm.base import StreamItem, TextDelta, ToolSpec, TurnResult, Usage

ASK_QUESTION = "What would you like me to do next?"
_OWN_ID = re.compile(r"toolu_off_(\d+)_\d+")
# A fenced block (``` or longer, closed by the same fence) is data, never instructions.
_FENCED = re.compile(r"^(`{3,})[^\n]*\n.*?^\1[ \t]*$", re.MULTILINE | re.DOTALL)
_CALL_LINE = re.compile(r"^[ \t]*call:([A-Za-z0-9_-]+)[ \t]*(.*?)[ \t]*$", re.MULTILINE)
Call = tuple[str, dict[str, Any]]
_RESULT_CHARS = 200
_ECHO_CHARS = 500


class OfflineClient:
    """``LLMClient`` that answers by the rules in this module's docstring."""

    provider = "offline"

    def __init__(self, default_model: str = "offline-1", chunk_words: int = 3) -> None:
        self.default_model = default_model
        self._chunk_words = max(1, chunk_words)

    async def stream_turn(self, *, system: str, messages: list[dict[str, Any]],
                          tools: list[ToolSpec], model: str | None = None,
                          max_tokens: int = 4096) -> AsyncIterator[StreamItem]:
        text, calls = reply(system, messages, {tool.name for tool in tools})
        for chunk in _chunks(text, self._chunk_words):
            await asyncio.sleep(0)
            yield TextDelta(chunk)
        content: list[dict[str, Any]] = [{"type": "text", "text": text}]
        serial = _next_serial(messages)
        content += [{"type": "tool_use", "id": f"toolu_off_{serial}_{index}",
                     "name": name, "input": args} for index, (name, args) in enumerate(calls)]
        usage = Usage(_words(system) + _words(json.dumps(messages[-1:])) + 4 * len(messages),
                      _words(text) + sum(_words(json.dumps(args)) for _, args in calls))
        yield TurnResult(content=content, stop_reason="tool_use" if calls else "end_turn",
                         usage=usage, model=self.default_model)

    async def aclose(self) -> None:
        return None


def reply(system: str, messages: list[dict[str, Any]],
          tools: set[str]) -> tuple[str, list[Call]]:
    """The reply text and the tool calls ``(name, input)`` for one turn."""
    if messages and messages[-1].get("role") == "user" and _tool_results(messages[-1]):
        return _summarise_results(messages), []
    texts = _UserTexts(messages)
    text = texts.last
    instructions = _FENCED.sub("", text)
    if _CALL_LINE.search(instructions):
        return _explicit_calls(instructions, tools)
    if text.startswith("[TRIGGER:") and "run_worker" in tools:
        return _calling([("run_worker", {"task": _task_of(text)})])
    if "ask_user" in tools and "ask me" in text.lower():
        return _calling([("ask_user", {"question": ASK_QUESTION})])
    return _echo(system, texts), []


def _next_serial(messages: list[dict[str, Any]]) -> int:
    """The ``n`` for this turn's tool-use ids (see the module docstring)."""
    for message in reversed(messages):
        for use_id in reversed(list(_tool_names(message))):
            match = _OWN_ID.fullmatch(str(use_id))
            if match:
                return max(len(messages), int(match.group(1)) + 1)
    return len(messages)


def _summarise_results(messages: list[dict[str, Any]]) -> str:
    names = _tool_names(messages[-2]) if len(messages) > 1 else {}
    lines = []
    for result in _tool_results(messages[-1]):
        name = names.get(result.get("tool_use_id"), "unknown")
        verb = "failed" if result.get("is_error") else "returned"
        lines.append(f"Tool {name} {verb}: {_result_text(result)[:_RESULT_CHARS]}")
    return "\n".join(lines)


def _explicit_calls(text: str, tools: set[str]) -> tuple[str, list[Call]]:
    calls, refused = [], []
    for name, raw in _CALL_LINE.findall(text):
        args = _json_object(raw)
        if name in tools and args is not None:
            calls.append((name, args))
        else:
            refused.append(name)
    note = f"Not available: {', '.join(refused)}." if refused else ""
    if not calls:
        return f"No tools called. {note}", []
    said, calls = _calling(calls)
    return f"{said} {note}".strip(), calls


def _calling(calls: list[Call]) -> tuple[str, list[Call]]:
    return f"Calling {', '.join(name for name, _ in calls)}.", calls


def _echo(system: str, texts: _UserTexts) -> str:
    persona = next((line.strip() for line in system.splitlines() if line.strip()), "")
    parts = ["[offline model]"]
    if persona:
        parts.append(f"(as {_cut(persona)})")
    parts.append(f'Message #{texts.count} of this conversation. You said: "{_cut(texts.last)}".')
    if texts.previous is not None:
        parts.append(f'Previous: "{_cut(texts.previous)}".')
    return " ".join(parts)


def _task_of(text: str) -> str:
    marker = text.find("Task: ")
    if marker < 0:
        return text
    return text[marker + len("Task: "):].split("\n", 1)[0].strip()


class _UserTexts:
    """How many user turns carry text, and the last two texts (read from the end)."""

    def __init__(self, messages: list[dict[str, Any]]):
        self.count = sum(1 for m in messages
                         if m.get("role") == "user" and _has_text(m.get("content")))
        recent: list[str] = []
        for message in reversed(messages):
            if len(recent) == 2:
                break
            if message.get("role") == "user" and (text := _text_of(message.get("content"))):
                recent.append(text)
        self.last = recent[0] if recent else ""
        self.previous = recent[1] if len(recent) > 1 else None


def _has_text(content: Any) -> bool:
    if isinstance(content, str):
        return bool(content)
    return isinstance(content, list) and any(
        isinstance(b, dict) and b.get("type") == "text" and b.get("text") for b in content)


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(b.get("text", "") for b in content
                         if isinstance(b, dict) and b.get("type") == "text" and b.get("text"))
    return ""


def _tool_results(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    if not isinstance(content, list):
        return []
    return [b for b in content if isinstance(b, dict) and b.get("type") == "tool_result"]


def _tool_names(message: dict[str, Any]) -> dict[str, str]:
    content = message.get("content")
    if message.get("role") != "assistant" or not isinstance(content, list):
        return {}
    return {b.get("id"): b.get("name", "unknown") for b in content
            if isinstance(b, dict) and b.get("type") == "tool_use"}


def _result_text(result: dict[str, Any]) -> str:
    content = result.get("content", "")
    return _text_of(content) if isinstance(content, list) else str(content)


def _json_object(raw: str) -> dict[str, Any] | None:
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _chunks(text: str, words: int) -> list[str]:
    pieces = re.findall(r"\s*\S+", text)
    if not pieces:
        return [text] if text else []
    chunks = ["".join(pieces[i:i + words]) for i in range(0, len(pieces), words)]
    chunks[-1] += text[len("".join(pieces)):]
    return chunks


def _words(text: str) -> int:
    return len(text.split())


def _cut(text: str) -> str:
    return text if len(text) <= _ECHO_CHARS else text[:_ECHO_CHARS] + "…"
