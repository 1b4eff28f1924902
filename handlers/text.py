"""Plain text outside any dialog."""

from __future__ import annotations

from bot.wechat.inbound import Inbound
from dialogs.spec import say
from handlers.base import Context, Outcome

HELP_WORDS = {"帮助", "?", "？", "help", "菜单"}


async def on_text(inbound: Inbound, ctx: Context) -> Outcome:
    if inbound.content.strip().lower() in HELP_WORDS:
        return Outcome([say("common/help")], changed=False)
    return Outcome([say("common/fallback")], changed=False)


async def on_unsupported(inbound: Inbound, ctx: Context) -> Outcome:
    return Outcome([say("common/unsupported")], changed=False)
