"""The console's resources, opened once at start-up beside the main app's (its services, pipeline)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from aiohttp import web
from jinja2 import Environment

from bot import keys
from bot.config import Settings
from bot.console.auth import LoginLimiter, Session, Sessions
from bot.console.render import environment
from bot.jobs import build_broker
from bot.metrics import Metrics
from bot.records import pii_codec
from bot.services.notify.catalog import ProcedureInfo, build_catalog, seed_windows, titles
from bot.services.notify.jobs import kick_notification, start_senders
from bot.services.notify.review import ReviewDesk
from bot.services.notify.templates import TemplateConfig, load_templates
from bot.services.notify.ticker import Ticker
from bot.services.payments.fees import load_fees
from dialogs.procedure import Procedure
from dialogs.registry import load_procedures
from storage.files import FileStore
from storage.keys import KeyBuilder
from storage.sql.db import Database
from storage.sql.identity import PiiCodec
from storage.sql.stages import Audience

log = logging.getLogger("bot.console")


@dataclass
class Console:
    settings: Settings
    db: Database
    redis: aioredis.Redis
    sessions: Sessions
    limiter: LoginLimiter
    templates: TemplateConfig
    catalog: Mapping[str, ProcedureInfo]
    desk: ReviewDesk
    files: FileStore
    codec: PiiCodec
    env: Environment
    broker: Any
    metrics: Metrics
    clock: Callable[[], float] = time.time
    procedures: Mapping[str, Procedure] = field(default_factory=dict)  # which stored values are answers

    def now(self) -> datetime:
        """The app's clock as a UTC datetime (tests move it; production reads the wall clock)."""
        return datetime.fromtimestamp(self.clock(), UTC)

    @property
    def titles(self) -> dict[str, str]:
        return titles(self.catalog)

    def audience(self, audience: Audience) -> Audience:
        """The audience with the orders that mean "paid" for its procedure."""
        info = self.catalog.get(audience.procedure or "")
        return audience.with_orders(info.orders) if info else audience

    def orders_for(self, procedure: str | None) -> tuple[tuple[str, str], ...]:
        info = self.catalog.get(procedure or "")
        return info.orders if info else ()

    async def start_broadcast(self, broadcast_id: int) -> None:
        await start_senders(self.broker, broadcast_id, self.settings.broadcast_senders)


CONSOLE = web.AppKey("console", Console)
SESSION: web.RequestKey[Session | None] = web.RequestKey("console_session")


async def console_state(parent: web.Application, app: web.Application) -> AsyncIterator[None]:
    """On the main app's cleanup_ctx, after its own resources (open by now, closed after this); ``app``: the console."""
    settings = parent[keys.SETTINGS]
    db = getattr(parent.get(keys.SERVICES), "db", None)
    if settings.memory_state or not isinstance(db, Database):
        log.warning("staff console off: it needs redis:// and the SQL records (GRADBOT_REDIS_URL=%s)",
                    settings.redis_url.split("://", 1)[0] + "://")
        yield
        return
    client = aioredis.Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=2)
    ticking: asyncio.Task[None] | None = None
    try:
        console = await _open(parent, settings, db, client)
        app[CONSOLE] = console
        parent[CONSOLE] = console
        ticker = Ticker(db, client, KeyBuilder(settings.redis_prefix, settings.wechat_appid), console.broker,
                        settings.broadcast_senders)
        ticking = asyncio.create_task(ticker.run(), name="notify-ticker")  # cancelled below, on shutdown
        yield
    finally:
        try:
            if ticking is not None:
                ticker.stop()
                ticking.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await ticking  # re-raises what ended the ticker, if anything else did
        finally:
            await client.aclose()


async def _open(parent: web.Application, settings: Settings, db: Database, client: aioredis.Redis) -> Console:
    kb = KeyBuilder(settings.redis_prefix, settings.wechat_appid)
    procedures_dir = Path(settings.procedures_dir) if settings.procedures_dir else None
    procedures = {p.name: p for p in load_procedures(procedures_dir)}
    catalog = build_catalog(procedures.values(), load_fees())
    await seed_windows(db, catalog)
    templates = load_templates(settings.notify_templates)
    broker = build_broker(settings, client=client)
    desk = ReviewDesk(settings, db, templates, catalog, parent[keys.PIPELINE], parent[keys.STORE],
                      parent.get(keys.JOBS), partial(kick_notification, broker), parent[keys.CLOCK])
    return Console(settings, db, client, Sessions(client, kb, settings.console_session_ttl), LoginLimiter(client, kb),
                   templates, catalog, desk, FileStore.under(settings.data_dir), pii_codec(settings), environment(),
                   broker, parent[keys.METRICS], parent[keys.CLOCK], procedures)
