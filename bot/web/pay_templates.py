"""The HTML environment of the pay page (autoescape on; separate from the chat-text environment)."""

from __future__ import annotations

from functools import lru_cache

from jinja2 import Environment, PackageLoader, StrictUndefined

from bot.services.payments.fees import yuan


@lru_cache(maxsize=1)
def html_environment() -> Environment:
    env = Environment(
        loader=PackageLoader("bot.web", "templates"),
        undefined=StrictUndefined,
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["yuan"] = yuan
    return env
