"""A document a student submitted, for the staff reviewing it (same scope rules as the photo)."""

from __future__ import annotations

from aiohttp import web

from bot.console.base import console_of, staff
from bot.console.views_reviews import _visible
from storage.files import FileNotStored

SAFE_TYPES = {"image/jpeg", "image/png", "application/pdf", "application/zip"}


@staff()
async def document(request: web.Request) -> web.StreamResponse:
    """``/console/reviews/{review_id}/document/{n}``: the n-th file the review item lists."""
    review = await _visible(request)
    files = [d for d in review.documents if d.get("sha256")]
    try:
        item = files[int(request.match_info["n"])]
        data = console_of(request).files.get(str(item["sha256"]))
    except (IndexError, ValueError, FileNotStored):
        raise web.HTTPNotFound() from None
    ctype = str(item.get("content_type") or "application/octet-stream")
    ctype = ctype if ctype in SAFE_TYPES else "application/octet-stream"
    disposition = "inline" if ctype.startswith("image/") else "attachment"
    return web.Response(body=data, content_type=ctype, headers={
        "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
        "Content-Disposition": f'{disposition}; filename="document-{request.match_info["n"]}"'})
