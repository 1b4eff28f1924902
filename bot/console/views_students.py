"""Student lookup (by masked or full ID number, by name, by openid for admins) and one student's timeline.

Names and ID numbers are stored encrypted; a full ID number is found through its keyed hash, a name
through the masked column and then compared after decryption (only of the few rows whose mask
matches). Results and pages show masked values only; every lookup and view is audited.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.console.auth import Session
from bot.console.base import console_of, in_scope, record, render, session_of, staff
from bot.console.state import Console
from bot.privacy import mask_name
from storage.sql import audit, identity, links, lookup, notifications, procedures, reviews, students
from storage.sql.crypto import normalise_id_number
from storage.sql.lookup import Found

OPENID = re.compile(r"^[A-Za-z0-9_-]{6,64}$")
FULL_ID = re.compile(r"^[0-9]{17}[0-9Xx]$|^[0-9]{15}$")
MASKED = re.compile(r"^[0-9A-Za-z]{0,4}\**[0-9Xx]{4}$")
LIMIT = 50


async def _search(conn: AsyncConnection, console: Console, session: Session, q: str) -> list[Found]:
    if session.is_admin and OPENID.match(q) and q.startswith("o") and not FULL_ID.match(q):
        found = await lookup.by_openids(conn, [q])
    elif FULL_ID.match(normalise_id_number(q)):
        holder = await identity.find_openid(conn, console.codec.keyring, q)
        found = await lookup.by_openids(conn, [holder]) if holder else []
    elif MASKED.match(q):
        found = await lookup.by_masked_id(conn, q.split("*")[0] if "*" in q else "", q[-4:].upper())
    else:
        found = await _by_name(conn, console, q)
    return [f for f in found if in_scope(session, f.school_code)][:LIMIT]


async def _by_name(conn: AsyncConnection, console: Console, q: str) -> list[Found]:
    """Rows whose mask matches, then the exact name after decryption (of those few rows only)."""
    name = q.strip()
    if not name or len(name) > 40:
        return []
    hits = []
    for row in await lookup.by_name_mask(conn, mask_name(name)):
        clear = await identity.reveal(conn, console.codec.keyring, row.openid)
        if clear is not None and clear.name.strip() == name:
            hits.append(row)
    return hits


@staff()
async def search(request: web.Request) -> web.StreamResponse:
    console, session = console_of(request), session_of(request)
    q = request.query.get("q", "").strip()[:64]
    found: list[Found] = []
    if q:
        async with console.db.read() as conn:
            found = await _search(conn, console, session, q)
        await record(request, "console.lookup", kind=_kind(q), results=len(found))
    return render(request, "students.html.j2", q=q, found=found)


def _kind(q: str) -> str:
    """What was searched for, never the value itself (the audit must not hold a name or ID number)."""
    if FULL_ID.match(normalise_id_number(q)):
        return "id_number"
    if MASKED.match(q):
        return "masked_id"
    return "openid" if OPENID.match(q) and q.startswith("o") else "name"


@staff()
async def show(request: web.Request) -> web.StreamResponse:
    console, session = console_of(request), session_of(request)
    openid = request.match_info["openid"]
    if not OPENID.match(openid):
        raise web.HTTPNotFound()
    async with console.db.read() as conn:
        link = await links.get(conn, openid)
        student = await students.get(conn, openid)
        if student is None or not in_scope(session, link.school_code if link else None):
            raise web.HTTPNotFound()
        binding = await identity.get(conn, openid)
        context: dict[str, Any] = {"student": student, "link": link, "identity": binding.masked() if binding else None,
                   "progress": await procedures.for_student(conn, openid),
                   "reviews": await reviews.for_student(conn, openid),
                   "timeline": await _timeline(conn, openid)}
    await record(request, "console.student_view", openid=openid)
    return render(request, "student.html.j2", openid=openid, titles=console.titles, **context)


async def _timeline(conn: AsyncConnection, openid: str) -> list[dict[str, Any]]:
    """Everything that happened to the student, newest first: audit trail, messages, payments."""
    events: list[dict[str, Any]] = [
        {"at": e.at, "who": e.actor, "what": e.action, "details": e.details}
        for e in await audit.for_student(conn, openid, limit=200)]
    for n in await notifications.for_student(conn, openid):
        events.append({"at": n.sent_at or n.created_at, "who": "gradbot", "what": f"notify.{n.state}",
                       "details": {"template": n.template, "errcode": n.errcode, "delivery": n.delivery}})
    for o in await lookup.order_history(conn, openid):
        events.append({"at": o.paid_at or o.created_at, "who": "gradbot", "what": f"order.{o.state}",
                       "details": {"item": o.item, "amount_fen": o.amount_fen}})
    events.sort(key=lambda e: e["at"] or datetime.min, reverse=True)
    return events
