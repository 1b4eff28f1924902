"""Events from outside the chat for one student, run inside their turn (``Pipeline.external``).

``external:paid``: WeChat Pay confirmed a payment (bot/web/pay_notify.py). If the student's current
dialog state accepts the trigger ``paid`` (and, when it records ``pay_item``, for this item), the
dialog steps as if the student had answered; otherwise they just hear that the money arrived.
"""

from __future__ import annotations

import json
from typing import Any

from bot.services.payments.fees import yuan
from bot.wechat.inbound import Inbound
from dialogs.actions import Call
from dialogs.session import Frame
from dialogs.spec import say
from handlers.base import Context, Outcome

PAID = "paid"


def payment_payload(inbound: Inbound) -> dict[str, Any]:
    try:
        data = json.loads(inbound.content or "{}")
    except ValueError:
        data = {}
    payload = dict(data) if isinstance(data, dict) else {}
    payload["amount_yuan"] = yuan(int(payload.get("amount_fen") or 0))
    payload.setdefault("out_trade_no", inbound.event_key)
    return payload


def accepts(ctx: Context, frame: Frame, trigger: str, payload: dict[str, Any]) -> bool:
    engine = ctx.services.engine
    if not engine.is_current(frame):
        return False
    expected_item = frame.data.get("pay_item")
    if expected_item is not None and expected_item != payload.get("item"):
        return False
    spec = engine.specs[frame.dialog]
    for t in spec.transitions:
        sources = (t.source,) if isinstance(t.source, str) else t.source
        if t.trigger == trigger and frame.state in sources:
            return True
    return False


async def on_paid(inbound: Inbound, ctx: Context) -> Outcome:
    payload = payment_payload(inbound)
    frame = ctx.session.top
    if frame is None or ctx.services is None or not accepts(ctx, frame, PAID, payload):
        return Outcome([say("pay/received", payload=payload)])
    result = ctx.services.engine.fire(frame, PAID, payload, ctx.now)
    for effect in result.effects:
        await ctx.services.actions.apply(effect, Call(inbound.openid, frame.data, payload, ctx.now))
    if result.finished:
        ctx.session.stack.pop()
    return Outcome(result.replies)
