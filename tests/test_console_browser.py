"""The built-in console in real headless Chromium against a real server process with the
offline model: the token URL, a session on an example agent, streamed text, a tool row, an
``ask_user`` answered, a trigger run and its fire, a reload without duplicates, a server
restart and a resume. No request leaves loopback, the page logs no error; each view is
saved as a screenshot under the test's tmp dir (and the chat to ``$HIVE_CONSOLE_SCREENSHOT``
when set: docs/console.png is made that way).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
from pathlib import Path

import aiohttp
import pytest

from tests.console_support import Guard, free_port, launch, launcher, open_page, skip_reason
from tests.server_process import ServerProcess

REASON = skip_reason()
pytestmark = [pytest.mark.skipif(REASON is not None, reason=REASON or ""),
              pytest.mark.timeout(120), pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[1]
BERLIN = 'call:get_time {"timezone": "Europe/Berlin"}'


def serve(tmp_path: Path, port: int) -> ServerProcess:
    return ServerProcess(tmp_path, "--port", str(port), "--token-file", str(tmp_path / "token"))


@pytest.fixture
def folders(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "agents" / "daily_notes", tmp_path / "agents" / "daily_notes")
    (tmp_path / "agents" / "broken").mkdir()
    (tmp_path / "agents" / "broken" / "agent.json").write_text("{ not json")
    shutil.copytree(ROOT / "queens", tmp_path / "queens")
    return tmp_path


async def chat_items(page) -> list[str]:
    """Every item of the chat as one line: its kind and its text."""
    return await page.eval_on_selector_all(
        ".chat-log > *", "els => els.map(e => e.className.split(' ')[0] + ': ' +"
        " (e.querySelector('.text, summary, .q-text') || e).textContent.trim())")


async def send(page, text: str) -> None:
    box = page.locator(".composer-input")
    await box.fill(text)
    await box.press("Enter")


async def shoot(page, tmp_path: Path, name: str) -> Path:
    path = tmp_path / "screenshots" / f"{name}.png"
    await page.screenshot(path=str(path))
    return path


async def test_console_end_to_end(tmp_path, folders):
    port = free_port()
    server = await serve(tmp_path, port).start()
    guard = Guard()
    try:
        async with launcher() as playwright:
            browser = await launch(playwright)
            page = await open_page(browser, guard)
            await drive(page, server, guard, tmp_path)
            await browser.close()
    finally:
        await server.kill_quietly()
    assert guard.outside == [], "requests left loopback"
    assert guard.errors == [], "the page logged errors"


async def drive(page, server: ServerProcess, guard: Guard, tmp_path: Path) -> None:
    # The token URL sets the cookie and leaves the address bar.
    response = await page.goto(f"{server.url}?token={server.token}")
    assert response is not None and response.ok
    assert page.url == server.url
    headers = await response.all_headers()
    assert "default-src 'self'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    cookies = await page.context.cookies()
    assert [c["name"] for c in cookies] == ["hive_token"] and cookies[0]["httpOnly"]
    await page.get_by_role("heading", name="Sessions").wait_for()
    await page.locator("#conn[data-state=ok]").wait_for()

    # Agents: the example agent and a broken folder with its error.
    await page.get_by_role("link", name="Agents").click()
    await page.locator("[data-agent=daily_notes]").wait_for()
    assert "invalid" in await page.locator("[data-agent=broken]").inner_text()
    readme = page.locator("[data-agent=daily_notes] details.readme")
    await readme.locator("summary").click()
    await readme.locator("pre", has_text="Capture notes during the day").wait_for()
    assert (await readme.locator("pre").inner_text()).startswith("# Daily Notes")  # as text
    await shoot(page, tmp_path, "agents")

    # Start a session with daily_notes from its card.
    await page.locator("[data-agent=daily_notes]").get_by_role(
        "link", name="Start a session with this agent").click()
    await page.locator("form.new-session select[name=agent]").wait_for()
    assert await page.locator("select[name=agent]").input_value() == "daily_notes"
    await page.get_by_role("button", name="Start session").click()
    await page.wait_for_url("**/#/s/*")
    session_id = page.url.rsplit("/", 1)[-1]
    await page.locator(".badge[data-state=live]").wait_for()
    await page.locator(".note", has_text="Colony Daily Notes loaded").wait_for()

    # A chat, its answer streamed in (the bubble grows before it is complete).
    await page.evaluate("""() => {
        window.__seen = [];
        new MutationObserver(() => {
            for (const t of document.querySelectorAll('.msg.queen .text'))
                window.__seen.push(t.textContent);
        }).observe(document.querySelector('.chat-log'),
                   {subtree: true, childList: true, characterData: true});
    }""")
    await send(page, "Hello, queen")
    answer = page.locator(".msg.queen:not(.streaming) .text", has_text='You said: "Hello, queen"')
    await answer.wait_for()
    final = await answer.inner_text()
    seen = await page.evaluate("window.__seen")
    assert any(s and s != final and final.startswith(s) for s in seen), seen
    assert await page.locator(".composer-input").input_value() == ""

    # Shift+Enter is a new line, not a send.
    box = page.locator(".composer-input")
    await box.fill("first line")
    await box.press("Shift+Enter")
    await box.press_sequentially("second line")
    assert await box.input_value() == "first line\nsecond line"
    await box.fill("")

    # A tool call: its row, collapsible, with its input and result.
    await send(page, BERLIN)
    tool = page.locator("details.row.tool[data-tool=get_time]")
    await tool.locator(".status.done").wait_for()
    await tool.locator("summary").click()
    body = await tool.locator(".row-body").inner_text()
    assert "Europe/Berlin" in body and ("+01:00" in body or "+02:00" in body)
    await page.locator(".msg.queen .text", has_text="Tool get_time returned").wait_for()

    # ask_user: the question, answered from the composer.
    await send(page, "Please ask me what to do")
    question = page.locator(".question", has_text="What would you like me to do next?")
    await question.wait_for()
    await page.locator(".session.asking").wait_for()
    await send(page, "Write the digest")
    await question.locator(".q-state", has_text="Answered").wait_for()
    await page.locator(".msg.queen .text", has_text="Tool ask_user returned: Write the digest"
                       ).wait_for()
    assert await page.locator(".usage").inner_text() != ""
    assert "token" in await page.locator(".usage").inner_text()
    await shoot(page, tmp_path, "chat")

    # A trigger: made in the form, counting down, run, its fire in the chat.
    await page.get_by_role("tab", name="Triggers").click()
    await page.get_by_role("button", name="New trigger").click()
    form = page.locator("form.trigger-form")
    await form.get_by_label("Name").fill("Morning digest")
    await form.get_by_label("Task").fill("Write the digest for today")
    await form.get_by_role("button", name="Create").click()
    card = page.locator("article.trigger", has_text="Morning digest")
    await card.locator(".countdown", has_text="next in 59 min").wait_for()
    assert "0 fires" in await card.inner_text()
    await card.get_by_role("button", name="Run now").click()
    await card.locator(".fires", has_text="1 fire").wait_for()
    await shoot(page, tmp_path, "triggers")
    await page.get_by_role("tab", name="Chat").click()
    await page.locator(".fire", has_text="Morning digest").wait_for()
    await page.locator("details.row.worker .status.done").wait_for()
    await page.locator(".msg.queen .text", has_text="Tool run_worker returned").wait_for()
    await page.eval_on_selector_all(".toast", "els => els.forEach(e => e.click())")  # dismissed
    assert await page.locator(".toast").count() == 0
    await shoot(page, tmp_path, "chat-fire")
    if target := os.environ.get("HIVE_CONSOLE_SCREENSHOT"):
        await page.screenshot(path=target)
    await page.emulate_media(color_scheme="dark")
    await shoot(page, tmp_path, "chat-dark")
    await page.emulate_media(color_scheme="light")

    # Events: filtered by type, exported as JSONL.
    await page.get_by_role("tab", name="Events").click()
    await page.get_by_label("Event type").select_option("trigger_fired")
    assert await page.locator(".events .event").count() == 1
    async with page.expect_download() as download_info:
        await page.get_by_role("button", name="Export JSONL").click()
    download = await download_info.value
    lines = (await asyncio.to_thread(Path(await download.path()).read_text)).splitlines()
    assert [json.loads(line)["type"] for line in lines] == ["trigger_fired"]
    await shoot(page, tmp_path, "events")

    # A reload: the same history, nothing twice.
    await page.get_by_role("tab", name="Chat").click()
    before = await chat_items(page)
    await page.reload()
    await page.locator(".fire", has_text="Morning digest").wait_for()
    await page.locator("details.row.worker .status.done").wait_for()
    assert await chat_items(page) == before
    assert sum("Hello, queen" in item for item in before) == 2  # the input and the echo

    # The server stops: the page says so; it starts again: the page carries on.
    guard.server_down = True
    assert await server.stop(signal.SIGTERM) == 0
    await page.locator("#banner", has_text="The server cannot be reached").wait_for()
    await shoot(page, tmp_path, "server-down")
    await server.start()
    await page.locator("#conn[data-state=ok]").wait_for(timeout=15_000)
    await page.locator(".badge[data-state=live]").wait_for(timeout=15_000)
    guard.server_down = False
    await send(page, "Back again")
    await page.locator(".msg.queen .text", has_text='You said: "Back again"').wait_for()
    items = await chat_items(page)
    assert items[:len(before)] == before
    assert sum("Hello, queen" in item for item in items) == 2

    # The session stops elsewhere: the page offers to resume it, and it resumes.
    async with aiohttp.ClientSession(headers=server.headers) as http:
        async with http.delete(f"{server.url}api/sessions/{session_id}") as resp:
            assert resp.status == 200
    notice = page.locator(".session-notice", has_text="This session is not running")
    await notice.wait_for()
    await notice.get_by_role("button", name="Resume session").click()
    await page.locator(".badge[data-state=live]").wait_for()
    await send(page, "Still there?")
    await page.locator(".msg.queen .text", has_text='You said: "Still there?"').wait_for()

    # The sessions list, and the chat on a phone.
    await page.get_by_role("link", name="Sessions").click()
    await page.locator(f"[data-session='{session_id}'] .badge.live").wait_for()
    row = page.locator(f"[data-session='{session_id}']")
    await row.get_by_role("button", name="Rename").click()
    await row.get_by_label("Session title").fill("Morning digests")
    await row.get_by_role("button", name="Save").click()
    await row.locator("strong", has_text="Morning digests").wait_for()
    await shoot(page, tmp_path, "sessions")
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.goto(f"{server.url}#/s/{session_id}")
    await page.locator(".msg.queen .text", has_text='You said: "Still there?"').wait_for()
    await page.locator(".badge[data-state=live]").wait_for()
    await page.locator("h1.session-title", has_text="Morning digests").wait_for()
    await shoot(page, tmp_path, "chat-phone")
