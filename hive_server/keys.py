"""Every ``web.AppKey`` of the application, typed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CollectorRegistry

from hive_server.core.clock import Clock
from hive_server.llm.base import LLMClient
from hive_server.llm.metered import MeteredLLM
from hive_server.services.budget.budgets import Budgets
from hive_server.services.catalog.agents import AgentCatalog
from hive_server.services.catalog.queens import QueenRegistry
from hive_server.services.journal.accounting import ColdTotals
from hive_server.services.sessions.manager import SessionManager
from hive_server.services.sessions.queen_sessions import QueenSessions
from hive_server.services.sessions.store import SessionStore
from hive_server.services.sessions.webhook_ingress import WebhookIngress
from hive_server.services.triggers.scheduler import TriggerScheduler
from hive_server.settings import Settings
from hive_server.web.detail_cache import DetailCache
from hive_server.web.sse_streams import SseStreams

if TYPE_CHECKING:  # redis-py is imported only by a server started with --redis
    from hive_server.core.redis_node import RedisNode
    from hive_server.web.security import Guard  # which reads keys itself

SETTINGS = web.AppKey("settings", Settings)
CLOCK = web.AppKey("clock", Clock)
LLM = web.AppKey("llm", LLMClient)
SESSIONS = web.AppKey("sessions", SessionManager)
BUDGETS = web.AppKey("budgets", Budgets)  # spend limits (services/budget/budgets.py)
SSE_STREAMS = web.AppKey("sse_streams", SseStreams)  # what ends each open stream
DETAIL_CACHE = web.AppKey("detail_cache", DetailCache)  # GET /api/sessions/{id} bytes
# wraps each route's handler (a route added after create_app: wrap it too)
GUARD: web.AppKey[Guard] = web.AppKey("guard")
QUEENS = web.AppKey("queens", QueenRegistry)
QUEEN_SESSIONS = web.AppKey("queen_sessions", QueenSessions)
CATALOG = web.AppKey("catalog", AgentCatalog)
SCHEDULER = web.AppKey("scheduler", TriggerScheduler)
WEBHOOKS = web.AppKey("webhooks", WebhookIngress)
METERED_LLM = web.AppKey("metered_llm", MeteredLLM)  # app[LLM], counted (the sessions' client)
REQUEST_COUNTS = web.AppKey("request_counts", dict)  # (route, method, status) -> answers
METRICS_REGISTRY = web.AppKey("metrics_registry", CollectorRegistry)
COLD_USAGE = web.AppKey("cold_usage", ColdTotals)  # cold sessions' totals counted from logs
SESSION_STORE = web.AppKey("session_store", SessionStore)  # optional: a test's own store
REDIS_NODE: web.AppKey[RedisNode] = web.AppKey("redis_node")  # only with --redis
