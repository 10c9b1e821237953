// The chat: a fold of the session's events into bubbles and collapsible rows. Each item has
// a key (a turn, a tool call, a worker, a question), so an event met again updates its item.

import { h } from "./dom.js";
import { clock, every, oneLine, toDate } from "./format.js";

const QUEEN = "queen";

export class Chat {
  constructor(onAnswerOption) {
    this.el = h("div.chat-log", { role: "log", "aria-live": "polite" });
    this.onAnswerOption = onAnswerOption;
    this.reset();
  }

  reset() {
    this.el.replaceChildren();
    this.items = new Map();
    this.questions = new Map();  // client_input_requested seq -> card
    this.empty = h("p.empty", "No messages yet. Say hello to the queen below.");
    this.el.append(this.empty);
  }

  add(key, el) {
    this.empty?.remove();
    this.empty = null;
    this.items.set(key, el);
    this.el.append(el);
    return el;
  }

  apply(event) {
    const fn = HANDLERS[event.type];
    if (fn) fn(this, event);
  }

  /** The queen's bubble of one model turn (an execution's iteration). */
  bubble(event) {
    const key = `turn:${event.execution_id}:${event.data.iteration ?? 0}`;
    let el = this.items.get(key);
    if (!el) {
      el = this.add(key, message("queen", event, ""));
      el.classList.add("streaming");
    }
    return el;
  }
}

function message(who, event, text) {
  const label = who === "user" ? "You" : who === "queen" ? "Queen" : who;
  return h(`div.msg.${who}`, { dataset: { seq: event.seq } },
    h("div.meta", h("span.who", label), h("span.when", clock(toDate(event.timestamp)))),
    h("div.text", text));
}

function setText(el, text) {
  el.querySelector(".text").textContent = text;
}

function details(kind, summary, body, open = false) {
  return h(`details.row.${kind}`, { open },
    h("summary", summary),
    h("div.row-body", body));
}

function pre(label, value) {
  const text = typeof value === "string" ? value : JSON.stringify(value, null, 2);
  return h("div.field", h("div.label", label), h("pre", text));
}

function textOf(message) {
  return (message?.content ?? []).filter((b) => b.type === "text").map((b) => b.text).join("");
}

const HANDLERS = {
  client_input_received(chat, event) {
    const d = event.data;
    if (d.source === "trigger") return;  // the trigger_fired row says it
    const el = chat.add(`input:${event.seq}`, message("user", event, d.content));
    if (d.answers_request_seq !== null && d.answers_request_seq !== undefined) {
      el.classList.add("answer");
      const card = chat.questions.get(d.answers_request_seq);
      if (card) {
        card.classList.add("answered");
        card.querySelector(".q-state").textContent = "Answered";
        for (const b of card.querySelectorAll("button")) b.disabled = true;
      }
    }
  },

  client_output_delta(chat, event) {
    if (event.stream_id !== QUEEN || event.data.inner_turn) return;  // a question: see below
    setText(chat.bubble(event), event.data.snapshot);
  },

  llm_turn_complete(chat, event) {
    if (event.stream_id !== QUEEN) return;
    const text = textOf(event.data.message);
    const key = `turn:${event.execution_id}:${event.data.iteration ?? 0}`;
    if (!text && !chat.items.has(key)) return;
    const el = chat.bubble(event);
    setText(el, text);
    el.classList.remove("streaming");
  },

  tool_call_started(chat, event) {
    const d = event.data;
    if (d.tool_name === "ask_user") return;  // drawn as the question
    const parent = event.stream_id === QUEEN ? null : chat.items.get(`worker:${workerId(event)}`);
    const row = details("tool", [h("span.icon", "⚙"), h("span.name", d.tool_name),
      h("span.hint", oneLine(JSON.stringify(d.tool_input ?? {}), 80)),
      h("span.status.running", "running")], [pre("Input", d.tool_input ?? {})]);
    row.dataset.tool = d.tool_name;
    if (parent) {
      parent.querySelector(".row-body").append(row);
      chat.items.set(`tool:${d.tool_use_id}`, row);
    } else {
      chat.add(`tool:${d.tool_use_id}`, row);
    }
  },

  tool_call_completed(chat, event) {
    const d = event.data;
    const row = chat.items.get(`tool:${d.tool_use_id}`);
    if (!row) return;
    const status = row.querySelector(".status");
    status.className = `status ${d.is_error ? "failed" : "done"}`;
    status.textContent = d.is_error ? "failed" : "done";
    row.querySelector(".row-body").append(pre(d.is_error ? "Error" : "Result", d.result));
  },

  worker_started(chat, event) {
    const d = event.data;
    chat.add(`worker:${d.worker_id}`, details("worker", [h("span.icon", "◈"),
      h("span.name", `Worker ${d.worker}`), h("span.hint", oneLine(d.task, 80)),
      h("span.status.running", "running")], [pre("Task", d.task), h("div.live-text")]));
  },

  llm_text_delta(chat, event) {
    const row = chat.items.get(`worker:${workerId(event)}`);
    const live = row?.querySelector(".live-text");
    if (live) live.textContent = event.data.snapshot;
  },

  worker_completed(chat, event) {
    finishWorker(chat, event, "done", pre("Result", event.data.result));
  },

  worker_failed(chat, event) {
    const cancelled = event.data.error === "cancelled";
    finishWorker(chat, event, cancelled ? "cancelled" : "failed", pre("Error", event.data.error));
  },

  client_input_requested(chat, event) {
    for (const q of event.data.questions) {
      const options = (q.options ?? []).map((option) => h("button.btn.option", {
        type: "button", onclick: () => chat.onAnswerOption(option) }, option));
      const card = h("div.question", { dataset: { seq: event.seq } },
        h("div.q-head", h("span.icon", "?"), h("span", "The queen asks"),
          h("span.q-state", "Waiting for your answer")),
        h("div.q-text", q.prompt),
        options.length ? h("div.q-options", options) : h("div.q-hint", "Type your answer below."));
      chat.questions.set(event.seq, card);
      chat.add(`question:${event.seq}:${q.id}`, card);
    }
  },

  trigger_fired(chat, event) {
    const d = event.data;
    const how = d.manual ? "run by hand" : d.missed ? `catching up ${d.missed} missed` : "on schedule";
    const what = d.trigger_type === "timer" && d.trigger_config?.interval_minutes
      ? every(d.trigger_config.interval_minutes) : d.trigger_type;
    chat.add(`fire:${event.seq}`, h("div.fire", { dataset: { trigger: d.trigger_id } },
      h("span.icon", "⚡"),
      h("span", h("strong", d.name || d.trigger_id), ` fired (${how}, ${what})`),
      h("span.task", oneLine(d.task, 120)),
      h("span.when", clock(toDate(event.timestamp)))));
  },

  execution_failed(chat, event) {
    const d = event.data;
    const text = d.error_type === "interrupted"
      ? "This turn was interrupted because the server stopped."
      : `The turn failed: ${d.error}`;
    chat.add(`note:${event.seq}`, note(event, text, "error"));
  },

  execution_cancelled(chat, event) {
    chat.add(`note:${event.seq}`, note(event, "Cancelled."));
  },

  worker_colony_loaded(chat, event) {
    chat.add(`note:${event.seq}`, note(event, `Colony ${event.data.name} loaded.`));
  },

  session_started(chat, event) {
    if (event.data.resumed) chat.add(`note:${event.seq}`, note(event, "Session resumed."));
  },

  session_stopped(chat, event) {
    const why = { shutdown: "the server stopped", agent_deleted:
      "its agent was deleted", failed_to_start: "it failed to start" }[event.data.reason];
    chat.add(`note:${event.seq}`, note(event, `Session stopped${why ? ` (${why})` : ""}.`));
  },

  log_corrupt(chat, event) {
    chat.add(`note:${event.seq}`, note(event, "A damaged line of the event log was skipped.",
      "error"));
  },
};

function note(event, text, kind = "") {
  return h(`div.note${kind ? "." + kind : ""}`, h("span", text),
    h("span.when", clock(toDate(event.timestamp))));
}

function workerId(event) {
  return (event.stream_id || "").replace(/^worker:/, "");
}

function finishWorker(chat, event, state, body) {
  const row = chat.items.get(`worker:${event.data.worker_id}`);
  if (!row) return;
  const status = row.querySelector(".status");
  status.className = `status ${state}`;
  status.textContent = state;
  row.querySelector(".live-text")?.remove();
  row.querySelector(".row-body").append(body);
}
