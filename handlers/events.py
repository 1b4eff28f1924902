"""Follow, unfollow, menu clicks and delivery reports."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from bot.wechat.inbound import Inbound
from dialogs.actions import Call
from dialogs.engine import Effect
from dialogs.spec import say
from handlers.base import Context, Outcome
from storage.sql import notifications

log = logging.getLogger("handlers.events")


async def on_subscribe(inbound: Inbound, ctx: Context) -> Outcome:
    await ctx.services.actions.apply(Effect("follow"), Call(inbound.openid, {}, {}, ctx.now))
    return Outcome([say("common/welcome")])


async def on_unsubscribe(inbound: Inbound, ctx: Context) -> Outcome:
    # WeChat shows nothing after an unfollow; the session keeps its position for a possible return.
    await ctx.services.actions.apply(Effect("unfollow"), Call(inbound.openid, {}, {}, ctx.now))
    return Outcome([], changed=False)


async def on_delivery_report(inbound: Inbound, ctx: Context) -> Outcome:
    """TEMPLATESENDJOBFINISH: WeChat's delivery result for a template message, matched by its msgid."""
    db = getattr(ctx.services, "db", None)
    if db is not None and inbound.msg_id:
        async with db.begin() as conn:
            matched = await notifications.record_delivery(conn, inbound.msg_id, inbound.status or "unknown",
                                                          datetime.fromtimestamp(ctx.now, UTC))
        if matched is None:
            log.info("delivery report for unknown msgid %s (%s)", inbound.msg_id, inbound.status)
    return Outcome([], changed=False)


async def on_silent(inbound: Inbound, ctx: Context) -> Outcome:
    """Events that expect no answer (VIEW, LOCATION, menu photo pickers whose image follows)."""
    return Outcome([], changed=False)
