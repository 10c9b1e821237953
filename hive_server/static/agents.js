// Agents: every folder in the agents dir, valid ones from /api/discover, broken ones from
// /api/agents with their error; an agent's README as plain text; start a session with one.

import { enc, get, getText } from "./api.js";
import { clear, h } from "./dom.js";
import { count, timeEl, toDate } from "./format.js";
import { toast } from "./ui.js";

/** {valid: [discover entry], invalid: [agents entry with valid false]} */
export async function agentCatalog() {
  const [discover, all] = await Promise.all([get("/discover"), get("/agents")]);
  const valid = Object.values(discover).flat().sort((a, b) =>
    (a.name || a.agent_id).localeCompare(b.name || b.agent_id));
  return { valid, invalid: all.agents.filter((a) => !a.valid) };
}

/** The agent's README.md, fetched when first opened and shown as plain text (never HTML). */
function readme(agentId) {
  const body = h("pre.readme-text", "Loading…");
  const box = h("details.readme", h("summary", "README"), body);
  let loaded = false;
  box.addEventListener("toggle", async () => {
    if (!box.open || loaded) return;
    loaded = true;
    try {
      body.textContent = await getText(`/agents/${enc(agentId)}/readme`);
    } catch (err) {
      loaded = false;
      body.textContent = err.message;
    }
  });
  return box;
}

export class AgentsView {
  constructor(root) {
    this.root = root;
    this.list = h("div.cards.agents");
    clear(root).append(h("div.page", h("div.toolbar", h("h1", "Agents")), this.list));
    this.load();
  }

  async load() {
    try {
      const { valid, invalid } = await agentCatalog();
      const cards = [...valid.map((a) => this.card(a)), ...invalid.map((a) => this.broken(a))];
      this.list.replaceChildren(...(cards.length ? cards : [h("p.empty",
        "No agent folders. Put one in the agents dir (agent.json, tools.py, README.md).")]));
    } catch (err) {
      if (err.code !== "unreachable") toast(err.message, "error");
    }
  }

  card(a) {
    return h("article.card.agent", { dataset: { agent: a.agent_id } },
      h("div.card-head", h("span.agent-icon", a.icon || "◆"), h("h3", a.name || a.agent_id),
        a.is_loaded ? h("span.badge.live", "in use") : null),
      h("p", a.description || "No description."),
      a.tags?.length ? h("div.tags", a.tags.map((t) => h("span.tag", t))) : null,
      h("div.card-meta",
        h("span", count(a.worker_count, "worker")),
        h("span", count(a.tool_count, "tool")),
        a.has_triggers ? h("span", "has triggers") : null,
        h("span", count(a.session_count, "session")),
        a.last_active ? h("span", "active ", timeEl(toDate(a.last_active))) : null),
      a.has_readme ? readme(a.agent_id) : null,
      h("div.card-actions", h("a.btn.primary", {
        href: `#/?agent=${encodeURIComponent(a.agent_id)}` }, "Start a session with this agent")));
  }

  broken(a) {
    return h("article.card.agent.invalid", { dataset: { agent: a.agent_id } },
      h("div.card-head", h("span.agent-icon", "!"), h("h3", a.agent_id),
        h("span.badge.invalid", "invalid")),
      h("p.error", a.error || "This folder is not a valid agent."),
      h("p.hint", `Folder ${a.path}`));
  }

  unmount() {}
}
