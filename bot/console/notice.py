"""The page a review-result template message opens: the result, the reasons and the next step.

Public (the student opens it from WeChat) and reached only through an unguessable 128-bit token;
it shows nothing personal (no name, no ID number).
"""

from __future__ import annotations

import re

from aiohttp import web

from bot.console.render import page
from bot.console.state import CONSOLE
from bot.services.notify.review import Decision, next_step
from storage.sql import notifications, reviews

TOKEN = re.compile(r"^[0-9a-f]{32}$")


async def notice(request: web.Request) -> web.StreamResponse:
    console = request.app.get(CONSOLE)
    token = request.match_info["token"]
    if console is None or not TOKEN.match(token):
        raise web.HTTPNotFound()
    async with console.db.read() as conn:
        sent = await notifications.by_token(conn, token)
        review = await reviews.get(conn, int(sent.ref.split(":", 1)[1])) if sent and sent.ref.startswith(
            "review:") else None
    if sent is None or review is None:
        return page(console.env, "notice.html.j2", 404, found=False, review=None, info=None, data={})
    info = console.catalog.get(review.procedure)
    decided = Decision(review.state == "approved", tuple(review.reasons or ()), review.note or "")
    return page(console.env, "notice.html.j2", found=True, review=review, info=info, data=sent.data,
                title=info.title if info else review.procedure, next_step=next_step(decided, info))
