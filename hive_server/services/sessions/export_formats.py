"""How a transcript is written: Markdown, plain text and HTML (``jsonl`` is the log's own lines,
see ``services/sessions/export.py``).

Each format writes a header from the session's meta, one piece of text per entry and a
footer, so an export is written entry by entry. HTML escapes every text it writes (quotes
included) and is self-contained: inline CSS, no script, no external resource. Tool calls are
collapsed (``<details>``) with their input and result cut short; Markdown uses the same
``<details>`` block (rendered collapsed by GitHub and most viewers) and escapes ``<>&`` in
every text, so no typed or tool-made HTML is ever rendered.
"""

from __future__ import annotations

import html

from hive_server.models.handoff import Handoff
from hive_server.models.session import SessionMeta
from hive_server.services.sessions.transcript import Entry, Message, Summary, ToolCall

LABELS = {"user": "User", "queen": "Queen", "answer": "User (answer)", "trigger": "Trigger",
          "question": "Queen asks", "worker": "Worker", "note": "Note"}
CSS = """body{font:15px/1.5 system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;
color:#1d1d1f;background:#fff}h1{font-size:1.4rem}dl{display:grid;grid-template-columns:auto 1fr;
gap:.1rem 1rem;color:#555}dd{margin:0}.entry{margin:1rem 0;padding:.6rem .9rem;border-radius:8px;
background:#f4f4f6}.user,.answer{background:#e8f0fe}.trigger{background:#fff4e0}
.note{background:#fdecea}.head{font-size:.8rem;color:#666}pre{white-space:pre-wrap;margin:.3rem 0;
font:inherit}details{margin:.4rem 0;padding:.3rem .9rem;border-left:3px solid #bbb}
summary{cursor:pointer;font-family:ui-monospace,monospace;font-size:.85rem}
.error summary{color:#b3261e}code{font-family:ui-monospace,monospace;font-size:.85rem}"""


class Format:
    """A format: a header from the meta, one piece per entry (a message, a tool call or the
    handoff notes of a stop), a footer."""

    extension = media_type = ""

    def header(self, meta: SessionMeta) -> str:
        raise NotImplementedError

    def entry(self, entry: Entry) -> str:
        if isinstance(entry, Summary):
            return self.handoff(entry.handoff)
        if isinstance(entry, ToolCall):
            return self.tool(entry)
        return self.message(entry)

    def message(self, entry: Message) -> str:
        raise NotImplementedError

    def tool(self, call: ToolCall) -> str:
        raise NotImplementedError

    def handoff(self, handoff: Handoff) -> str:
        raise NotImplementedError

    def footer(self) -> str:
        return ""


def when(at: str) -> str:
    """``2026-11-29 10:00:00`` from an ISO 8601 UTC timestamp."""
    return at[:19].replace("T", " ")


def facts(meta: SessionMeta) -> list[tuple[str, str]]:
    return [(name, value) for name, value in (
        ("Session", meta.session_id), ("Agent", meta.agent_id or ""),
        ("Queen", meta.queen_name), ("Model", meta.model), ("Created", when(meta.created_at)))
        if value]


def label(entry: Message) -> str:
    """Who speaks: ``User``, ``Worker default-1 (default)``, ``Trigger Daily (timer)``..."""
    return LABELS[entry.role] + (f" {entry.title}" if entry.title else "")


def _result(call: ToolCall) -> str:
    if call.result is None:
        return "(no result: the call never finished)"
    return ("error: " if call.is_error else "") + call.result


def _who(call: ToolCall) -> str:
    return "" if call.by == "queen" else f" ({call.by})"


class Markdown(Format):
    """Text is written as it was typed, with ``<``, ``>`` and ``&`` escaped: a viewer shows
    them as typed and never renders them as HTML."""

    extension, media_type = "md", "text/markdown"

    def header(self, meta: SessionMeta) -> str:
        lines = "".join(f"- {name}: {_md(value)}\n" for name, value in facts(meta))
        return f"# {_md(meta.title or meta.session_id)}\n\n{lines}\n"

    def message(self, entry: Message) -> str:
        return f"**{_md(label(entry))}** \u00b7 {when(entry.at)}\n\n{_md(entry.text)}\n\n"

    def tool(self, call: ToolCall) -> str:
        return (f"<details><summary>tool {_md(call.name + _who(call))}</summary>\n\n"
                f"input: {_md(call.input)}\n\nresult: {_md(_result(call))}\n\n</details>\n\n")

    def handoff(self, handoff: Handoff) -> str:
        return _md(handoff.to_markdown()) + "\n"


def _md(text: str) -> str:
    return html.escape(text, quote=False)


class Text(Format):
    extension, media_type = "txt", "text/plain"

    def header(self, meta: SessionMeta) -> str:
        lines = "".join(f"{name}: {value}\n" for name, value in facts(meta))
        return f"{meta.title or meta.session_id}\n\n{lines}\n"

    def message(self, entry: Message) -> str:
        body = entry.text.replace("\n", "\n    ")
        return f"[{when(entry.at)}] {label(entry)}:\n    {body}\n\n"

    def tool(self, call: ToolCall) -> str:
        return (f"[{when(call.at)}] tool {call.name}{_who(call)}({call.input})\n"
                f"    -> {_result(call)}\n\n")

    def handoff(self, handoff: Handoff) -> str:
        return handoff.to_text() + "\n"


class Html(Format):
    extension, media_type = "html", "text/html"

    def header(self, meta: SessionMeta) -> str:
        rows = "".join(f"<dt>{_esc(name)}</dt><dd>{_esc(value)}</dd>"
                       for name, value in facts(meta))
        title = _esc(meta.title or meta.session_id)
        return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                f"<title>{title}</title><style>{CSS}</style></head>\n<body><h1>{title}</h1>"
                f"<dl>{rows}</dl>\n")

    def message(self, entry: Message) -> str:
        return (f"<div class=\"entry {entry.role}\"><div class=\"head\">"
                f"{_esc(label(entry))} \u00b7 {_esc(when(entry.at))}</div>"
                f"<pre>{_esc(entry.text)}</pre></div>\n")

    def tool(self, call: ToolCall) -> str:
        kind = " class=\"error\"" if call.is_error else ""
        return (f"<details{kind}><summary>tool {_esc(call.name + _who(call))} \u00b7 "
                f"{_esc(when(call.at))}</summary><div>input: <code>{_esc(call.input)}</code>"
                f"</div><div>result: <code>{_esc(_result(call))}</code></div></details>\n")

    def handoff(self, handoff: Handoff) -> str:
        return f"<div class=\"entry handoff\"><pre>{_esc(handoff.to_text())}</pre></div>\n"

    def footer(self) -> str:
        return "</body></html>\n"


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


FORMATS: dict[str, type[Format]] = {"markdown": Markdown, "text": Text, "html": Html}
