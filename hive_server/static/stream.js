// One session's events: its history, then the live SSE stream resumed from the last seq.
// Every event is handed on once, in seq order (a seq already seen is dropped), so a
// reconnect or a reload never draws a bubble twice.

import { api, connection, enc, get } from "./api.js";

const PAGE = 2000;

export class SessionStream {
  /**
   * handlers: onEvent(event), onSnapshot(data), onState(state, detail) where state is
   * loading | live | reconnecting | stopped | restarting | unreachable | gone.
   */
  constructor(sessionId, handlers) {
    this.id = sessionId;
    this.h = handlers;
    this.lastSeq = 0;
    this.firstSeq = null;
    this.hasOlder = false;
    this.source = null;
    this.retry = null;
    this.closed = false;
    this.unsubscribe = connection.subscribe((now) => {
      if (now === "ok" && !this.source && !this.closed) this.recover();
    });
  }

  async start() {
    this.h.onState("loading");
    const page = await get(`/sessions/${enc(this.id)}/events/history?limit=${PAGE}`);
    this.hasOlder = page.has_more_older;
    this.firstSeq = page.events.length ? page.events[0].seq : null;
    this.deliver(page.events);
    await this.recover();
  }

  /** The page before the oldest event loaded, oldest first (the caller re-renders). */
  async older() {
    if (!this.hasOlder || this.firstSeq === null) return [];
    const page = await get(`/sessions/${enc(this.id)}/events/history?limit=${PAGE}` +
      `&before_seq=${this.firstSeq}`);
    this.hasOlder = page.has_more_older;
    if (page.events.length) this.firstSeq = page.events[0].seq;
    return page.events;
  }

  deliver(events) {
    for (const event of events) {
      if (event.seq <= this.lastSeq) continue;
      this.lastSeq = event.seq;
      this.h.onEvent(event);
    }
  }

  /** Where is the session now? Live: follow it; stopped: say so; unreachable: wait. */
  async recover() {
    clearTimeout(this.retry);
    if (this.closed) return;
    let found;
    try {
      found = await api("GET", `/sessions/${enc(this.id)}`);
    } catch (err) {
      if (err.status === 404) return this.h.onState("gone");
      if (err.code === "unreachable") return this.h.onState("unreachable");
      this.retry = setTimeout(() => this.recover(), 2000);
      return this.h.onState("reconnecting", err.message);
    }
    if (found.status === 202) {  // still starting
      this.retry = setTimeout(() => this.recover(), 500);
      return this.h.onState("loading");
    }
    if (!found.data.live) return this.h.onState("stopped", found.data);
    this.open();
  }

  open() {
    this.closeSource();
    // after_seq for this connection; EventSource's own reconnects send Last-Event-ID
    // (the last id it received), which the server prefers.
    const source = new EventSource(`/api/sessions/${enc(this.id)}/events?after_seq=${this.lastSeq}`);
    this.source = source;
    source.onopen = () => this.h.onState("live");
    source.onmessage = (message) => this.onMessage(message);
    source.onerror = () => {
      if (source !== this.source) return;
      if (source.readyState === EventSource.CLOSED) {
        this.closeSource();
        this.retry = setTimeout(() => this.recover(), 1000);
      } else {
        api("GET", "/health").catch(() => {});  // says "cannot be reached" when it is down
      }
      this.h.onState("reconnecting");
    };
  }

  onMessage(message) {
    let event;
    try { event = JSON.parse(message.data); } catch { return; }
    if (event.type === "session_snapshot") return this.h.onSnapshot(event.data);
    this.deliver([event]);
    if (event.type === "session_stopped") {
      // The stream ends here: the server is going down (it will resume the session when it
      // comes back) or the session was stopped.
      this.closeSource();
      if (event.data.reason === "shutdown") {
        this.h.onState("restarting");
        connection.set("down");
      } else {
        this.h.onState("stopped", null);
      }
    }
  }

  closeSource() {
    if (this.source) {
      this.source.onerror = null;
      this.source.close();
      this.source = null;
    }
  }

  close() {
    this.closed = true;
    clearTimeout(this.retry);
    this.closeSource();
    this.unsubscribe();
  }
}
