"""The chat simulator (``/simulator/``): a phone-shaped page that plays the WeChat client (docs/demo.md).

A development tool: it signs callbacks as any student, so it exists only while ``GRADBOT_SIMULATOR``
is on (``make demo`` turns it on) and gradbot talks to the WeChat stand-in, never to real WeChat.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path

import aiohttp
from aiohttp import web
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from bot import keys
from bot.config import WECHAT_API_DEFAULT
from bot.services.notify.templates import load_templates
from bot.simulator import views
from bot.simulator.bridge import Bridge

log = logging.getLogger("bot.simulator")
STATIC = Path(__file__).with_name("static")


def mount(app: web.Application) -> None:
    """Add the simulator to the main app when the settings allow it."""
    settings = app[keys.SETTINGS]
    if not settings.simulator:
        return
    if settings.wechat_api_base.rstrip("/") == WECHAT_API_DEFAULT:
        log.warning("chat simulator off: it needs the WeChat stand-in (GRADBOT_WECHAT_API_BASE), not real WeChat")
        return
    app.router.add_get("/simulator", _to_page)  # before the sub-app, which would claim the bare prefix too
    app.add_subapp("/simulator/", create_simulator(app))


def create_simulator(parent: web.Application) -> web.Application:
    sub = web.Application()
    sub.cleanup_ctx.append(partial(_resources, parent))
    sub.router.add_get("/", views.page)
    sub.router.add_get("/api/config", views.config)
    sub.router.add_post("/api/send", views.send)
    sub.router.add_get("/api/inbox/{openid}", views.inbox)
    sub.router.add_get("/api/media/{media_id}", views.media)
    sub.router.add_static("/static/", STATIC)
    return sub


async def _to_page(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/simulator/")


def _environment() -> Environment:
    return Environment(loader=PackageLoader("bot.simulator", "templates"), undefined=StrictUndefined,
                       autoescape=select_autoescape(enabled_extensions=("html", "j2"), default=True))


async def _resources(parent: web.Application, app: web.Application) -> AsyncIterator[None]:
    settings = parent[keys.SETTINGS]
    async with aiohttp.ClientSession() as http:
        clock = parent[keys.CLOCK]
        app[views.SIMULATOR] = views.Simulator(Bridge(settings, http, clock), load_templates(settings.notify_templates),
                                               _environment(), clock)
        log.info("chat simulator on at /simulator/ (stand-in %s, safe mode %s)", settings.wechat_api_base,
                 "on" if settings.safe_mode else "off")
        yield
