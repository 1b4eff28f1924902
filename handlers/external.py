"""Events from outside the chat for one student, run inside their turn (``Pipeline.external``).

``external:paid``: WeChat Pay confirmed a payment (bot/web/pay_notify.py). If the student's current
dialog state accepts the trigger ``paid`` (and, when it records ``pay_item``, for this item), the
dialog steps as if the student had answered; otherwise they just hear that the money arrived.

``external:review_approved`` / ``external:review_rejected``: staff decided a review (the console,
bot/services/notify/review.py). The procedure dialog waiting for it steps on (a rejection sends it
back to the photo step); a student in no such state just hears the result.
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
REVIEW_APPROVED, REVIEW_REJECTED = "review_approved", "review_rejected"


def _content(inbound: Inbound) -> dict[str, Any]:
    """The JSON object the outside event carries (anything else reads as empty)."""
    try:
        data = json.loads(inbound.content or "{}")
    except ValueError:
        data = {}
    return dict(data) if isinstance(data, dict) else {}


def payment_payload(inbound: Inbound) -> dict[str, Any]:
    payload = _content(inbound)
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


def review_payload(inbound: Inbound) -> dict[str, Any]:
    """``{"review_id", "procedure", "reasons": [text, ...], "note", ...}`` as the console sent it."""
    payload = _content(inbound)
    reasons = payload.get("reasons")
    payload["reasons"] = [str(r) for r in reasons] if isinstance(reasons, list) else []
    payload["note"] = str(payload.get("note") or "")
    payload["procedure"] = str(payload.get("procedure") or "")
    payload.setdefault("procedure_title", payload["procedure"])
    return payload


async def on_review_approved(inbound: Inbound, ctx: Context) -> Outcome:
    return await _on_review(inbound, ctx, REVIEW_APPROVED)


async def on_review_rejected(inbound: Inbound, ctx: Context) -> Outcome:
    return await _on_review(inbound, ctx, REVIEW_REJECTED)


async def _on_review(inbound: Inbound, ctx: Context, trigger: str) -> Outcome:
    """The procedure waiting for this review steps on; otherwise the student just hears the result."""
    payload = review_payload(inbound)
    frame = ctx.session.top
    stepped = None
    if ctx.services is not None and frame is not None and frame.dialog == payload["procedure"]:
        stepped = await dialog.fire_external(trigger, payload, inbound.openid, ctx)
    if stepped is None:
        return Outcome([say(f"review/{trigger.removeprefix('review_')}", payload=payload)])
    return Outcome(stepped)
