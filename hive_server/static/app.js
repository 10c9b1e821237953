// The console's shell: the router (#/, #/agents, #/s/<id>/<tab>), the connection state, the
// server line in the header.

import { connection, get } from "./api.js";
import { AgentsView } from "./agents.js";
import { h } from "./dom.js";
import { refreshTimes } from "./format.js";
import { SessionView } from "./session.js";
import { SessionsView } from "./sessions.js";
import { banner } from "./ui.js";

const root = document.getElementById("view");
let current = null;  // {key, view}

function parse() {
  const raw = location.hash.replace(/^#/, "") || "/";
  const [path, query = ""] = raw.split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  return { parts, params: new URLSearchParams(query) };
}

function route() {
  const { parts, params } = parse();
  let key, make;
  if (parts[0] === "s" && parts[1]) {
    key = `s:${parts[1]}`;
    if (current?.key === key) return current.view.show(parts[2]);
    make = () => new SessionView(root, parts[1], parts[2]);
  } else if (parts[0] === "agents") {
    key = "agents";
    make = () => new AgentsView(root);
    document.title = "Agents · hive_server";
  } else {
    key = `sessions:${params}`;
    make = () => new SessionsView(root, params);
    document.title = "Sessions · hive_server";
  }
  current?.view.unmount();
  current = { key, view: make() };
  for (const a of document.querySelectorAll("[data-nav]")) {
    a.classList.toggle("active", a.dataset.nav === (key === "agents" ? "agents"
      : key.startsWith("sessions") ? "sessions" : ""));
  }
  window.scrollTo(0, 0);
}

function showConnection(state, previous) {
  const pill = document.getElementById("conn");
  pill.dataset.state = state;
  pill.textContent = { ok: "Connected", down: "Offline", unauthorized: "Token refused",
    unknown: "Connecting…" }[state];
  if (state === "down") {
    banner([h("strong", "The server cannot be reached."),
      h("span", ` Nothing answers at ${location.host}: hive_server may have stopped or be ` +
        "restarting. This page tries again every few seconds and carries on where it left off.")],
    "error");
  } else if (state === "unauthorized") {
    banner([h("strong", "The server refused this page's token."),
      h("span", " It may have restarted with a new one. Open the URL it printed at start-up " +
        "(hive-server token prints it again).")], "error");
  } else {
    banner(null);
    if (state === "ok" && previous === "down") {
      current?.view.reconnect?.();
      serverInfo();
    }
  }
}

async function serverInfo() {
  try {
    const health = await get("/health");
    const model = health.provider === "offline" ? "offline model" : health.model;
    document.getElementById("server-info").textContent = `v${health.version} · ${model}`;
  } catch {
    // the connection pill and banner say it
  }
}

connection.subscribe(showConnection);
window.addEventListener("hashchange", route);
setInterval(() => refreshTimes(), 30000);
route();
serverInfo();
