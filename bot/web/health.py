"""Liveness, readiness and metrics.

``/readyz`` answers 503 unless Redis and the database both answer within a second each, so a load
balancer or Kubernetes stops sending callbacks to a process that could only reply "busy".
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable

import sqlalchemy as sa
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from bot import keys
from storage.sql.db import Database

log = logging.getLogger("bot.health")
CHECK_TIMEOUT = 1.0


async def healthz(request: web.Request) -> web.StreamResponse:
    return web.json_response({"ok": True})


async def readyz(request: web.Request) -> web.StreamResponse:
    db = getattr(request.app.get(keys.SERVICES), "db", None)
    redis_ok, db_ok = await asyncio.gather(
        _within(request.app[keys.STORE].ping()),
        _within(_database_answers(db) if db is not None else _false()),
    )
    body = {"redis": redis_ok, "database": db_ok}
    return web.json_response(body, status=200 if all(body.values()) else 503)


async def metrics(request: web.Request) -> web.StreamResponse:
    data = request.app[keys.METRICS].render()
    return web.Response(body=data, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _within(check: Awaitable[bool]) -> bool:
    try:
        return await asyncio.wait_for(check, CHECK_TIMEOUT)
    except Exception as exc:  # a probe only says yes or no; the reason goes to the log
        log.warning("readiness check failed: %s", type(exc).__name__)
        return False


async def _database_answers(db: Database) -> bool:
    async with db.read() as conn:
        return bool((await conn.execute(sa.text("SELECT 1"))).scalar_one() == 1)


async def _false() -> bool:
    return False
