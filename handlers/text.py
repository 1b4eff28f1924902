"""Messages gradbot cannot read (voice, video, location, links, unknown types)."""

from __future__ import annotations

from bot.wechat.inbound import Inbound
from dialogs.spec import say
from handlers.base import Context, Outcome


async def on_unsupported(inbound: Inbound, ctx: Context) -> Outcome:
    return Outcome([say("common/unsupported")], changed=False)
