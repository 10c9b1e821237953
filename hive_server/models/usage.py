"""Token, cost, latency, worker and trigger accounting of a session (``meta.json``'s ``usage``)
and its answers (``GET /api/sessions/{id}/stats``'s ``usage``, ``GET /api/usage``).

``UsageTotals`` is what a session's events add up to, through ``through_seq``: every event with
a seq up to it is counted, none after it. Latencies are kept as histograms (bucket index ->
count, buckets ``HISTOGRAM_BASE`` wide in ratio, see ``services/journal/accounting.py``) so the
totals of many sessions add up exactly and their percentiles come from the merged histogram.
"""

from __future__ import annotations

from pydantic import ConfigDict, Field

from hive_server.models.agent_views import QueenStats, Response, WorkerStats
from hive_server.models.base import Model
from hive_server.models.budget import BudgetView, ServerBudgetView


class Histogram(Model):
    """Latencies in ms: counts per log-spaced bucket, plus the exact extremes."""

    model_config = ConfigDict(extra="ignore")

    buckets: dict[int, int] = Field(default_factory=dict)
    count: int = 0
    min_ms: float | None = None
    max_ms: float | None = None


class UsageTotals(Model):
    """A session's accounting as stored in ``meta.json`` (``usage``)."""

    model_config = ConfigDict(extra="ignore")

    through_seq: int = Field(default=0, description="every event up to this seq is counted")
    turns: int = 0
    tool_calls: int = 0
    tool_errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float = 0.0
    unpriced_turns: int = 0
    latency: Histogram = Field(default_factory=Histogram)
    ttft: Histogram = Field(default_factory=Histogram)
    workers_started: int = 0
    workers_completed: int = 0
    workers_failed: int = 0
    trigger_fires: dict[str, int] = Field(default_factory=dict)


class TokenCounts(Response):
    input: int = Field(description="every input token, the cached ones included")
    output: int
    cache_read: int = Field(description="input tokens read from the prompt cache")
    cache_write: int = Field(description="input tokens written to the prompt cache")


class Percentiles(Response):
    count: int = Field(description="turns measured")
    p50: float | None = Field(description="ms; null when nothing was measured")
    p95: float | None = Field(description="ms; null when nothing was measured")


class UsageView(Response):
    """The accounting of one session, or the sum of several."""

    turns: int = Field(description="model turns (llm_turn_complete), the queen's and workers'")
    tool_calls: int
    tool_errors: int
    tokens: TokenCounts
    cost_usd: float = Field(description="estimated from the price table (llm/pricing.py); "
                                        "the offline model costs 0")
    unpriced_turns: int = Field(description="turns of a model without a price (not in cost)")
    llm_latency_ms: Percentiles = Field(description="request to whole message, per turn")
    ttft_ms: Percentiles = Field(description="time to the first text token, per turn")
    workers: WorkerStats = Field(description="running: started and not yet ended")
    trigger_fires: dict[str, int] = Field(description="fires by trigger id")


class UsageSummary(Response):
    """``GET /api/usage``: the sum over the sessions the filters select."""

    sessions: int = Field(description="sessions summed")
    usage: UsageView
    budget: ServerBudgetView | None = Field(
        default=None, description="today's (UTC) server-wide and per-agent spend limits: "
                                  "each limit, what is spent against it and what is left")


class SessionStats(Response):
    """``GET /api/sessions/{id}/stats``: counters of a session, live or cold (``queen`` and
    ``uptime_seconds`` null when cold), and its accounting (``usage``, from its events)."""

    session_id: str
    live: bool
    last_seq: int
    uptime_seconds: float | None
    queen: QueenStats | None
    workers: WorkerStats = Field(description="the same counts as usage.workers")
    subscribers: int
    dropped_subscribers: int
    colony_id: str | None
    usage: UsageView
    budget: BudgetView | None = Field(
        default=None, description="a live session's spend limits (its own, its agent's, the "
                                  "server's): each limit, what is spent and left, parked or not")
