// The public API over fetch (the hive_token cookie rides along), and the connection state.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const listeners = new Set();
let state = "unknown";  // ok | down | unauthorized
let probe = null;

export const connection = {
  get state() { return state; },
  /** fn(state, previous) on every change. */
  subscribe(fn) { listeners.add(fn); return () => listeners.delete(fn); },
  set(next) {
    if (next === state) return;
    const previous = state;
    state = next;
    for (const fn of listeners) fn(next, previous);
    if (next === "down") startProbe();
  },
};

function startProbe() {
  if (probe) return;
  let tries = 0;  // every second for half a minute (a restart), then every five
  const tick = async () => {
    try {
      const resp = await fetch("/api/health", { cache: "no-store" });
      probe = null;
      connection.set(resp.status === 401 ? "unauthorized" : "ok");
    } catch {
      tries += 1;
      probe = setTimeout(tick, tries < 30 ? 1000 : 5000);
    }
  };
  probe = setTimeout(tick, 1000);
}

async function send(method, path, body) {
  const init = { method, headers: {}, cache: "no-store" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch("/api" + path, init);
  } catch {
    connection.set("down");
    throw new ApiError(0, "unreachable", "The server cannot be reached.");
  }
  if (resp.status === 401) connection.set("unauthorized");
  else connection.set("ok");
  return resp;
}

function parse(text) {
  try { return text ? JSON.parse(text) : null; } catch { return null; }
}

function failure(resp, data) {
  return new ApiError(resp.status, data?.code ?? "http_" + resp.status,
    data?.error ?? `The server answered ${resp.status}.`);
}

export async function api(method, path, body) {
  const resp = await send(method, path, body);
  const data = parse(await resp.text());
  if (!resp.ok) throw failure(resp, data);
  return { status: resp.status, data };
}

/** A text answer (an agent's README): the text as it is, never parsed or rendered. */
export async function getText(path) {
  const resp = await send("GET", path);
  const text = await resp.text();
  if (!resp.ok) throw failure(resp, parse(text));
  return text;
}

export const get = async (path) => (await api("GET", path)).data;
export const post = async (path, body = {}) => (await api("POST", path, body)).data;
export const patch = async (path, body) => (await api("PATCH", path, body)).data;
export const del = async (path, body) => (await api("DELETE", path, body)).data;

export const enc = encodeURIComponent;
