"""``external:uploaded``: a file arrived through a procedure's upload page (bot/web/documents.py).

The procedure waiting in that very upload state steps on, as if the student had answered; anyone
else just hears that the file arrived (it is stored either way and counts when they get there).
"""

from __future__ import annotations

import json
from typing import Any

from bot.wechat.inbound import Inbound
from dialogs.spec import say
from handlers import dialog
from handlers.base import Context, Outcome

UPLOADED = "uploaded"


def upload_payload(inbound: Inbound) -> dict[str, Any]:
    try:
        data = json.loads(inbound.content or "{}")
    except ValueError:
        data = {}
    payload = dict(data) if isinstance(data, dict) else {}
    payload["title"] = str(payload.get("title") or "")
    return payload


async def on_uploaded(inbound: Inbound, ctx: Context) -> Outcome:
    payload = upload_payload(inbound)
    frame = ctx.session.top
    stepped = None
    here = frame is not None and (frame.dialog, frame.state) == (payload.get("procedure"), payload.get("state"))
    if ctx.services is not None and here:
        stepped = await dialog.fire_external(UPLOADED, payload, inbound.openid, ctx)
    if stepped is None:
        return Outcome([say("procedure/upload_received", payload=payload)])
    return Outcome(stepped)
