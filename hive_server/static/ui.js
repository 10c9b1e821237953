// Small shared pieces: toasts, the page banner.

import { h } from "./dom.js";

export function toast(text, kind = "info") {
  const box = document.getElementById("toasts");
  const el = h(`div.toast.${kind}`, { role: kind === "error" ? "alert" : "status",
    title: "Click to dismiss", onclick: () => el.remove() }, text);
  box.append(el);
  setTimeout(() => el.remove(), kind === "error" ? 8000 : 3500);
}

export function banner(content, kind = "warn") {
  const el = document.getElementById("banner");
  if (!content) {
    el.hidden = true;
    el.replaceChildren();
    return;
  }
  el.hidden = false;
  el.className = `banner ${kind}`;
  el.replaceChildren(...[].concat(content));
}

/** A labelled form field. */
export function field(label, control, hint) {
  return h("label.field-row", h("span.label", label), control, hint ? h("span.hint", hint) : null);
}
