// Dates local and relative, numbers with their units.

const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
const num = new Intl.NumberFormat();
const STEPS = [["year", 31536000], ["month", 2592000], ["week", 604800], ["day", 86400],
  ["hour", 3600], ["minute", 60]];

/** A Date from epoch seconds, epoch ms or an ISO string (null stays null). */
export function toDate(value, unit = "s") {
  if (value === null || value === undefined || value === "") return null;
  if (typeof value === "number") return new Date(unit === "ms" ? value : value * 1000);
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? null : date;
}

export function relative(date, now = Date.now()) {
  if (!date) return "never";
  const seconds = (date.getTime() - now) / 1000;
  if (Math.abs(seconds) < 45) return "just now";
  for (const [unit, size] of STEPS) {
    if (Math.abs(seconds) >= size) return rtf.format(Math.round(seconds / size), unit);
  }
  return rtf.format(Math.round(seconds / 60), "minute");
}

export function absolute(date) {
  return date ? date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" }) : "";
}

export function clock(date) {
  return date ? date.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" }) : "";
}

/** A <time> element: relative text, the full local date on hover. */
export function timeEl(date) {
  const el = document.createElement("time");
  if (date) {
    el.dateTime = date.toISOString();
    el.title = absolute(date);
    el.dataset.relative = "1";
  }
  el.textContent = relative(date);
  return el;
}

/** Refresh every relative <time> under root (called once a minute). */
export function refreshTimes(root = document) {
  for (const el of root.querySelectorAll("time[data-relative]")) {
    el.textContent = relative(new Date(el.dateTime));
  }
}

export function count(n, one, many = one + "s") {
  return `${num.format(n)} ${n === 1 ? one : many}`;
}

export function tokens(n) {
  return count(n, "token");
}

export function cost(usd, unknown = false) {
  if (usd === 0 && !unknown) return "$0.00";
  const text = usd > 0 && usd < 0.01 ? "< $0.01"
    : new Intl.NumberFormat(undefined, { style: "currency", currency: "USD" }).format(usd);
  return unknown ? `${text} + unpriced turns` : text;
}

/** "2 h 5 min", "59 min 12 s", "8 s" for a number of seconds. */
export function duration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  const d = Math.floor(s / 86400), hh = Math.floor((s % 86400) / 3600);
  const mm = Math.floor((s % 3600) / 60), ss = s % 60;
  if (d) return `${d} d ${hh} h`;
  if (hh) return `${hh} h ${mm} min`;
  if (mm) return `${mm} min ${ss} s`;
  return `${ss} s`;
}

export function minutes(value) {
  if (value % 1440 === 0) return count(value / 1440, "day");
  if (value % 60 === 0) return count(value / 60, "hour");
  if (value < 1) return count(Math.round(value * 60), "second");
  return count(value, "minute");
}

/** "every hour", "every 5 minutes" for an interval in minutes. */
export function every(value) {
  const text = minutes(value);
  return "every " + (text.startsWith("1 ") ? text.slice(2) : text);
}

export function shortId(id) {
  return id.length > 14 ? "…" + id.slice(-8) : id;
}

export function oneLine(text, max = 140) {
  const line = String(text ?? "").replace(/\s+/g, " ").trim();
  return line.length > max ? line.slice(0, max - 1) + "…" : line;
}
