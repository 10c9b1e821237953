// Page helpers for drive.mjs: what is on screen, typing into Hive's composer, and the step runner
// (each step gets notes, a screenshot and a PASS/FAIL/SKIP line).
import path from "node:path";
import { cur, ms, rec } from "./record.mjs";

export const sleep = (n) => new Promise((r) => setTimeout(r, n));

export async function screenState(page) {
  return page.evaluate(() => {
    const txt = (el) => (el?.innerText || "").replace(/\s+/g, " ").trim();
    const banners = [...document.querySelectorAll('[role="status"], [role="alert"]')]
      .map(txt).filter(Boolean);
    const body = document.body.innerText || "";
    const flags = [];
    for (const re of [/cannot reach server/i, /degraded/i, /reconnecting/i, /connectivity issues/i,
      /could not load configuration/i, /runtime unreachable/i, /connecting to agent/i,
      /something went wrong/i, /failed to/i, /error:/i, /session (?:not found|gone)/i,
      /loading configuration/i, /starting up/i]) {
      const m = body.match(re);
      if (m) flags.push(m[0]);
    }
    const queued = [...document.querySelectorAll("span, div")]
      .filter((e) => e.childElementCount === 0 && e.textContent.trim() === "queued").length;
    const composer = document.querySelector("[data-placeholder]");
    return {
      url: location.href.replace(/token=[^&#]+/, "token=…"),
      banners, flags, queued,
      composer: composer ? { placeholder: composer.getAttribute("data-placeholder"),
        editable: composer.getAttribute("contenteditable") === "true" } : null,
      sidebar: txt(document.querySelector("aside")).slice(0, 600),
      main: txt(document.querySelector("main") || document.body).slice(-700),
    };
  });
}

export const sidebarText = (page) => page.evaluate(() => document.querySelector("aside")?.innerText || "");

// Chat bubbles outside the sidebar: user bubbles whose whole text is `msg`, and the offline
// model's replies echoing it.
export async function countMessages(page, msg) {
  return page.evaluate((m) => {
    const leaf = (pred) => [...document.querySelectorAll("body *")].filter((e) => {
      if (e.closest("aside")) return false;
      if (!pred(e.textContent || "")) return false;
      return ![...e.children].some((c) => pred(c.textContent || ""));
    });
    const replies = leaf((t) => t.includes(`You said: "${m}"`)).map((e) => e.textContent.trim());
    // A bubble holding only the start of a reply: the reply was split across two bubbles.
    const partial = replies.length ? leaf((t) => {
      const x = t.trim();
      return x.length >= 5 && replies.some((r) => r !== x && r.startsWith(x));
    }).length : 0;
    return { user: leaf((t) => t.trim() === m).length, queen: replies.length, partial };
  }, msg);
}

// Hive's first-visit product tour covers the page; close it like a user would (its X).
export const tour = { closed: 0 };
export async function dismissTour(page) {
  const x = page.locator('button[aria-label="Skip tour"]');
  if (await x.count().catch(() => 0)) {
    await x.first().click({ timeout: 2000 }).then(() => { tour.closed += 1; }).catch(() => {});
  }
}

export async function waitComposerReady(page, timeout = 20000) {
  const deadline = Date.now() + timeout;
  let last = null;
  while (Date.now() < deadline) {
    await dismissTour(page);
    last = await page.evaluate(() => {
      const c = document.querySelector("form [data-placeholder]");
      return c ? { ph: c.getAttribute("data-placeholder"), ed: c.getAttribute("contenteditable") } : null;
    });
    if (last && last.ed === "true" && !/connecting/i.test(last.ph)) return last;
    await sleep(250);
  }
  throw new Error(`composer not ready after ${timeout}ms (last: ${JSON.stringify(last)})`);
}

export async function send(page, text) {
  await waitComposerReady(page);
  await dismissTour(page);
  await page.locator("form [data-placeholder][contenteditable]").last().click({ timeout: 5000 });
  await page.keyboard.type(text, { delay: 5 });
  await sleep(150);
  await page.keyboard.press("Enter");
}

export async function waitText(page, needle, timeout = 20000) {
  await page.waitForFunction(
    (n) => [...document.querySelectorAll("body *")].some(
      (e) => !e.closest("aside") && (e.textContent || "").includes(n)),
    needle, { timeout, polling: 250 });
}

// Runs one step unless a state it needs is missing; records notes, the screen and a screenshot.
export function makeStepper(page, shots, state, stepTimeout) {
  let stepNo = 0;
  return async function step(name, fn, needs = []) {
    stepNo += 1;
    cur.step = name;
    const started = ms();
    const result = { n: stepNo, name, ok: false, notes: [], ms: 0 };
    const missing = needs.filter((k) => !state[k]);
    if (missing.length) {
      result.skipped = `needs ${missing.join(", ")}`;
      rec.steps.push(result);
      console.error(`[SKIP] ${stepNo} ${name} — ${result.skipped}`);
      return false;
    }
    const note = (s) => result.notes.push(s);
    let timer;
    try {
      await Promise.race([
        fn(note),
        new Promise((_, reject) => { timer = setTimeout(() => reject(new Error("step hard timeout")), stepTimeout); }),
      ]);
      result.ok = true;
    } catch (e) {
      result.error = String(e.message || e).split("\n")[0].slice(0, 300);
    } finally {
      clearTimeout(timer);
    }
    await sleep(500);
    try { result.screen = await screenState(page); } catch (e) { result.screen = { error: String(e) }; }
    const shot = path.join(shots, `${String(stepNo).padStart(2, "0")}-${name}.png`);
    try { await page.screenshot({ path: shot }); result.shot = shot; } catch { /* page gone */ }
    result.ms = ms() - started;
    rec.steps.push(result);
    console.error(`[${result.ok ? "PASS" : "FAIL"}] ${stepNo} ${name} (${result.ms}ms)`
      + `${result.error ? " — " + result.error : ""}`);
    return result.ok;
  };
}
