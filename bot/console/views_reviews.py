"""The review queue: oldest first, one item per reviewer at a time, approve or reject with reasons."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bot.console.base import console_of, form_of, in_scope, listed, record, render, session_of, staff
from bot.services.notify.review import REASONS, DecisionError, decision
from dialogs.procedure import Procedure
from storage.files import FileNotStored
from storage.sql import identity, links, photos, reviews
from storage.sql.reviews import Review, ReviewConflict

_IMAGE_TYPES = ((b"\xff\xd8", "image/jpeg"), (b"\x89PNG", "image/png"))


def _review_id(request: web.Request) -> int:
    raw = request.match_info["review_id"]
    if not raw.isdigit() or len(raw) > 18:
        raise web.HTTPNotFound()
    return int(raw)


async def _visible(request: web.Request) -> Review:
    """The review, if it exists and lies within the reviewer's schools (else 404, saying nothing more)."""
    console, session = console_of(request), session_of(request)
    async with console.db.read() as conn:
        review = await reviews.get(conn, _review_id(request))
    if review is None or not in_scope(session, review.school_code):
        raise web.HTTPNotFound()
    return review


@staff()
async def queue(request: web.Request) -> web.StreamResponse:
    console, session = console_of(request), session_of(request)
    async with console.db.read() as conn:
        items = await reviews.queue(conn, schools=session.scope, limit=100)
        total = await reviews.pending_count(conn, schools=session.scope)
    return render(request, "reviews.html.j2", items=items, total=total, titles=console.titles,
                  now=console.clock())


@staff()
async def take_next(request: web.Request) -> web.StreamResponse:
    return await _take_next(request)


async def _take_next(request: web.Request) -> web.StreamResponse:
    """Lease the oldest free item to this reviewer and open it."""
    console, session = console_of(request), session_of(request)
    async with console.db.begin() as conn:
        item = await reviews.claim_next(conn, reviewer=session.user, schools=session.scope, now=console.now())
    if item is None:
        raise web.HTTPFound("/console/reviews?empty=1")
    raise web.HTTPFound(f"/console/reviews/{item.id}")


def checks_of(photo: photos.Photo | None) -> list[dict[str, Any]]:
    raw = photo.checks if photo else None
    items = raw.get("checks", []) if isinstance(raw, dict) else raw if isinstance(raw, list) else []
    return [c for c in items if isinstance(c, dict) and "id" in c]


def spec_items(photo: photos.Photo | None) -> dict[str, str]:
    """Photo spec items a rejection may cite: every check of the photo, by its message."""
    return {str(c["id"]): str(c.get("message") or c["id"]) for c in checks_of(photo)}


def listed_items(review: Review, procedure: Procedure | None) -> list[dict[str, Any]]:
    """What "填写的信息" lists: the student's answers, then the files (in stored order, so the n-th
    file link stays the n-th stored file). Items stored before only answers were kept carry every
    string of the dialog (title, window dates, signed links, ids) as plain ``name``/``value`` pairs:
    of those only the procedure's answer keys are shown, labelled; nothing without a definition."""
    legacy = {str(d["name"]): d.get("value") for d in review.documents if "kind" not in d and "name" in d}
    answers = procedure.review_answers(legacy) if procedure and legacy else []
    kept = [d for d in review.documents if d.get("sha256") or d.get("kind") in ("answer", "document")]
    return answers + kept


@staff()
async def detail(request: web.Request) -> web.StreamResponse:
    return await _show(request)


async def _show(request: web.Request, error: str = "", status: int = 200) -> web.StreamResponse:
    """The item, leased to this reviewer while it is pending and nobody else holds it."""
    console, session = console_of(request), session_of(request)
    review = await _visible(request)
    async with console.db.begin() as conn:
        held = review.state == "pending" and await reviews.claim(conn, review.id, reviewer=session.user,
                                                                 now=console.now())
        review = await reviews.get(conn, review.id) or review
        photo = await photos.get(conn, review.photo_id) if review.photo_id else None
        binding = await identity.get(conn, review.openid)
        link = await links.get(conn, review.openid)
    await record(request, "console.review_view", openid=review.openid, review_id=review.id)
    items = listed_items(review, console.procedures.get(review.procedure))
    return render(request, "review.html.j2", status=status, review=review, items=items, held=held, photo=photo,
                  checks=checks_of(photo), identity=binding.masked() if binding else None, link=link,
                  reasons=REASONS, titles=console.titles, error=error)


@staff()
async def decide(request: web.Request) -> web.StreamResponse:
    console, session = console_of(request), session_of(request)
    review = await _visible(request)
    form = await form_of(request)
    action = form.get("action")
    if action == "release":
        async with console.db.begin() as conn:
            await reviews.release(conn, review.id, reviewer=session.user)
        raise web.HTTPFound("/console/reviews")
    if action not in ("approve", "reject"):
        raise web.HTTPBadRequest(text="请选择“通过”或“不通过”。")
    async with console.db.read() as conn:
        photo = await photos.get(conn, review.photo_id) if review.photo_id else None
    try:
        d = decision(action == "approve", listed(form, "reason"), listed(form, "item"), str(form.get("other", "")),
                     str(form.get("note", "")), spec_items(photo))
        await console.desk.decide(review.id, session.user, d)
    except DecisionError as exc:
        return await _show(request, error=str(exc), status=400)
    except ReviewConflict:
        raise web.HTTPConflict(text="这条记录已经被处理，或正由其他老师审核。") from None
    if form.get("then") == "next":
        return await _take_next(request)
    raise web.HTTPFound("/console/reviews?done=1")


@staff()
async def photo(request: web.Request) -> web.StreamResponse:
    console = console_of(request)
    review = await _visible(request)
    kind = request.match_info["kind"]
    async with console.db.read() as conn:
        found = await photos.get(conn, review.photo_id) if review.photo_id else None
    digest = (found.original_sha256 if kind == "original" else found.fixed_sha256) if found else None
    if not digest or kind not in ("original", "fixed"):
        raise web.HTTPNotFound()
    try:
        data = console.files.get(digest)
    except (FileNotStored, ValueError):
        raise web.HTTPNotFound() from None
    ctype = next((t for magic, t in _IMAGE_TYPES if data.startswith(magic)), "application/octet-stream")
    return web.Response(body=data, content_type=ctype,
                        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})
