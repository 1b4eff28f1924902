"""create_app(settings): the composition root of the web process."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack

import redis.asyncio as aioredis
from aiohttp import web
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

import handlers
from bot import keys, logs, simulator
from bot.config import Settings
from bot.console.app import mount as mount_console
from bot.jobs import JobQueue
from bot.metrics import Metrics
from bot.pipeline import Dispatch, FollowUps, Pipeline
from bot.render import Renderer
from bot.services.container import Services, open_services
from bot.services.privacy import seal_sessions
from bot.tasks import TaskSet
from bot.web import callback, documents, files, health, pay
from storage.base import SessionStore
from storage.keys import KeyBuilder
from storage.memory import MemorySessionStore
from storage.redis import RedisSessionStore

SHUTDOWN_GRACE = 10.0
DISPATCH: web.AppKey[Dispatch] = web.AppKey("dispatch")


def redis_client(settings: Settings) -> aioredis.Redis:
    # socket_timeout must exceed the BLPOP slice of a waiting turn (0.5 s).
    # One immediate retry on a dropped connection (every pooled one is stale after a Redis restart), none
    # on a timeout: a hung Redis must fail within the reply budget (docs/operations.md, faults).
    return aioredis.Redis.from_url(settings.redis_url, socket_timeout=3, socket_connect_timeout=1,
                                   health_check_interval=30, retry=Retry(NoBackoff(), 1, (RedisConnectionError,)))


def session_store(settings: Settings, client: aioredis.Redis | None) -> SessionStore:
    if client is None:
        return MemorySessionStore(session_ttl=settings.session_ttl, dedup_ttl=settings.dedup_ttl)
    return seal_sessions(settings, RedisSessionStore(client, KeyBuilder(settings.redis_prefix, settings.wechat_appid),
                                                     session_ttl=settings.session_ttl, dedup_ttl=settings.dedup_ttl,
                                                     lease_ms=settings.lock_lease_ms))


def create_app(settings: Settings, *, clock: Callable[[], float] = time.time, jobs: FollowUps | None = None,
               services: Services | None = None, dispatch: Dispatch = handlers.dispatch) -> web.Application:
    app = web.Application(client_max_size=settings.max_body_bytes)
    logs.install(app)  # request ids on every log line and response (bot/logs.py)
    app[keys.SETTINGS] = settings
    app[keys.CLOCK] = clock
    app[keys.METRICS] = Metrics()
    app[keys.RENDERER] = Renderer()
    app[keys.TASKS] = TaskSet()
    if services is not None:
        app[keys.SERVICES] = services
    if jobs is not None:
        app[keys.JOBS] = jobs
    app[DISPATCH] = dispatch
    app.cleanup_ctx.append(_state)
    app.router.add_get("/wechat", callback.get_callback)
    app.router.add_post("/wechat", callback.post_callback)
    app.router.add_get("/healthz", health.healthz)
    app.router.add_get("/readyz", health.readyz)
    app.router.add_get("/metrics", health.metrics)
    pay.add_pay_routes(app)
    files.add_file_routes(app)
    documents.add_document_routes(app)  # generated PDFs and the upload page (docs/procedures.md)
    mount_console(app)  # staff console sub-app at /console/ and the review-result page (docs/console.md)
    simulator.mount(app)  # the chat simulator at /simulator/, only when enabled (docs/demo.md)
    return app


async def _state(app: web.Application) -> AsyncIterator[None]:
    """Open every resource of the web process; close them in reverse order on shutdown."""
    settings = app[keys.SETTINGS]
    client = None if settings.memory_state else redis_client(settings)
    store = session_store(settings, client)
    app[keys.STORE] = store
    async with AsyncExitStack() as stack:
        stack.push_async_callback(store.close)
        if app.get(keys.SERVICES) is None:
            app[keys.SERVICES] = await stack.enter_async_context(
                open_services(settings, client, app[keys.RENDERER], app[keys.CLOCK], app[keys.METRICS]))
        if app.get(keys.JOBS) is None:
            app[keys.JOBS] = JobQueue.for_web(settings, client, store, app[keys.TASKS])
        app[keys.PIPELINE] = Pipeline(store, app[DISPATCH], app[keys.RENDERER], app[keys.METRICS],
                                      services=app[keys.SERVICES], clock=app[keys.CLOCK])
        yield
        await app[keys.TASKS].drain(SHUTDOWN_GRACE)
