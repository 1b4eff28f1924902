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
from dialogs.spec import say
from handlers import dialog
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


async def on_paid(inbound: Inbound, ctx: Context) -> Outcome:
    payload = payment_payload(inbound)
    frame = ctx.session.top
    expected_item = frame.data.get("pay_item") if frame is not None else None
    stepped = None
    if ctx.services is not None and expected_item in (None, payload.get("item")):
        stepped = await dialog.fire_external(PAID, payload, inbound.openid, ctx)
    if stepped is None:
        return Outcome([say("pay/received", payload=payload)])
    return Outcome([say("pay/received", payload=payload), *stepped])
