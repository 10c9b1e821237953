// A session's triggers: live countdowns, fire counts, errors; run, (de)activate, edit, delete.

import { del, enc, get, patch, post } from "./api.js";
import { confirmButton, h } from "./dom.js";
import { count, duration, every, oneLine, timeEl, toDate } from "./format.js";
import { field, toast } from "./ui.js";

const FAILED = new Set(["rejected", "failed"]); // outcomes whose last_error is shown

export class Triggers {
  constructor(sessionId) {
    this.base = `/sessions/${enc(sessionId)}/triggers`;
    this.list = h("div.cards");
    this.form = h("div.trigger-form-slot");
    this.el = h("div.triggers",
      h("div.toolbar", h("h2", "Triggers"),
        h("button.btn.primary", { type: "button", onclick: () => this.edit(null) },
          "New trigger")),
      this.form, this.list);
    this.cards = [];
    this.timer = setInterval(() => this.tick(), 1000);
    this.pending = null;
  }

  /** A trigger_* event arrived: fetch the cards again (at most every 300 ms). */
  changed() {
    if (this.pending) return;
    this.pending = setTimeout(() => { this.pending = null; this.refresh(); }, 300);
  }

  async refresh() {
    try {
      this.cards = (await get(this.base)).triggers;
      this.render();
    } catch (err) {
      if (err.code === "session_not_live") this.offline();
      else if (err.code !== "unreachable") {
        toast(err.message, "error");
      }
    }
  }

  /** The session is not running: its triggers are not either. */
  offline() {
    this.cards = [];
    this.list.replaceChildren(h("p.empty",
      "Triggers run only while the session is live. Resume it to see and run them."));
  }

  render() {
    if (!this.cards.length) {
      this.list.replaceChildren(h("p.empty", "No triggers yet. A trigger gives the queen a task " +
        "on a schedule (every few minutes, or a cron line) or when a webhook arrives."));
      return;
    }
    this.list.replaceChildren(...this.cards.map((card) => this.card(card)));
    this.tick();
  }

  card(t) {
    const state = t.error ? "invalid" : t.active ? "active" : "inactive";
    const actions = t.error ? [] : [
      h("button.btn.primary", { type: "button", onclick: () => this.act(t, "run") }, "Run now"),
      t.active
        ? h("button.btn", { type: "button", onclick: () => this.act(t, "deactivate") }, "Deactivate")
        : h("button.btn", { type: "button", onclick: () => this.act(t, "activate") }, "Activate"),
      h("button.btn", { type: "button", onclick: () => this.edit(t) }, "Edit"),
    ];
    actions.push(confirmButton("Delete", "Really delete?", () => this.remove(t)));
    return h("article.card.trigger", { dataset: { trigger: t.trigger_id } },
      h("div.card-head", h("h3", t.name || t.trigger_id),
        h(`span.badge.${state}`, state)),
      h("div.card-meta", h("span", schedule(t)),
        h("span.fires", count(t.fire_count, "fire")),
        t.last_fired_at ? h("span", "last ", timeEl(toDate(t.last_fired_at, "ms"))) : null,
        h("span.countdown", { dataset: { at: t.next_fire_at ?? "" } }),
        t.last_outcome ? h("span.outcome", t.last_outcome, " ",
          timeEl(toDate(t.last_outcome_at, "ms"))) : null),
      t.task ? h("p.task", oneLine(t.task, 300)) : null,
      t.error ? h("p.error", t.error) : null,
      FAILED.has(t.last_outcome) ? h("p.error", t.last_error) : null,
      h("div.card-actions", actions));
  }

  tick() {
    const now = Date.now();
    for (const el of this.list.querySelectorAll(".countdown")) {
      const at = Number(el.dataset.at);
      el.textContent = !el.dataset.at ? "not scheduled"
        : at > now ? `next in ${duration((at - now) / 1000)}` : "due now";
    }
  }

  async act(t, action) {
    try {
      const r = await post(`${this.base}/${enc(t.trigger_id)}/${action}`);
      toast(action === "run" ? `${t.name || t.trigger_id} fired; see the chat.`
        : `${t.name || t.trigger_id} ${action}d.`);
      if (r && r.trigger_id && action !== "run") this.refresh();
    } catch (err) {
      toast(err.message, "error");
    }
  }

  async remove(t) {
    try {
      await del(`${this.base}/${enc(t.trigger_id)}`);
      toast(`${t.name || t.trigger_id} deleted.`);
      this.refresh();
    } catch (err) {
      toast(err.message, "error");
    }
  }

  /** The form for a new trigger (t null) or for editing one (task and schedule). */
  edit(t) {
    const cfg = t?.trigger_config ?? {};
    const type = h("select", { disabled: Boolean(t), "aria-label": "Kind" },
      h("option", { value: "interval" }, "Every N minutes"),
      h("option", { value: "cron" }, "Cron schedule"),
      h("option", { value: "webhook" }, "Webhook"));
    type.value = t?.trigger_type === "webhook" ? "webhook" : cfg.cron ? "cron" : "interval";
    const name = h("input", { value: t?.name ?? "", disabled: Boolean(t), required: !t,
      placeholder: "Morning digest" });
    const interval = h("input", { type: "number", min: "0.0167", step: "any",
      value: String(cfg.interval_minutes ?? 60) });
    const cron = h("input", { value: cfg.cron ?? "0 9 * * *", placeholder: "0 9 * * *" });
    const tz = h("input", { value: cfg.timezone ?? Intl.DateTimeFormat().resolvedOptions().timeZone });
    const signature = h("select", ["standard", "github", "none"].map((s) =>
      h("option", { value: s }, s)));
    signature.value = cfg.signature ?? "standard";
    const secret = h("input", { value: cfg.secret_env ?? "", placeholder: "MY_WEBHOOK_SECRET" });
    const task = h("textarea", { rows: 3, value: t?.task ?? "",
      placeholder: "What the queen should do when it fires" });
    const rows = {
      interval: [field("Every (minutes)", interval)],
      cron: [field("Cron", cron, "five fields: minute hour day month weekday"),
        field("Time zone", tz)],
      webhook: [field("Signature", signature), field("Secret env variable", secret)],
    };
    const slot = h("div.kind-fields");
    const showKind = () => slot.replaceChildren(...rows[type.value]);
    type.addEventListener("change", showKind);
    showKind();
    const config = () => type.value === "interval"
      ? { interval_minutes: Number(interval.value) }
      : type.value === "cron" ? { cron: cron.value.trim(), timezone: tz.value.trim() || "UTC" }
        : signature.value === "none" ? { signature: "none" }
          : { signature: signature.value, secret_env: secret.value.trim() };
    const save = async (e) => {
      e.preventDefault();
      try {
        if (t) {
          await patch(`${this.base}/${enc(t.trigger_id)}`,
            { task: task.value, trigger_config: config() });
        } else {
          await post(this.base, { name: name.value.trim(), task: task.value,
            trigger_type: type.value === "webhook" ? "webhook" : "timer",
            trigger_config: config() });
        }
        this.form.replaceChildren();
        toast(t ? "Trigger saved." : "Trigger created.");
        this.refresh();
      } catch (err) {
        toast(err.message, "error");
      }
    };
    this.form.replaceChildren(h("form.card.trigger-form", { onsubmit: save },
      h("h3", t ? `Edit ${t.name || t.trigger_id}` : "New trigger"),
      field("Name", name), field("Kind", type), slot, field("Task", task),
      h("div.card-actions",
        h("button.btn.primary", { type: "submit" }, t ? "Save" : "Create"),
        h("button.btn", { type: "button", onclick: () => this.form.replaceChildren() },
          "Cancel"))));
  }

  unmount() {
    clearInterval(this.timer);
    clearTimeout(this.pending);
  }
}

function schedule(t) {
  const c = t.trigger_config ?? {};
  if (t.trigger_type === "webhook") return `Webhook (${c.signature ?? "?"} signature)`;
  if (c.interval_minutes) return every(c.interval_minutes).replace(/^e/, "E");
  if (c.cron) return `Cron ${c.cron}${c.timezone ? ` (${c.timezone})` : ""}`;
  return t.trigger_type ?? "invalid";
}

