"""HTML rendering for the console: its own jinja2 Environment with autoescape on (never the chat one)."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any

from aiohttp import web
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from bot.privacy import mask_openid
from bot.services.notify.broadcast import STAGE_TITLES
from bot.services.notify.limiter import CHINA

STATE_TITLES = {
    "pending": "待审核", "approved": "已通过", "rejected": "未通过", "superseded": "已被新提交取代",
    "scheduled": "已排期", "sending": "发送中", "paused": "已暂停", "done": "已完成", "cancelled": "已取消",
    "sent": "已发送", "failed": "失败",
}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def china_time(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return value.astimezone(CHINA).strftime(fmt) if value else ""


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("bot.console", "templates"),
        undefined=StrictUndefined,
        autoescape=select_autoescape(enabled_extensions=("html", "j2"), default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["china_time"] = china_time
    env.filters["mask_openid"] = mask_openid
    env.filters["state_title"] = lambda s: STATE_TITLES.get(str(s), str(s))
    env.filters["stage_title"] = lambda s: STAGE_TITLES.get(str(s), str(s))
    return env


def page(env: Environment, name: str, status: int = 200, **context: Any) -> web.Response:
    html = env.get_template(name).render(**context)
    return web.Response(text=html, content_type="text/html", status=status, headers=SECURITY_HEADERS)
