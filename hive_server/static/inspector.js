// The events inspector: the raw events of the session, filtered by type, exported as JSONL.

import { h } from "./dom.js";
import { absolute, clock, oneLine, toDate } from "./format.js";

const SHOWN = 500;  // rows drawn at most (all of them are exported)

export class Inspector {
  constructor(sessionId) {
    this.sessionId = sessionId;
    this.typeSel = h("select", { "aria-label": "Event type", onchange: () => this.redraw() },
      h("option", { value: "" }, "All types"));
    this.search = h("input", { type: "search", placeholder: "Search in events",
      "aria-label": "Search in events", oninput: () => this.redraw() });
    this.countEl = h("span.hint");
    this.list = h("div.events");
    this.el = h("div.inspector",
      h("div.toolbar", this.typeSel, this.search, this.countEl,
        h("button.btn", { type: "button", onclick: () => this.export() }, "Export JSONL")),
      this.list);
    this.reset();
  }

  reset() {
    this.events = [];
    this.types = new Set();
    this.list.replaceChildren();
    this.typeSel.length = 1;
    this.updateCount();
  }

  add(event) {
    this.events.push(event);
    if (!this.types.has(event.type)) {
      this.types.add(event.type);
      const names = [...this.types].sort();
      const at = names.indexOf(event.type) + 1;
      this.typeSel.add(h("option", { value: event.type }, event.type),
        this.typeSel.options[at] ?? null);
    }
    if (this.matches(event)) {
      this.list.append(this.row(event));
      if (this.list.childElementCount > SHOWN) this.list.firstElementChild.remove();
    }
    this.updateCount();
  }

  matches(event) {
    const type = this.typeSel.value;
    const q = this.search.value.trim().toLowerCase();
    if (type && event.type !== type) return false;
    return !q || JSON.stringify(event).toLowerCase().includes(q);
  }

  filtered() {
    return this.events.filter((e) => this.matches(e));
  }

  redraw() {
    const rows = this.filtered().slice(-SHOWN).map((e) => this.row(e));
    this.list.replaceChildren(...rows);
    this.updateCount();
  }

  updateCount() {
    const n = this.filtered().length;
    this.countEl.textContent = n > SHOWN ? `${n} events (the last ${SHOWN} shown)`
      : `${n} event${n === 1 ? "" : "s"}`;
  }

  row(event) {
    const date = toDate(event.timestamp);
    return h("details.event",
      h("summary",
        h("span.seq", `#${event.seq}`),
        h("time", { title: absolute(date) }, clock(date)),
        h("span.type", event.type),
        h("span.hint", summary(event))),
      h("pre", JSON.stringify(event, null, 2)));
  }

  export() {
    const lines = this.filtered().map((e) => JSON.stringify(e)).join("\n") + "\n";
    const url = URL.createObjectURL(new Blob([lines], { type: "application/x-ndjson" }));
    const type = this.typeSel.value ? `-${this.typeSel.value}` : "";
    const a = h("a", { href: url, download: `${this.sessionId}${type}.jsonl` });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }
}

function summary(event) {
  const d = event.data ?? {};
  const text = d.content ?? d.snapshot ?? d.tool_name ?? d.worker ?? d.name ?? d.activity
    ?? d.reason ?? d.trigger_id ?? "";
  return oneLine(text, 90);
}
