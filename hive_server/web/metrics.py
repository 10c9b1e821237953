"""``GET /metrics``: the Prometheus text format, behind the API token.

Nothing is counted through prometheus_client on the request path. The app's one middleware
(``Guard``, web/security.py; ``metrics_middleware`` on the webhook listener) adds 1 to
a plain dict keyed by (route template, method, status). The services keep their own counts
(``core/stats.py``, ``MeteredLLM``, the scheduler's lag histogram, the webhook ingress). A
collector on the app's own ``CollectorRegistry`` reads all of them when ``/metrics`` is
scraped.
"""

from __future__ import annotations

from collections.abc import Iterator

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from hive_server import keys
from hive_server.core import stats
from hive_server.core.stats import Histogram
from hive_server.llm.metered import MeteredLLM
from hive_server.web import unmatched
from hive_server.web.openapi import doc

routes = web.RouteTableDef()
UNMATCHED = "unmatched"  # the route label of a request no route matched (404, 405)
HOOKS_ROUTE = "/hooks/{agent_id}/{trigger_id}"
RequestCounts = dict[tuple[str, str, int], int]  # (route template, method, status) -> answers


def install(app: web.Application, counts: RequestCounts | None = None) -> None:
    """Give ``app`` its request counts (``counts``, those its ``Guard`` adds to, or new ones),
    a metered LLM client and its own registry (call after ``app[keys.LLM]`` is set)."""
    app[keys.REQUEST_COUNTS] = {} if counts is None else counts
    app[keys.METERED_LLM] = MeteredLLM(app[keys.LLM])
    registry = CollectorRegistry(auto_describe=False)
    registry.register(AppCollector(app))
    app[keys.METRICS_REGISTRY] = registry


def route_label(request: web.Request) -> str:
    """The request's route as the counts name it: its template, or ``unmatched``."""
    resource = request.match_info.route.resource
    if resource is None or resource.canonical == unmatched.CANONICAL:
        return UNMATCHED
    return resource.canonical


def count_request(request: web.Request, status: int) -> None:
    """Add 1 to the answers of the request's route, method and status."""
    _add(request.app[keys.REQUEST_COUNTS], (route_label(request), request.method, status))


def _add(counts: RequestCounts, key: tuple[str, str, int]) -> None:
    counts[key] = counts.get(key, 0) + 1


class RequestCounter:
    """Adds to one app's request counts (the ``Guard`` holds it: no app lookup per request;
    it reads a route's label once, from the route's first request)."""

    label = staticmethod(route_label)

    def __init__(self, counts: RequestCounts) -> None:
        self.counts = counts

    def add(self, route: str, method: str, status: int) -> None:
        _add(self.counts, (route, method, status))


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count every answer by route, method and status (outermost: the final status)."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        count_request(request, exc.status)
        raise
    except Exception:  # counted as the 500 it becomes, then re-raised
        count_request(request, 500)
        raise
    count_request(request, response.status)
    return response


@routes.get("/metrics")
@doc(media="text/plain")
async def metrics(request: web.Request) -> web.Response:
    """Prometheus metrics of this server (text exposition format 0.0.4)."""
    body = generate_latest(request.app[keys.METRICS_REGISTRY])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def _histogram(name: str, doc_text: str, histogram: Histogram,
               labels: tuple[list[str], list[str]] | None = None) -> HistogramMetricFamily:
    buckets, total = histogram.cumulative()
    names, values = labels or ([], [])
    family = HistogramMetricFamily(name, doc_text, labels=names)
    family.add_metric(values, buckets, total)
    return family


class AppCollector(Collector):
    """Reads the app's services when scraped."""

    def __init__(self, app: web.Application):
        self.app = app

    def collect(self) -> Iterator[Metric]:
        yield self._requests()
        yield from self._storage()
        yield from self._sessions()
        yield from self._cluster()
        yield from self._triggers()
        yield self._webhooks()
        yield from self._llm()
        yield from self._spend()

    def _requests(self) -> Metric:
        family = CounterMetricFamily("hive_http_requests", "HTTP answers by route template, "
                                     "method and status", labels=["route", "method", "status"])
        for (route, method, status), count in sorted(self.app[keys.REQUEST_COUNTS].items()):
            family.add_metric([route, method, str(status)], count)
        return family

    def _storage(self) -> Iterator[Metric]:
        yield CounterMetricFamily("hive_events_appended", "events written to session event "
                                  "logs (this process)", value=stats.EVENTS_APPENDED.value)
        yield _histogram("hive_eventlog_fsync_seconds", "duration of each fsync of an event "
                         "log (this process)", stats.FSYNC_SECONDS)

    def _sessions(self) -> Iterator[Metric]:
        manager = self.app.get(keys.SESSIONS)
        yield GaugeMetricFamily("hive_live_sessions", "sessions live in this server",
                                value=len(manager.live()) if manager is not None else 0)
        yield GaugeMetricFamily("hive_sse_subscribers", "open event streams (SSE and live "
                                "feeds)", value=len(self.app[keys.SSE_STREAMS]))
        yield CounterMetricFamily("hive_sse_dropped", "event stream subscribers ended "
                                  "because they fell a whole buffer behind (this process)",
                                  value=stats.BUS_DROPS.value)

    def _cluster(self) -> Iterator[Metric]:
        """The node's share of a cluster on Redis: sessions owned (its leases; the live
        sessions with files), takeovers, lease renewals and losses, forwarded commands."""
        node, manager = self.app.get(keys.REDIS_NODE), self.app.get(keys.SESSIONS)
        owned = (node.keeper.owned_count if node is not None
                 else len(manager.live()) if manager is not None else 0)
        yield GaugeMetricFamily("hive_sessions_owned", "sessions this node runs: the leases "
                                "it holds on Redis, the live sessions with files", value=owned)
        yield CounterMetricFamily("hive_takeovers", "sessions this node took over from a node "
                                  "whose lease lapsed (this process)",
                                  value=stats.TAKEOVERS.value)
        yield CounterMetricFamily("hive_leases_lost", "session leases this node gave up: "
                                  "taken over, lapsed or not renewed in time (this process)",
                                  value=stats.LEASES_LOST.value)
        yield _histogram("hive_lease_renew_seconds", "duration of each round renewing the "
                         "node's leases, one pipeline for all (this process)",
                         stats.LEASE_RENEW_SECONDS)
        yield _histogram("hive_forward_seconds", "commands forwarded to a session's owner "
                         "node, from sending to its reply (this process)", stats.FORWARD_SECONDS)

    def _triggers(self) -> Iterator[Metric]:
        scheduler = self.app.get(keys.SCHEDULER)
        lag = scheduler.lag if scheduler is not None else Histogram(stats.LAG_BUCKETS)
        fires = CounterMetricFamily("hive_trigger_fires", "timer trigger fires",
                                    value=sum(lag.counts))
        yield fires
        yield _histogram("hive_trigger_fire_lag_seconds", "from a timer's scheduled tick to "
                         "its fire", lag)

    def _webhooks(self) -> Metric:
        family = CounterMetricFamily("hive_webhook_deliveries", "webhook deliveries by "
                                     "outcome: accepted (handed to sessions or held), "
                                     "duplicate, refused (4xx/5xx)", labels=["outcome"])
        ingress = self.app.get(keys.WEBHOOKS)
        refused = sum(count for (route, _, status), count
                      in self.app[keys.REQUEST_COUNTS].items()
                      if route == HOOKS_ROUTE and status >= 400)
        family.add_metric(["accepted"], ingress.accepted if ingress is not None else 0)
        family.add_metric(["duplicate"], ingress.duplicates if ingress is not None else 0)
        family.add_metric(["refused"], refused)
        return family

    def _llm(self) -> Iterator[Metric]:
        llm = self.app[keys.METERED_LLM]
        turns = CounterMetricFamily("hive_llm_turns", "model turns by outcome (ok, cancelled "
                                    "or the error type)", labels=["outcome"])
        for outcome, count in sorted(llm.turns.items()):
            turns.add_metric([outcome], count)
        yield turns
        tokens = CounterMetricFamily("hive_llm_tokens", "model tokens by kind",
                                     labels=["kind"])
        for kind, count in sorted(llm.tokens.items()):
            tokens.add_metric([kind], count)
        yield tokens
        yield _histogram("hive_llm_turn_seconds", "duration of each model turn", llm.seconds)

    def _spend(self) -> Iterator[Metric]:
        """Spend of the live sessions (their accounting: the queen's and workers' turns) by
        session and agent, today's by agent, and what is left of the day's limits."""
        budgets = self.app.get(keys.BUDGETS)
        if budgets is None:
            return
        tokens = CounterMetricFamily("hive_spend_tokens", "input plus output tokens of each "
                                     "live session", labels=["session", "agent"])
        cost = CounterMetricFamily("hive_spend_cost_usd", "estimated USD of each live session",
                                   labels=["session", "agent"])
        for session_id, budget in sorted(budgets.sessions.items()):
            spent, labels = budget.spent(), [session_id, budget.session.meta.agent_id or ""]
            tokens.add_metric(labels, spent.tokens)
            cost.add_metric(labels, spent.cost_usd)
        yield tokens
        yield cost
        yield GaugeMetricFamily("hive_budget_parked_sessions", "live sessions parked by a "
                                "spend limit", value=sum(b.park is not None
                                                         for b in budgets.sessions.values()))
        left = GaugeMetricFamily("hive_budget_remaining", "what is left of today's server-wide "
                                 "and per-agent limits", labels=["level", "scope", "kind"])
        for view in budgets.server_view().limits:
            left.add_metric([view.level, view.scope, view.kind], view.remaining)
        yield left
