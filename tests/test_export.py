"""GET /api/sessions/{id}/export: the transcript of a live or cold session in every format
(golden files), HTML and Markdown that never carry the HTML they quote, a download streamed
chunk by chunk.

Regenerate the golden files (tests/golden/export_cold1.*) only for a deliberate change of a
format: HIVE_UPDATE_GOLDEN=1 pytest tests/test_export.py, then read the diff."""

from __future__ import annotations

import os
from html.parser import HTMLParser
from pathlib import Path

import pytest

from hive_server import keys
from hive_server.models.event_data import ClientInputReceived
from hive_server.models.events import Event
from hive_server.services.sessions.export import CHUNK_BYTES, open_export
from tests.conftest import create_session
from tests.queen_support import chat, open_stream, until
from tests.session_log import BAD_LINE, IMG, SCRIPT, SESSION, write_session

GOLDEN = Path(__file__).parent / "golden"
FORMATS = {"markdown": ("md", "text/markdown"), "text": ("txt", "text/plain"),
           "html": ("html", "text/html"), "jsonl": ("jsonl", "application/x-ndjson")}
HTML_TAGS = {"html", "head", "meta", "title", "style", "body", "h1", "dl", "dt", "dd", "div",
             "pre", "details", "summary", "code"}
HTML_ATTRIBUTES = {"lang", "charset", "class"}


async def export(client, session_id: str, fmt: str) -> tuple[str, dict]:
    resp = await client.get(f"/api/sessions/{session_id}/export", params={"format": fmt})
    assert resp.status == 200, await resp.text()
    return await resp.text(), dict(resp.headers)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
async def test_a_cold_session_exports_in_every_format_as_its_golden_file(make_client, settings,
                                                                         fmt):
    write_session(settings.home)
    client = await make_client(settings)
    body, headers = await export(client, SESSION, fmt)
    extension, media = FORMATS[fmt]
    golden = GOLDEN / f"export_{SESSION}.{extension}"
    if os.environ.get("HIVE_UPDATE_GOLDEN"):
        golden.write_text(body, encoding="utf-8")
    assert body == golden.read_text(encoding="utf-8")
    assert headers["Content-Disposition"] == f'attachment; filename="{SESSION}.{extension}"'
    assert headers["Content-Type"] == f"{media}; charset=utf-8"
    assert headers["Transfer-Encoding"] == "chunked" and "Content-Length" not in headers
    assert "default-src 'none'" in headers["Content-Security-Policy"]


async def test_jsonl_is_the_stored_lines_without_the_bad_ones(make_client, settings):
    folder = write_session(settings.home)
    client = await make_client(settings)
    body, _ = await export(client, SESSION, "jsonl")
    stored = (folder / "events.jsonl").read_bytes().decode("utf-8", "replace")
    assert body == stored.replace(BAD_LINE.decode("utf-8", "replace") + "\n", "")
    assert len(body.splitlines()) == 25


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.attributes: set[str] = set()
        self.text = ""

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.add(tag)
        self.attributes |= {name for name, _ in attrs}

    def handle_data(self, data: str) -> None:
        self.text += data


async def test_html_quotes_injection_attempts_as_text_and_loads_nothing(make_client, settings):
    write_session(settings.home)
    client = await make_client(settings)
    body, headers = await export(client, SESSION, "html")
    page = Tags()
    page.feed(body)
    assert page.tags <= HTML_TAGS and page.attributes <= HTML_ATTRIBUTES
    for attempt in (SCRIPT, IMG, "Daily <digest>", "<b>", "count <lines>"):
        assert attempt in page.text  # shown as typed, never parsed as markup
    assert "<script" not in body.lower() and "<img" not in body.lower()
    assert "script-src" not in headers["Content-Security-Policy"]


async def test_markdown_escapes_html_in_every_text(make_client, settings):
    write_session(settings.home)
    client = await make_client(settings)
    body, _ = await export(client, SESSION, "markdown")
    assert "<script" not in body.lower() and "<img" not in body.lower()
    assert "&lt;script&gt;" in body and "Daily &lt;digest&gt;" in body


@pytest.mark.parametrize("query", ["format=pdf", "format=", "format=HTML"])
async def test_an_unknown_format_is_400(make_client, settings, query):
    write_session(settings.home)
    client = await make_client(settings)
    resp = await client.get(f"/api/sessions/{SESSION}/export?{query}")
    assert resp.status == 400 and (await resp.json())["code"] == "invalid_format"


async def test_export_of_an_unknown_session_is_404(client):
    resp = await client.get("/api/sessions/nope/export")
    assert resp.status == 404 and (await resp.json())["code"] == "session_not_found"


async def test_a_live_session_exports_what_it_logged(client, settings):
    await create_session(client, session_id="s")
    stream = await open_stream(client, "s")
    await chat(client, "s", "call:get_time {}\n<b>now</b>")
    await until(stream, "execution_completed")
    body, headers = await export(client, "s", "markdown")
    assert headers["Content-Disposition"] == 'attachment; filename="s.md"'
    assert "**User**" in body and "&lt;b&gt;now&lt;/b&gt;" in body
    assert "<details><summary>tool get_time</summary>" in body and "**Queen**" in body
    jsonl, _ = await export(client, "s", "jsonl")
    log = (settings.home / "sessions" / "s" / "events.jsonl").read_text()
    assert log.startswith(jsonl) and jsonl.count("\n") >= 6


def write_big_log(home: Path, session_id: str, count: int) -> int:
    write_session(home, session_id)
    path = home / "sessions" / session_id / "events.jsonl"
    with path.open("ab") as fh:
        for seq in range(26, 26 + count):
            payload = ClientInputReceived(content=f"message {seq} " + "x" * 200)
            fh.write(Event(seq=seq, type=payload.TYPE.value, session_id=session_id,
                           data=payload.model_dump()).to_json() + b"\n")
    return path.stat().st_size


@pytest.mark.parametrize("fmt", ["jsonl", "html"])
async def test_a_large_log_is_written_chunk_by_chunk(make_client, settings, fmt):
    size = write_big_log(settings.home, "big", 4000)  # about 1 MB: 18 chunks or so
    client = await make_client(settings)
    found = await open_export(client.app[keys.SESSIONS], "big", fmt)
    sizes = [len(chunk) async for chunk in found.chunks]
    assert sum(sizes) > size / 2 and len(sizes) > size / CHUNK_BYTES / 2
    assert max(sizes) < CHUNK_BYTES + 4096  # a chunk never holds more than one line past it
    resp = await client.get("/api/sessions/big/export", params={"format": fmt})
    assert resp.headers["Transfer-Encoding"] == "chunked"
    received, pieces = 0, 0
    async for piece in resp.content.iter_chunked(CHUNK_BYTES):
        received, pieces = received + len(piece), pieces + 1
    assert received == sum(sizes) and pieces > 1


async def test_the_export_is_documented_with_its_formats_and_media_types(client):
    spec = await (await client.get("/api/openapi.json")).json()
    operation = spec["paths"]["/api/sessions/{session_id}/export"]["get"]
    assert set(operation["responses"]["200"]["content"]) == {
        "text/markdown", "text/plain", "text/html", "application/x-ndjson"}
    (param,) = [p for p in operation["parameters"] if p["in"] == "query"]
    assert param["name"] == "format"
    assert param["schema"]["enum"] == ["markdown", "text", "html", "jsonl"]
