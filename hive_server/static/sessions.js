// The sessions list: live and stopped sessions, search, filters and paging (done here, over
// the newest 500 sessions of the history list), create, stop, resume, delete, rename.

import { del, enc, get, patch, post } from "./api.js";
import { clear, confirmButton, h } from "./dom.js";
import { count, oneLine, shortId, timeEl, toDate } from "./format.js";
import { agentCatalog } from "./agents.js";
import { field, toast } from "./ui.js";

const PER_PAGE = 20;

export class SessionsView {
  constructor(root, params) {
    this.root = root;
    this.rows = [];
    this.page = 0;
    this.activity = new Map();
    this.names = new Map();
    this.search = h("input", { type: "search", placeholder: "Search sessions",
      "aria-label": "Search sessions", oninput: () => { this.page = 0; this.render(); } });
    this.status = h("select", { "aria-label": "Status", onchange: () => { this.page = 0;
      this.render(); } }, h("option", { value: "" }, "All"), h("option", { value: "live" },
      "Live"), h("option", { value: "stopped" }, "Stopped"));
    this.agent = h("select", { "aria-label": "Agent", onchange: () => { this.page = 0;
      this.render(); } }, h("option", { value: "" }, "Every agent"));
    this.formSlot = h("div");
    this.list = h("div.session-list");
    this.pager = h("div.pager");
    clear(root).append(h("div.page",
      h("div.toolbar", h("h1", "Sessions"),
        h("button.btn.primary", { type: "button", onclick: () => this.newForm() },
          "New session")),
      this.formSlot,
      h("div.filters", this.search, this.status, this.agent),
      this.list, this.pager));
    if (params.get("agent") !== null) this.newForm(params.get("agent"));
    this.load();
    this.follow();
  }

  async load() {
    try {
      const [history, catalog] = await Promise.all([get("/sessions/history?limit=500"),
        agentCatalog()]);
      this.rows = history.sessions;
      for (const a of catalog.valid) this.names.set(a.agent_id, a.name || a.agent_id);
      this.fillAgents();
      this.render();
    } catch (err) {
      if (err.code !== "unreachable") toast(err.message, "error");
    }
  }

  /** The live feed: busy badges, and the list again when a session starts or stops. */
  follow() {
    this.source = new EventSource("/api/sessions/live");
    this.source.addEventListener("snapshot", (message) => {
      const rows = JSON.parse(message.data).sessions;
      const liveIds = new Set(rows.map((r) => r.session_id));
      this.activity = new Map(rows.map((r) => [r.session_id, r]));
      const known = new Set(this.rows.filter((r) => r.live).map((r) => r.session_id));
      const changed = liveIds.size !== known.size || [...liveIds].some((id) => !known.has(id));
      if (changed) this.load(); else this.render();
    });
    this.source.onerror = () => {
      if (this.source.readyState === EventSource.CLOSED) this.source.close();
    };
  }

  reconnect() {
    if (this.source?.readyState !== EventSource.OPEN) {
      this.source?.close();
      this.follow();
    }
    this.load();
  }

  fillAgents() {
    const ids = [...new Set(this.rows.map((r) => r.colony_id || ""))].sort();
    const current = this.agent.value;
    this.agent.length = 1;
    for (const id of ids) {
      this.agent.add(h("option", { value: id || "-" }, id ? this.names.get(id) ?? id : "No agent"));
    }
    this.agent.value = current;
  }

  filtered() {
    const q = this.search.value.trim().toLowerCase();
    const status = this.status.value;
    const agent = this.agent.value;
    return this.rows.filter((r) => {
      if (status === "live" && !r.live) return false;
      if (status === "stopped" && r.live) return false;
      if (agent && (r.colony_id || "-") !== agent) return false;
      if (!q) return true;
      return [r.title, r.session_id, r.colony_id, this.names.get(r.colony_id), r.queen_name,
        r.last_message].some((v) => v && String(v).toLowerCase().includes(q));
    });
  }

  render() {
    const rows = this.filtered();
    const pages = Math.max(1, Math.ceil(rows.length / PER_PAGE));
    this.page = Math.min(this.page, pages - 1);
    const shown = rows.slice(this.page * PER_PAGE, (this.page + 1) * PER_PAGE);
    if (!this.rows.length) {
      this.list.replaceChildren(h("p.empty", "No sessions yet. Start one with New session, or " +
        "from an agent on the Agents page."));
    } else if (!rows.length) {
      this.list.replaceChildren(h("p.empty", "No session matches these filters."));
    } else {
      this.list.replaceChildren(...shown.map((r) => this.row(r)));
    }
    this.pager.replaceChildren();
    if (rows.length > PER_PAGE) {
      const from = this.page * PER_PAGE + 1, to = this.page * PER_PAGE + shown.length;
      this.pager.append(
        h("button.btn", { type: "button", disabled: this.page === 0,
          onclick: () => { this.page -= 1; this.render(); } }, "Previous"),
        h("span.hint", `${from}–${to} of ${rows.length}`),
        h("button.btn", { type: "button", disabled: this.page >= pages - 1,
          onclick: () => { this.page += 1; this.render(); } }, "Next"));
    }
  }

  row(r) {
    const name = r.colony_id ? this.names.get(r.colony_id) ?? r.colony_id : "No agent";
    const act = this.activity.get(r.session_id);
    const badge = !r.live ? h("span.badge.stopped", "stopped")
      : act?.is_executing ? h("span.badge.busy", "working")
        : act?.park_reason === "ask_user" ? h("span.badge.asking", "waiting for you")
          : h("span.badge.live", "live");
    const href = `#/s/${enc(r.session_id)}`;
    const queen = `with ${r.queen_name || r.queen_id}`;
    const main = this.renaming?.id === r.session_id ? this.renaming.form
      : h("a.session-main", { href },
        h("div.session-name", h("strong", r.title || name),
          h("span.hint", r.title ? `${name}, ${queen}` : queen), badge),
        h("div.session-last", r.last_message ? oneLine(r.last_message, 120) : "No messages yet"),
        h("div.session-facts",
          h("span", "active ", timeEl(toDate(r.last_active_at ?? r.updated_at))),
          h("span", count(r.message_count ?? 0, "message")),
          h("span.mono", { title: r.session_id }, shortId(r.session_id))));
    return h("article.session-row", { dataset: { session: r.session_id } }, main,
      h("div.row-actions",
        h("button.btn", { type: "button", onclick: () => this.renameForm(r) }, "Rename"),
        r.live ? h("button.btn", { type: "button", onclick: () => this.stop(r) }, "Stop")
          : h("button.btn", { type: "button", onclick: () => this.resume(r) }, "Resume"),
        confirmButton("Delete", "Really delete?", () => this.remove(r))));
  }

  /** An inline form in place of the row (kept while the live feed redraws the list). */
  renameForm(r) {
    const input = h("input", { type: "text", name: "title", value: r.title || "",
      maxLength: 200, required: true, "aria-label": "Session title" });
    const done = () => { this.renaming = null; this.render(); };
    const save = async (e) => {
      e.preventDefault();
      if (!input.value.trim()) return toast("A title cannot be blank.", "error");
      this.renaming = null;
      await this.run(() => patch(`/sessions/${enc(r.session_id)}`, { title: input.value }),
        "Session renamed.");
    };
    const form = h("form.session-main.rename", { onsubmit: save },
      input, h("button.btn.primary", { type: "submit" }, "Save"),
      h("button.btn", { type: "button", onclick: done }, "Cancel"));
    this.renaming = { id: r.session_id, form };
    this.render();
    input.focus();
    input.select();
  }

  async stop(r) {
    await this.run(() => del(`/sessions/${enc(r.session_id)}`), "Session stopped.");
  }

  async resume(r) {
    await this.run(() => post("/sessions", { queen_resume_from: r.session_id }), "Session resumed.");
  }

  async remove(r) {
    await this.run(() => del(`/sessions/history/${enc(r.session_id)}`), "Session deleted.");
  }

  async run(fn, done) {
    try {
      await fn();
      toast(done);
    } catch (err) {
      toast(err.message, "error");
    }
    this.load();
  }

  async newForm(agentId = "") {
    const [profiles, catalog] = await Promise.all([get("/queen/profiles"), agentCatalog()]);
    const queen = h("select", { name: "queen" }, profiles.queens.map((q) =>
      h("option", { value: q.id }, `${q.name}, ${q.title}`)));
    const agent = h("select", { name: "agent" }, h("option", { value: "" }, "No agent"),
      catalog.valid.map((a) => h("option", { value: a.agent_id }, a.name || a.agent_id)));
    agent.value = agentId;
    const prompt = h("textarea", { rows: 2, placeholder: "Optional: the first message" });
    const submit = async (e) => {
      e.preventDefault();
      const body = { queen_name: queen.value };
      if (agent.value) body.agent_id = agent.value;
      if (prompt.value.trim()) body.initial_prompt = prompt.value;
      try {
        const s = await post("/sessions", body);
        location.hash = `#/s/${enc(s.session_id)}`;
      } catch (err) {
        toast(err.message, "error");
      }
    };
    this.formSlot.replaceChildren(h("form.card.new-session", { onsubmit: submit },
      h("h2", "New session"), field("Queen", queen), field("Agent", agent),
      field("First message", prompt),
      h("div.card-actions", h("button.btn.primary", { type: "submit" }, "Start session"),
        h("button.btn", { type: "button", onclick: () => this.formSlot.replaceChildren() },
          "Cancel"))));
    queen.focus();
  }

  unmount() {
    this.source?.close();
  }
}
