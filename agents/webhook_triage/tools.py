"""Tools of the webhook_triage agent: classify alert payloads, keep an incident log, summarise.

Classification is rule based and deterministic (no model involved): an explicit severity in
the payload wins, otherwise keywords decide; the owner comes from keywords as well. Incidents
are appended to ``incidents.jsonl`` in the session workspace and summaries are written to
``summary-YYYYMMDD-HHMM.md``. Standard library only.
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

Severity = Literal["critical", "high", "medium", "low"]

INCIDENTS_FILE = "incidents.jsonl"
SEVERITY_ORDER = ("critical", "high", "medium", "low")
DEFAULT_OWNER = "on-call"
MAX_PAYLOAD_CHARS = 200_000

_EXPLICIT_SEVERITY: dict[str, Severity] = {
    "critical": "critical", "fatal": "critical", "emergency": "critical", "p1": "critical",
    "sev1": "critical", "error": "high", "high": "high", "major": "high", "p2": "high",
    "sev2": "high", "warning": "medium", "warn": "medium", "medium": "medium", "p3": "medium",
    "sev3": "medium", "info": "low", "low": "low", "minor": "low", "p4": "low", "sev4": "low",
}
_SEVERITY_KEYWORDS: list[tuple[Severity, tuple[str, ...]]] = [
    ("critical", ("outage", "down", "data loss", "breach", "unavailable", "all requests failing")),
    ("high", ("error", "errors", "failed", "failure", "exception", "5xx", "timeout", "crash")),
    ("medium", ("warning", "degraded", "slow", "latency", "retry", "flaky", "disk usage")),
]
_OWNER_KEYWORDS: list[tuple[str, tuple[str, ...]]] = [
    ("security", ("security", "breach", "vulnerability", "cve", "auth", "login", "token")),
    ("payments", ("payment", "payments", "billing", "invoice", "stripe", "checkout")),
    ("data", ("database", "postgres", "mysql", "redis", "db", "replica", "migration")),
    ("platform", ("deploy", "deployment", "build", "ci", "pipeline", "workflow", "kubernetes",
                  "k8s", "disk", "cpu", "memory")),
]
_RESOLVED = ("resolved", "ok", "success", "succeeded", "recovered")
_TITLE_KEYS = ("title", "summary", "alertname", "subject", "message", "name")
_NESTED_KEYS = ("alert", "issue", "pull_request", "workflow_run", "check_run", "incident")
_LOG_LOCK = threading.Lock()


def classify_payload(payload_json: str) -> str:
    """Classify a webhook payload: severity, owner, title and the reasons, as JSON.

    Args:
        payload_json: The webhook body as a JSON string.
    """
    return json.dumps(_classify(_load_payload(payload_json)), ensure_ascii=False)


def record_incident(title: str, severity: Severity, workspace: Path, owner: str = DEFAULT_OWNER,
                    summary: str = "", source: str = "webhook") -> str:
    """Append an incident to the incident log and return its id (INC-0001, INC-0002, ...).

    Args:
        title: One line naming what happened.
        severity: One of critical, high, medium, low.
        owner: The team that should act, e.g. "data" or "platform".
        summary: What is known so far and what to do next.
        source: Where the incident came from, e.g. "webhook" or "user".
    """
    if not title.strip():
        raise ValueError("an incident needs a title")
    with _LOG_LOCK:  # parallel calls run in threads: number and append as one step
        incidents = _read_incidents(workspace)
        incident = {
            "id": f"INC-{len(incidents) + 1:04d}", "at": _now().isoformat(timespec="seconds"),
            "title": title.strip()[:300], "severity": severity,
            "owner": owner.strip() or "on-call", "summary": summary.strip()[:4000],
            "source": source.strip()[:100] or "webhook",
        }
        workspace.mkdir(parents=True, exist_ok=True)
        with (workspace / INCIDENTS_FILE).open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(incident, ensure_ascii=False) + "\n")
    return f"Recorded {incident['id']} ({severity}, owner {incident['owner']}): {incident['title']}"


def triage(payload_json: str, workspace: Path) -> str:
    """Classify a webhook payload and record it as an incident in one step.

    Args:
        payload_json: The webhook body as a JSON string.
    """
    result = _classify(_load_payload(payload_json))
    reasons = "; ".join(result["reasons"])
    recorded = record_incident(result["title"], result["severity"], workspace,
                               owner=result["owner"], summary=f"Triage: {reasons}")
    return f"{recorded}\nReasons: {reasons}"


def summarize_incidents(workspace: Path, since_minutes: int = 60) -> str:
    """Summarise the incidents of the last minutes and write summary-YYYYMMDD-HHMM.md.

    Args:
        since_minutes: How far back to look, in minutes (1 to 10080).
    """
    if not 1 <= since_minutes <= 10080:
        raise ValueError("since_minutes must be between 1 and 10080 (one week)")
    now = _now()
    cutoff = (now - timedelta(minutes=since_minutes)).isoformat(timespec="seconds")
    recent = [i for i in _read_incidents(workspace) if i["at"] >= cutoff]
    text = _render_summary(recent, since_minutes, now)
    name = f"summary-{now:%Y%m%d-%H%M}.md"
    workspace.mkdir(parents=True, exist_ok=True)
    (workspace / name).write_text(text, encoding="utf-8")
    return f"Wrote {name}.\n\n{text}"


def _render_summary(incidents: list[dict[str, str]], minutes: int, now: datetime) -> str:
    lines = [f"# Incidents, last {minutes} minutes (until {now:%Y-%m-%d %H:%M} UTC)", ""]
    if not incidents:
        return "\n".join([*lines, "No incidents. All quiet.", ""])
    by_severity = Counter(i["severity"] for i in incidents)
    counts = ", ".join(f"{by_severity[s]} {s}" for s in SEVERITY_ORDER if by_severity[s])
    owners = Counter(i["owner"] for i in incidents)
    lines += [f"{len(incidents)} incident{'' if len(incidents) == 1 else 's'}: {counts}.",
              "Owners: " + ", ".join(f"{o} ({n})" for o, n in owners.most_common()) + ".", ""]
    ordered = sorted(incidents, key=lambda i: (SEVERITY_ORDER.index(i["severity"]), i["at"]))
    lines += [f"- {i['id']} [{i['severity']}] {i['title']} -> {i['owner']}" for i in ordered]
    return "\n".join([*lines, ""])


def _load_payload(payload_json: str) -> dict[str, object]:
    if len(payload_json) > MAX_PAYLOAD_CHARS:
        raise ValueError(f"payload is larger than {MAX_PAYLOAD_CHARS} characters")
    try:
        payload = json.loads(payload_json)
    except json.JSONDecodeError as exc:
        raise ValueError(f"payload_json is not valid JSON: {exc}") from None
    return payload if isinstance(payload, dict) else {"message": payload}


def _classify(payload: dict[str, object]) -> dict:
    text = " ".join(_strings(payload)).lower()
    words = set(re.findall(r"[a-z0-9]+", text))
    severity, reasons = _severity(payload, text, words)
    owner = next((team for team, keys in _OWNER_KEYWORDS if _hit(keys, text, words)), None)
    reasons.append(f"owner {owner} by keyword" if owner else f"no owner keyword: {DEFAULT_OWNER}")
    return {"severity": severity, "owner": owner or DEFAULT_OWNER, "title": _title(payload),
            "reasons": reasons}


def _severity(payload: dict[str, object], text: str, words: set[str]) -> tuple[Severity, list]:
    status = str(payload.get("status") or payload.get("state") or "").lower()
    if status in _RESOLVED:
        return "low", [f"status is {status!r}"]
    for key in ("severity", "level", "priority"):
        value = str(payload.get(key) or "").lower()
        if value in _EXPLICIT_SEVERITY:
            return _EXPLICIT_SEVERITY[value], [f"payload {key} is {value!r}"]
    for severity, keys in _SEVERITY_KEYWORDS:
        found = [k for k in keys if _hit((k,), text, words)]
        if found:
            return severity, [f"keyword {found[0]!r}"]
    return "low", ["no severity keyword"]


def _hit(keys: tuple[str, ...], text: str, words: set[str]) -> bool:
    return any((k in text) if " " in k else (k in words) for k in keys)


def _title(payload: dict[str, object]) -> str:
    for source in [payload, *(payload.get(k) for k in _NESTED_KEYS)]:
        if isinstance(source, dict):
            for key in _TITLE_KEYS:
                value = source.get(key)
                if isinstance(value, str) and value.strip():
                    return value.strip().splitlines()[0][:200]
    return "untitled event"


def _strings(value: object, depth: int = 0) -> list[str]:
    """Every string value in the payload, a few levels deep (keys are not evidence)."""
    if depth > 4:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v, depth + 1)]
    if isinstance(value, list):
        return [s for item in value[:50] for s in _strings(item, depth + 1)]
    return []


def _read_incidents(workspace: Path) -> list[dict[str, str]]:
    path = workspace / INCIDENTS_FILE
    if not path.is_file():
        return []
    incidents = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(item, dict) and item.get("severity") in SEVERITY_ORDER and "at" in item:
            incidents.append(item)
    return incidents


def _now() -> datetime:
    return datetime.now(UTC)
