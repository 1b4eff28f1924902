"""The routing table: kind of message (or event) → thin handler."""

from __future__ import annotations

from bot.wechat.inbound import Inbound
from handlers import dialog, events, external, text, uploads
from handlers.base import Context, Handler, Outcome

# Keys are Inbound.label values: the message type, or "event:<name>".
ROUTES: dict[str, Handler] = {
    "text": dialog.on_input,
    "image": dialog.on_input,
    "event:click": dialog.on_input,
    "event:subscribe": events.on_subscribe,
    "event:subscribe_scan": events.on_subscribe,
    "event:unsubscribe": events.on_unsubscribe,
    "event:templatesendjobfinish": events.on_delivery_report,
    "event:view": events.on_silent,
    "event:location": events.on_silent,
    "event:pic_photo_or_album": events.on_silent,  # the photo itself follows as an image message
    "event:pic_sysphoto": events.on_silent,
    "event:pic_weixin": events.on_silent,
    "external:paid": external.on_paid,
    "external:review_approved": external.on_review_approved,
    "external:review_rejected": external.on_review_rejected,
    "external:uploaded": uploads.on_uploaded,
}


async def dispatch(inbound: Inbound, ctx: Context) -> Outcome:
    if inbound.kind == "external":  # a payment, a review or an upload changed the facts
        dialog.forget_status(ctx)
    default = events.on_silent if inbound.kind == "event" else text.on_unsupported
    handler = ROUTES.get(inbound.label, default)
    return await handler(inbound, ctx)


__all__ = ["ROUTES", "Context", "Outcome", "dispatch"]
