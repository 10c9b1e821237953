"""Composition root: ``create_app`` builds the application and nothing else.

Everything that starts and stops is an ``app.cleanup_ctx`` generator (torn down in reverse
order); SSE streams are ended in ``on_shutdown`` so a SIGTERM never waits on open clients.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, cast

from aiohttp import web

from hive_server import keys
from hive_server.core.clock import Clock, SystemClock
from hive_server.llm.base import LLMClient
from hive_server.llm.factory import make_llm
from hive_server.models.budget import BudgetLimit
from hive_server.services.budget.budgets import make_budgets
from hive_server.services.budget.ledger import Ledger
from hive_server.services.catalog.agents import AgentCatalog, CatalogWatcher
from hive_server.services.catalog.queens import QueenRegistry
from hive_server.services.catalog.watcher import FolderWatcher, stop_watchers
from hive_server.services.journal.accounting import ColdTotals
from hive_server.services.sessions.manager import SessionManager, SessionOptions
from hive_server.services.sessions.queen_sessions import QueenSessions
from hive_server.services.sessions.store import SessionStore
from hive_server.services.sessions.webhook_ingress import PeekTriggers, WebhookIngress
from hive_server.services.triggers.scheduler import TriggerScheduler
from hive_server.services.webhooks.deliveries import DeliveryRecords, DeliveryStore
from hive_server.services.webhooks.inbox import HeldInbox, WebhookInbox
from hive_server.settings import Settings
from hive_server.web import (
    colony,
    config,
    export,
    files,
    health,
    history,
    hooks,
    live,
    metrics,
    openapi,
    queen,
    queen_sessions,
    session_panels,
    sessions,
    sse,
    triggers,
    unmatched,
    usage,
)
from hive_server.web.console import console_routes
from hive_server.web.detail_cache import DetailCache
from hive_server.web.errors import SERVER_LOG, error_middleware
from hive_server.web.metrics import metrics_middleware
from hive_server.web.security import Guard
from hive_server.web.sse_streams import SseStreams
from hive_server.web.ui import ui_routes

if TYPE_CHECKING:  # redis-py is imported only with --redis
    from hive_server.services.sessions.store_redis import RedisSessionStore
    from hive_server.services.sessions.takeover import TakeoverLoop

log = logging.getLogger(__name__)
SHUTDOWN_RESERVE = 1.0  # of the shutdown grace, kept for the listeners and cleanup contexts


def create_app(settings: Settings, *, llm: LLMClient | None = None,
               clock: Clock | None = None) -> web.Application:
    # the security checks, the error mapping and the request counts: around each route's handler
    counts: metrics.RequestCounts = {}
    guard = Guard(settings, metrics.RequestCounter(counts))
    app = web.Application(client_max_size=settings.max_body_bytes,
                          handler_args={"logger": SERVER_LOG})
    app[keys.SETTINGS], app[keys.GUARD] = settings, guard
    app[keys.CLOCK] = clock or SystemClock()
    app[keys.LLM] = llm or make_llm(settings.anthropic_api_key, settings.anthropic_base_url,
                                    settings.model)
    metrics.install(app, counts)
    app[keys.SSE_STREAMS] = SseStreams()
    app[keys.DETAIL_CACHE] = DetailCache()
    app[keys.COLD_USAGE] = ColdTotals()
    app.cleanup_ctx.append(_llm_ctx)
    app.cleanup_ctx.append(_folders_ctx)
    app.cleanup_ctx.append(_scheduler_ctx)
    if settings.redis is not None:  # before the budgets: their ledger is Redis's then
        app.cleanup_ctx.append(_redis_ctx)
    app.cleanup_ctx.append(_budgets_ctx)
    app.cleanup_ctx.append(_sessions_ctx)
    app.on_shutdown.append(_end_streams)
    # the most polled first: aiohttp tries the routes under a path's prefix in this order
    for table in (health.routes, sessions.routes, live.routes, sse.routes, queen.routes,
                  colony.routes, triggers.routes, hooks.routes, openapi.routes, config.routes,
                  history.routes, queen_sessions.routes, session_panels.routes, metrics.routes,
                  usage.routes, export.routes):
        app.add_routes(guard.guarded(table))
    app.add_routes(guard.guarded(files.routes))
    app.add_routes(guard.guarded(ui_routes(settings.ui_dir) if settings.ui_dir
                                 else console_routes()))
    app.router.add_route("*", unmatched.PATH, guard.wrap(unmatched.unmatched))  # the last
    return app


async def _llm_ctx(app: web.Application) -> AsyncIterator[None]:
    yield
    await app[keys.LLM].aclose()


async def _folders_ctx(app: web.Application) -> AsyncIterator[None]:
    """Queen profiles and the agent catalog, each reloaded by its folder's watcher while the
    server runs (``watch_folders``); the two watchers stop concurrently."""
    settings = app[keys.SETTINGS]
    registry = QueenRegistry(settings.queens_dir)
    catalog = AgentCatalog(settings.agents_dir, clock=app[keys.CLOCK])
    app[keys.QUEENS], app[keys.CATALOG] = registry, catalog
    watchers = (FolderWatcher(registry.queens_dir, registry.reload, name="queens",
                              watch=settings.watch_folders),
                CatalogWatcher(catalog, watch=settings.watch_folders))
    try:
        for watcher in watchers:
            await watcher.start()
        yield
    finally:
        await stop_watchers(watchers)  # a watcher never started stops at once


async def _scheduler_ctx(app: web.Application) -> AsyncIterator[None]:
    """The one owner of every timer task (closed after the sessions are stopped)."""
    scheduler = TriggerScheduler(app[keys.CLOCK])
    app[keys.SCHEDULER] = scheduler
    yield
    await scheduler.close()


async def _budgets_ctx(app: web.Application) -> AsyncIterator[None]:
    """Spend limits (closed after the sessions): today's ledger, the midnight recheck, and a
    recheck of parked sessions when agent folders change (an agent's budget)."""
    settings = app[keys.SETTINGS]
    budgets = make_budgets(
        settings.home, app[keys.CLOCK], app[keys.CATALOG],
        daily=BudgetLimit(tokens=settings.daily_budget_tokens,
                          cost_usd=settings.daily_budget_usd),
        session_default=BudgetLimit(tokens=settings.session_budget_tokens,
                                    cost_usd=settings.session_budget_usd),
        ledger=_redis_ledger(app))
    app[keys.BUDGETS] = budgets
    await budgets.start()
    unsubscribe = app[keys.CATALOG].subscribe(budgets.recheck_soon)
    yield
    unsubscribe()
    await budgets.close()


async def _redis_ctx(app: web.Application) -> AsyncIterator[None]:
    """With ``--redis``: this node's client, leases, feed and forwarder (``RedisNode``),
    started before the sessions and closed after them."""
    # imported here: redis-py costs about 160 ms, which only a server with --redis pays
    from hive_server.core.redis_conn import connect
    from hive_server.core.redis_node import RedisNode, default_node_id

    settings = app[keys.SETTINGS]
    assert settings.redis is not None
    client = await connect(settings.redis, settings.durability)
    node = RedisNode(client, settings.node_id or default_node_id(),
                     round(settings.lease_seconds * 1000))
    app[keys.REDIS_NODE] = node
    node.start()
    yield
    await node.close()


async def _sessions_ctx(app: web.Application) -> AsyncIterator[None]:
    settings, llm = app[keys.SETTINGS], app[keys.METERED_LLM]
    options = SessionOptions(
        home=settings.home, durability=settings.durability,
        default_model=llm.default_model, model_override=settings.model, provider=llm.provider,
        bus_queue_size=settings.sse_queue_size, inbox_size=settings.queen_inbox_size,
        stale_turn_seconds=settings.stale_turn_seconds,
        resume_concurrency=settings.resume_concurrency,
        secret=settings.secret,
    )
    clock, node = app[keys.CLOCK], app.get(keys.REDIS_NODE)
    inbox, deliveries = _webhook_stores(app)
    manager = SessionManager(options, llm=llm, queens=app[keys.QUEENS],
                             catalog=app[keys.CATALOG], clock=clock,
                             scheduler=app[keys.SCHEDULER], inbox=inbox,
                             budgets=app[keys.BUDGETS],
                             store=app.get(keys.SESSION_STORE) or _redis_store(app), node=node)
    app[keys.SESSIONS] = manager
    app[keys.QUEEN_SESSIONS] = QueenSessions(manager)
    app[keys.WEBHOOKS] = WebhookIngress(
        catalog=app[keys.CATALOG], sessions=manager, store=deliveries, inbox=inbox, clock=clock,
        secret=settings.secret, allow_unsigned=settings.webhooks_loopback,
        forwarder=node.forwarder if node is not None else None, peek_triggers=_peek_triggers(app))
    manager.store.index.warm()  # opened (and rebuilt if need be) on its own thread
    await manager.boot.start()  # the listener opens meanwhile: health says ``resuming``
    takeover = _takeover_loop(manager)
    yield
    if takeover is not None:
        await takeover.close()
    await manager.shutdown()
    await manager.store.index.close()


def _redis_ledger(app: web.Application) -> Ledger | None:
    """With ``--redis``: today's spend of every node (``ledger_redis.py``); None: the file's."""
    if (node := app.get(keys.REDIS_NODE)) is None:
        return None
    from hive_server.services.budget.ledger_redis import RedisSpendLedger  # redis-py: lazy

    return RedisSpendLedger(node.client, app[keys.CLOCK])


def _webhook_stores(app: web.Application) -> tuple[HeldInbox, DeliveryRecords]:
    """The webhook inbox and the delivery ids seen: files under ``<home>/webhooks``, or with
    ``--redis`` Redis's, shared by the nodes."""
    clock, hooks_dir = app[keys.CLOCK], app[keys.SETTINGS].home / "webhooks"
    if (node := app.get(keys.REDIS_NODE)) is None:
        return WebhookInbox(hooks_dir), DeliveryStore(hooks_dir, clock=clock)
    from hive_server.services.webhooks.deliveries_redis import RedisDeliveryStore  # lazy
    from hive_server.services.webhooks.inbox_redis import RedisWebhookInbox

    return RedisWebhookInbox(node.client), RedisDeliveryStore(node.client)


def _peek_triggers(app: web.Application) -> PeekTriggers | None:
    """With ``--redis``: how the ingress reads the trigger state of other nodes' sessions."""
    if (node := app.get(keys.REDIS_NODE)) is None:
        return None
    from hive_server.services.triggers.store_redis import peek_trigger_states  # lazy

    return functools.partial(peek_trigger_states, node.client)


def _redis_store(app: web.Application) -> SessionStore | None:
    """With ``--redis``: the sessions in Redis (``store_redis.py``); None: in files."""
    if (node := app.get(keys.REDIS_NODE)) is None:
        return None
    from hive_server.services.sessions.store_redis import RedisSessionStore  # redis-py: lazy

    return cast(SessionStore, RedisSessionStore(app[keys.SETTINGS].home, node.client))


def _takeover_loop(manager: SessionManager) -> TakeoverLoop | None:
    """With ``--redis``: the loop that resumes the sessions whose owner's lease lapsed."""
    if manager.node is None:
        return None
    from hive_server.services.sessions.takeover import TakeoverLoop  # redis-py: lazy

    store = cast("RedisSessionStore", manager.store)
    loop = TakeoverLoop(manager.node.client, manager.node.keeper.interval, store.live_ids,
                        manager.is_held, manager.take_over)
    loop.start()
    return loop


async def _end_streams(app: web.Application) -> None:
    """Stop the sessions first (each stream of a session then gets its ``session_stopped``
    before it ends), then end every other stream; the sessions' cleanup finds nothing left."""
    grace = app[keys.SETTINGS].shutdown_grace_seconds
    await app[keys.SESSIONS].shutdown(timeout=max(grace - SHUTDOWN_RESERVE, grace / 2))
    streams = app[keys.SSE_STREAMS]
    for sub in streams:
        sub.close()
    await streams.close()  # its disconnect poller


def create_webhook_app(main: web.Application) -> web.Application:
    """A listener that serves only ``/hooks/*`` with the main app's services (for
    ``--webhook-host/--webhook-port``: expose webhooks while the API stays on loopback)."""
    hooks_app = web.Application(middlewares=[metrics_middleware, error_middleware],
                                handler_args={"logger": SERVER_LOG})
    hooks_app[keys.SETTINGS] = main[keys.SETTINGS]
    hooks_app[keys.REQUEST_COUNTS] = main[keys.REQUEST_COUNTS]  # one count of /hooks answers

    async def share(app: web.Application) -> None:
        app[keys.WEBHOOKS] = main[keys.WEBHOOKS]

    hooks_app.on_startup.append(share)
    hooks_app.add_routes(hooks.routes)
    return hooks_app
