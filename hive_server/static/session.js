// A session: header (who, state, usage), tabs (chat, triggers, events), the composer.

import { ApiError, del, enc, get, post } from "./api.js";
import { Chat } from "./chat.js";
import { clear, h } from "./dom.js";
import { cost, relative, shortId, timeEl, toDate, tokens } from "./format.js";
import { Inspector } from "./inspector.js";
import { SessionStream } from "./stream.js";
import { Triggers } from "./triggers.js";
import { toast } from "./ui.js";

const TABS = [["chat", "Chat"], ["triggers", "Triggers"], ["events", "Events"]];

export class SessionView {
  constructor(root, sessionId, tab) {
    this.root = root;
    this.id = sessionId;
    this.usage = { input: 0, output: 0, cost: 0, unpriced: false };
    this.activity = { activity: "idle", park_reason: null };
    this.chat = new Chat((option) => this.send(option));
    this.inspector = new Inspector(sessionId);
    this.triggers = new Triggers(sessionId);
    this.stream = new SessionStream(sessionId, {
      onEvent: (event) => this.onEvent(event),
      onSnapshot: (data) => this.setActivity(data),
      onState: (state, detail) => this.onState(state, detail),
    });
    this.build();
    this.renderUsage();
    this.show(tab);
    this.load();
  }

  build() {
    this.title = h("h1.session-title", "Session");
    this.subtitle = h("div.session-sub");
    this.stateEl = h("span.badge", "loading");
    this.usageEl = h("div.usage", { title: "Summed over the model turns shown" });
    this.actions = h("div.session-actions");
    this.notice = h("div.session-notice", { hidden: true });
    this.tabsEl = h("nav.tabs", { role: "tablist" }, TABS.map(([key, label]) =>
      h("a.tab", { href: `#/s/${enc(this.id)}/${key}`, role: "tab", dataset: { tab: key } },
        label)));
    this.busy = h("div.busy", { hidden: true }, h("span.spinner"), h("span.busy-text", ""),
      h("button.btn.small", { type: "button", onclick: () => this.cancel() }, "Cancel"));
    this.input = h("textarea.composer-input", { rows: 1, placeholder: "Message the queen…",
      "aria-label": "Message", onkeydown: (e) => this.onKey(e),
      oninput: () => this.autosize() });
    this.sendBtn = h("button.btn.primary", { type: "submit" }, "Send");
    this.composer = h("form.composer", { onsubmit: (e) => { e.preventDefault(); this.submit(); } },
      this.input, this.sendBtn);
    this.olderBtn = h("button.btn.small.older", { type: "button", hidden: true,
      onclick: () => this.loadOlder() }, "Load earlier events");
    this.panes = {
      chat: h("section.pane.chat-pane", this.olderBtn, this.chat.el, this.busy, this.composer),
      triggers: h("section.pane", this.triggers.el),
      events: h("section.pane", this.inspector.el),
    };
    clear(this.root).append(h("div.session",
      h("div.session-head",
        h("div.session-heading", this.title, this.subtitle),
        h("div.session-side", this.stateEl, this.usageEl, this.actions)),
      this.notice, this.tabsEl, ...Object.values(this.panes)));
  }

  show(tab) {
    this.tab = TABS.some(([key]) => key === tab) ? tab : "chat";
    for (const [key, pane] of Object.entries(this.panes)) pane.hidden = key !== this.tab;
    for (const a of this.tabsEl.children) a.classList.toggle("active", a.dataset.tab === this.tab);
    if (this.tab === "triggers" && this.state === "live") this.triggers.refresh();
    if (this.tab === "chat") this.scrollDown(true);
  }

  async load() {
    try {
      const info = (await get(`/sessions/${enc(this.id)}`)) ?? {};
      this.describe(info);
      await this.stream.start();
      this.olderBtn.hidden = !this.stream.hasOlder;
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) this.onState("gone");
      else if (err.code !== "unreachable") toast(err.message, "error");
    }
  }

  describe(info) {
    const agent = info.colony_name || info.colony_id;
    this.title.textContent = info.title || agent || info.queen_name || "Queen";
    document.title = `${this.title.textContent} · hive_server`;
    const created = toDate(info.created_at);
    this.subtitle.replaceChildren(...[
      h("span", `Queen ${info.queen_name || info.queen_id || "?"}`),
      h("span", agent ? `Agent ${agent}` : "No agent"),
      created ? h("span", "Started ", timeEl(created)) : null,
      h("span.mono", { title: this.id }, shortId(this.id))].filter(Boolean));
  }

  onEvent(event) {
    this.chat.apply(event);
    this.inspector.add(event);
    if (event.type === "loop_state_changed") this.setActivity(event.data);
    if (event.type === "llm_turn_complete") this.addUsage(event.data);
    if (event.type.startsWith("trigger_")) this.triggers.changed();
    if (event.type === "client_input_requested") this.input.placeholder = "Answer the queen…";
    if (event.type === "client_input_received" && event.data.answers_request_seq) {
      this.input.placeholder = "Message the queen…";
    }
    this.scrollDown();
  }

  addUsage(d) {
    this.usage.input += d.input_tokens || 0;
    this.usage.output += d.output_tokens || 0;
    if (d.cost_usd === null || d.cost_usd === undefined) this.usage.unpriced = true;
    else this.usage.cost += d.cost_usd;
    this.renderUsage();
  }

  renderUsage() {
    const u = this.usage;
    this.usageEl.replaceChildren(
      h("span", { title: `${tokens(u.input)} in, ${tokens(u.output)} out` },
        tokens(u.input + u.output)),
      h("span", cost(u.cost, u.unpriced)));
  }

  setActivity(data) {
    this.activity = data;
    const executing = data.activity === "executing" || data.is_executing;
    const asking = data.park_reason === "ask_user" && !executing;
    this.busy.hidden = !executing;
    this.busy.querySelector(".busy-text").textContent = "The queen is working…";
    this.root.querySelector(".session")?.classList.toggle("asking", asking);
  }

  onState(state, detail) {
    const labels = { loading: "loading", live: "live", reconnecting: "reconnecting",
      stopped: "stopped", restarting: "server restarting", unreachable: "offline",
      gone: "not found" };
    this.stateEl.textContent = labels[state] ?? state;
    this.stateEl.dataset.state = state;
    this.state = state;
    const canChat = state === "live" || state === "reconnecting";
    this.input.disabled = !canChat;
    this.sendBtn.disabled = !canChat;
    this.renderActions();
    this.renderNotice(state, detail);
    if (state !== "live") this.busy.hidden = true;
    if (state === "live") this.triggers.refresh();
    else if (state === "stopped") this.triggers.offline();
  }

  renderActions() {
    const live = this.state === "live" || this.state === "reconnecting";
    this.actions.replaceChildren(...[
      live ? h("button.btn", { type: "button", onclick: () => this.stop() }, "Stop") : null,
      this.state === "stopped"
        ? h("button.btn.primary", { type: "button", onclick: () => this.resume() }, "Resume")
        : null].filter(Boolean));
  }

  renderNotice(state, detail) {
    const n = this.notice;
    n.hidden = true;
    n.replaceChildren();
    if (state === "stopped") {
      n.hidden = false;
      const when = detail?.stopped_at ? ` ${relative(toDate(detail.stopped_at))}` : "";
      n.append(h("span", `This session is not running (stopped${when}). Its history is below; ` +
        "resume it to carry on where it left off."),
      h("button.btn.primary", { type: "button", onclick: () => this.resume() }, "Resume session"));
    } else if (state === "restarting") {
      n.hidden = false;
      n.append(h("span", "The server is stopping. This page reconnects when it is back."));
    } else if (state === "gone") {
      n.hidden = false;
      n.append(h("span", "There is no session with this id on this server."),
        h("a.btn", { href: "#/" }, "Back to sessions"));
    }
  }

  onKey(e) {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      this.submit();
    }
  }

  autosize() {
    this.input.classList.toggle("tall", this.input.value.includes("\n"));
  }

  submit() {
    const text = this.input.value;
    if (!text.trim()) return;
    this.send(text).then((ok) => {
      if (ok) {
        this.input.value = "";
        this.autosize();
      }
    });
  }

  async send(text) {
    try {
      await post(`/sessions/${enc(this.id)}/chat`, { message: text });
      this.scrollDown(true);
      return true;
    } catch (err) {
      toast(err.code === "inbox_full" ? "The queen has too many messages waiting; try again soon."
        : err.message, "error");
      return false;
    }
  }

  async cancel() {
    try {
      const r = await post(`/sessions/${enc(this.id)}/cancel`);
      if (!r.cancelled) toast("Nothing was running.");
    } catch (err) {
      toast(err.message, "error");
    }
  }

  async stop() {
    try {
      this.stream.closeSource();
      await del(`/sessions/${enc(this.id)}`);
      toast("Session stopped.");
    } catch (err) {
      toast(err.message, "error");
    }
    this.stream.recover();
  }

  async resume() {
    try {
      await post("/sessions", { queen_resume_from: this.id });
      toast("Session resumed.");
    } catch (err) {
      if (err.code !== "session_live") return toast(err.message, "error");
    }
    this.stream.recover();
  }

  async loadOlder() {
    const older = await this.stream.older();
    const events = [...older, ...this.inspector.events];
    this.chat.reset();
    this.inspector.reset();
    this.usage = { input: 0, output: 0, cost: 0, unpriced: false };
    for (const event of events) {
      this.chat.apply(event);
      this.inspector.add(event);
      if (event.type === "llm_turn_complete") this.addUsage(event.data);
    }
    this.olderBtn.hidden = !this.stream.hasOlder;
  }

  scrollDown(force = false) {
    const log = this.chat.el;
    const near = log.scrollHeight - log.scrollTop - log.clientHeight < 120;
    if (force || near) requestAnimationFrame(() => { log.scrollTop = log.scrollHeight; });
  }

  unmount() {
    this.stream.close();
    this.triggers.unmount();
  }
}
