"""A session's workspace over HTTP, live and cold: the listing, downloads, and every way out
of the workspace refused (``..``, absolute paths, ``~``, symlinks, percent-encoding)."""

from __future__ import annotations

import os

import pytest
from yarl import URL

from tests.conftest import create_session

SECRET = "top secret outside the workspace"


@pytest.fixture
async def workspace(client, settings, tmp_path):
    """Session ``s`` with files, a folder, a symlink inside and symlinks leading out."""
    await create_session(client, session_id="s")
    root = settings.home / "sessions" / "s" / "workspace"
    (root / "notes").mkdir(parents=True)
    (root / "report.md").write_text("# Report\n")
    (root / "notes" / "day one.txt").write_text("first day")
    (root / "page.html").write_text("<script>alert(1)</script>")
    (tmp_path / "outside.txt").write_text(SECRET)
    os.symlink(root / "report.md", root / "link-in")
    os.symlink(tmp_path / "outside.txt", root / "link-out")
    os.symlink(tmp_path, root / "notes" / "dir-out")
    os.mkfifo(root / "pipe")
    return root


async def test_the_listing_shows_files_folders_and_symlinks_without_following_them(
        client, workspace):
    resp = await client.get("/api/sessions/s/files")
    assert resp.status == 200
    listing = await resp.json()
    assert listing["session_id"] == "s" and listing["truncated"] is False
    kinds = {e["path"]: (e["type"], e["size"]) for e in listing["entries"]}
    assert kinds == {
        "link-in": ("symlink", None), "link-out": ("symlink", None),
        "notes": ("dir", None), "notes/day one.txt": ("file", 9),
        "notes/dir-out": ("symlink", None), "page.html": ("file", 25),
        "pipe": ("other", None), "report.md": ("file", 9),
    }
    assert [e["path"] for e in listing["entries"]] == sorted(kinds)
    assert "outside.txt" not in str(listing)


async def test_a_file_downloads_as_an_attachment(client, workspace):
    resp = await client.get("/api/sessions/s/files/notes/day%20one.txt")
    assert resp.status == 200 and await resp.read() == b"first day"
    assert resp.headers["Content-Disposition"] == "attachment; filename*=UTF-8''day%20one.txt"
    assert resp.headers["Content-Length"] == "9"
    html = await client.get("/api/sessions/s/files/page.html")
    assert html.headers["Content-Type"] == "application/octet-stream"
    assert html.headers["X-Content-Type-Options"] == "nosniff"
    inside = await client.get("/api/sessions/s/files/link-in")
    assert inside.status == 200 and await inside.read() == b"# Report\n"


ATTACKS = {
    "dotdot": "../meta.json",
    "dotdot-deep": "notes/../../meta.json",
    "encoded-dotdot": "%2e%2e/meta.json",
    "encoded-slash": "..%2Fmeta.json",
    "double-encoded": "notes%2F..%2F..%2Fmeta.json",
    "absolute": "%2Fetc%2Fpasswd",
    "home": "~/outside.txt",
    "symlink-file": "link-out",
    "symlink-dir": "notes/dir-out/outside.txt",
    "nul": "report.md%00.txt",
}


@pytest.mark.parametrize("path", ATTACKS.values(), ids=ATTACKS.keys())
async def test_no_path_leads_out_of_the_workspace(client, workspace, path):
    resp = await client.get(URL(f"/api/sessions/s/files/{path}", encoded=True))
    body = await resp.text()
    assert resp.status in (400, 404), body
    assert SECRET not in body and "queen_id" not in body
    if resp.status == 400:
        assert (await resp.json())["code"] == "invalid_path"


async def test_missing_files_folders_and_fifos(client, workspace):
    missing = await client.get("/api/sessions/s/files/nope.txt")
    assert missing.status == 404 and (await missing.json())["code"] == "file_not_found"
    folder = await client.get("/api/sessions/s/files/notes")
    assert folder.status == 400 and (await folder.json())["code"] == "not_a_file"
    fifo = await client.get("/api/sessions/s/files/pipe")  # opening it must not block
    assert fifo.status == 400 and (await fifo.json())["code"] == "not_a_file"
    unknown = await client.get("/api/sessions/nobody/files")
    assert unknown.status == 404 and (await unknown.json())["code"] == "session_not_found"
    bad = await client.get("/api/sessions/bad%20id/files")
    assert bad.status in (400, 404)


async def test_a_cold_session_lists_and_downloads_too(make_client, client, settings, workspace):
    await client.close()
    cold = await make_client(settings)
    assert (await cold.delete("/api/sessions/s")).status == 200  # resumed at start: stop it
    listing = await (await cold.get("/api/sessions/s/files")).json()
    assert "report.md" in {e["path"] for e in listing["entries"]}
    resp = await cold.get("/api/sessions/s/files/report.md")
    assert resp.status == 200 and await resp.read() == b"# Report\n"


async def test_a_session_without_a_workspace_lists_nothing(client):
    await create_session(client, session_id="empty")
    listing = await (await client.get("/api/sessions/empty/files")).json()
    assert listing["entries"] == [] and listing["truncated"] is False
