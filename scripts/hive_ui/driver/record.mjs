// Recording and reporting for drive.mjs: every /api response the page gets, the SSE frames it
// reads, console errors and page errors, per step; then report.json and the printed summary.
// Instrumentation only: nothing here changes what Hive's code does.
import fs from "node:fs";

export const rec = { api: [], sse: [], frames: [], console: [], pageErrors: [], failed: [], steps: [],
  warnings: [] };
export const cur = { step: "init", t0: Date.now() };
export const ms = () => Date.now() - cur.t0;

// Tees every fetch() whose Accept is text/event-stream and reports each frame (event name,
// type, seq) to the harness through window.__hiveSse.
const SSE_TAP = `(() => {
  const orig = window.fetch;
  window.fetch = async function (input, init) {
    const res = await orig.apply(this, arguments);
    try {
      const h = init && init.headers;
      const accept = h ? (h.Accept || h.accept || (h.get && h.get("Accept")) || "") : "";
      if (!String(accept).includes("text/event-stream") || !res.ok || !res.body) return res;
      const url = new URL(typeof input === "string" ? input : input.url, location.href);
      const path = url.pathname + url.search;
      const reader = res.clone().body.getReader();
      const dec = new TextDecoder();
      (async () => {
        let buf = "", ev = "message", data = [];
        for (;;) {
          const { done, value } = await reader.read();
          if (done) { window.__hiveSse && window.__hiveSse({ path, end: true }); break; }
          buf += dec.decode(value, { stream: true });
          let nl;
          while ((nl = buf.indexOf("\\n")) >= 0) {
            const line = buf.slice(0, nl).replace(/\\r$/, "");
            buf = buf.slice(nl + 1);
            if (line === "") {
              if (data.length) {
                let type = null, seq = null, extra = null;
                try { const j = JSON.parse(data.join("\\n")); type = j.type ?? null; seq = j.seq ?? null;
                  if (type === "session_snapshot" || ev === "snapshot") extra = JSON.stringify(j).slice(0, 300); } catch {}
                window.__hiveSse && window.__hiveSse({ path, event: ev, type, seq, extra });
              }
              ev = "message"; data = []; continue;
            }
            if (line.startsWith(":")) continue;
            if (line.startsWith("event:")) ev = line.slice(6).trim() || "message";
            else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
          }
        }
      })().catch(() => {});
    } catch {}
    return res;
  };
})();`;

export async function attach(page) {
  await page.exposeFunction("__hiveSse", (f) => rec.frames.push({ step: cur.step, t: ms(), ...f }));
  await page.addInitScript(SSE_TAP);
  page.on("console", (m) => {
    if (m.type() !== "error" && m.type() !== "warning") return;
    const text = m.text();
    // Hive ships verbose console.error("[hook] ...") debug traces; keep them apart.
    const debug = /^\[(hook|queen-dm|colony|session-load|sse|debug)[^\]]*\]/i.test(text);
    rec.console.push({ step: cur.step, type: m.type(), debug, text: text.slice(0, 500) });
  });
  page.on("pageerror", (e) => rec.pageErrors.push({ step: cur.step, text: String(e).slice(0, 800) }));
  page.on("requestfailed", (r) => {
    const u = new URL(r.url());
    if (!u.pathname.startsWith("/api/")) return;
    rec.failed.push({ step: cur.step, method: r.method(), path: u.pathname + u.search,
      error: r.failure()?.errorText });
  });
  page.on("response", async (r) => {
    const u = new URL(r.url());
    if (!u.pathname.startsWith("/api/")) return;
    const req = r.request();
    const ctype = r.headers()["content-type"] || "";
    const isSse = ctype.includes("text/event-stream")
      || (req.headers()["accept"] || "").includes("text/event-stream");
    const entry = { step: cur.step, t: ms(), method: req.method(), path: u.pathname + u.search,
      status: r.status(), sse: isSse };
    if (req.method() !== "GET" && req.postData()) entry.reqBody = req.postData().slice(0, 300);
    rec.api.push(entry);
    if (isSse) rec.sse.push({ step: cur.step, path: entry.path, status: r.status(), ctype });
    if (r.status() < 200 || r.status() > 299) {
      try { entry.body = (await r.text()).slice(0, 400); } catch { entry.body = "(unreadable)"; }
    }
  });
}

const norm = (p) => p.replace(/session_[A-Za-z0-9_-]+/g, "{sid}").replace(/\?.*$/, "");
function uniq(arr, key) {
  const m = new Map();
  for (const x of arr) {
    const k = key(x);
    m.set(k, { ...(m.get(k) || x), n: (m.get(k)?.n || 0) + 1 });
  }
  return [...m.values()];
}

function sseFrames() {
  const by = new Map();
  for (const f of rec.frames) {
    const k = norm(f.path);
    if (!by.has(k)) by.set(k, { path: k, frames: 0, ends: 0, types: new Map(), first: [], snapshot: null });
    const b = by.get(k);
    if (f.end) { b.ends += 1; continue; }
    b.frames += 1;
    const ty = f.event === "message" ? (f.type || "?") : `${f.event}:${f.type || ""}`;
    b.types.set(ty, (b.types.get(ty) || 0) + 1);
    if (b.first.length < 8) b.first.push(`${ty}#${f.seq ?? "-"}`);
    if (f.extra && !b.snapshot) b.snapshot = f.extra;
  }
  return [...by.values()].map((b) => ({ ...b, types: Object.fromEntries(b.types) }));
}

export function buildReport(meta) {
  const bad = rec.api.filter((a) => a.status < 200 || a.status > 299);
  return {
    ...meta, total_ms: ms(),
    steps: rec.steps.map(({ n, name, ok, error, notes, ms: t, screen, shot, skipped }) =>
      ({ n, name, ok, skipped, error, notes, ms: t, shot, banners: screen?.banners, flags: screen?.flags,
        queued: screen?.queued, composer: screen?.composer?.placeholder })),
    warnings: rec.warnings,
    non2xx: uniq(bad, (a) => `${a.method} ${norm(a.path)} ${a.status}`).map((a) => ({
      method: a.method, path: norm(a.path), status: a.status, n: a.n, body: a.body, reqBody: a.reqBody,
      first_step: a.step })),
    sse: uniq(rec.sse, (s) => `${norm(s.path)} ${s.status}`)
      .map((s) => ({ path: norm(s.path), status: s.status, n: s.n, ctype: s.ctype })),
    api_calls: uniq(rec.api, (a) => `${a.method} ${norm(a.path)} ${a.status}`)
      .map((a) => `${a.method} ${norm(a.path)} ${a.status} x${a.n}`),
    sse_frames: sseFrames(),
    failed_requests: uniq(rec.failed, (f) => `${f.method} ${norm(f.path)} ${f.error}`)
      .map((f) => `${f.method} ${norm(f.path)} ${f.error} x${f.n}`),
    console_errors: uniq(rec.console.filter((c) => !c.debug), (c) => c.text.slice(0, 160))
      .map((c) => `[${c.step}] ${c.type}: ${c.text} (x${c.n})`),
    console_debug_count: rec.console.filter((c) => c.debug).length,
    page_errors: uniq(rec.pageErrors, (e) => e.text).map((e) => `[${e.step}] ${e.text} (x${e.n})`),
    raw: rec,
  };
}

export function writeReport(report, file) {
  fs.writeFileSync(file, JSON.stringify(report, null, 2));
}

export function formatReport(report, file, shots) {
  const out = [];
  out.push(`== Hive UI acceptance run against ${report.base} (${(report.total_ms / 1000).toFixed(1)}s)`);
  out.push("-- steps");
  for (const s of report.steps) {
    const mark = s.skipped ? "SKIP" : s.ok ? "PASS" : "FAIL";
    out.push(`${mark} ${String(s.n).padStart(2)} ${s.name}${s.error ? ": " + s.error : ""}`
      + `${s.skipped ? " (" + s.skipped + ")" : ""} [${s.ms}ms]`);
    for (const n of s.notes) out.push(`       · ${n}`);
    const vis = [...(s.banners || []).map((b) => `banner "${b}"`), ...(s.flags || []).map((f) => `text "${f}"`)];
    if (s.queued) vis.push(`${s.queued} queued`);
    if (s.composer) vis.push(`composer "${s.composer}"`);
    if (vis.length) out.push(`       screen: ${[...new Set(vis)].join(", ")}`);
  }
  out.push("-- warnings (the run passed these, but a user would notice)");
  for (const w of report.warnings) out.push(w);
  out.push("-- non-2xx API calls (features this server does not serve: their panels stay empty)");
  for (const a of report.non2xx) {
    out.push(`${a.method} ${a.path} ${a.status} x${a.n} [${a.first_step}] `
      + `${(a.body || "").replace(/\s+/g, " ").slice(0, 200)}${a.reqBody ? "  req=" + a.reqBody.slice(0, 120) : ""}`);
  }
  out.push("-- SSE streams");
  for (const s of report.sse) out.push(`${s.path} ${s.status} x${s.n} ${s.ctype}`);
  out.push("-- SSE frames seen by the page (per stream path)");
  for (const b of report.sse_frames) {
    out.push(`${b.path}: ${b.frames} frames, ${b.ends} server-ended; first: ${b.first.join(" ")}`);
    out.push(`     types: ${JSON.stringify(b.types)}`);
    if (b.snapshot) out.push(`     first snapshot: ${b.snapshot.slice(0, 250)}`);
  }
  out.push("-- failed requests (network level; ERR_ABORTED on navigation/reload is normal)");
  for (const f of report.failed_requests) out.push(f);
  out.push(`-- console errors/warnings (excluding ${report.console_debug_count} Hive debug traces)`);
  for (const c of report.console_errors.slice(0, 40)) out.push(c.slice(0, 300));
  out.push("-- page errors (uncaught)");
  for (const e of report.page_errors) out.push(e.slice(0, 400));
  const passed = report.steps.filter((s) => s.ok).length;
  out.push(`-- ${passed}/${report.steps.length} steps passed; full JSON: ${file}; screenshots: ${shots}`);
  return out.join("\n");
}
