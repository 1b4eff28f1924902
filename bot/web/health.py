"""Liveness, readiness and metrics."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from bot import keys


async def healthz(request: web.Request) -> web.StreamResponse:
    return web.json_response({"ok": True})


async def readyz(request: web.Request) -> web.StreamResponse:
    redis_ok = await request.app[keys.STORE].ping()
    body = {"redis": redis_ok}
    return web.json_response(body, status=200 if all(body.values()) else 503)


async def metrics(request: web.Request) -> web.StreamResponse:
    data = request.app[keys.METRICS].render()
    return web.Response(body=data, headers={"Content-Type": CONTENT_TYPE_LATEST})
