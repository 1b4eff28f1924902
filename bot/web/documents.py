"""Procedure files on the web: ``GET /docs/{token}`` serves a generated PDF (or another stored
document) by a sealed, expiring link; ``GET/POST /upload/{token}`` is the small page where a student
uploads a file the chat cannot carry (WeChat users can send images to an official account, not
files). Tokens are sealed by ``services.sealer`` (encrypted: no openid readable in the URL).

An upload is stored, recorded as a document, and told to the student's dialog as the outside
event ``uploaded`` (through their turn, like a payment); the reply goes out as a customer-service
message. Every refusal is a page with the right status code, never a stack trace.
"""

from __future__ import annotations

import io
import json
import logging
import zipfile
from typing import Any

from aiohttp import BodyPartReader, web

from bot import keys
from bot.privacy import mask_openid
from bot.services.payments.links import TokenExpired, TokenInvalid
from bot.web.pay_templates import html_environment
from dialogs.procedure_types import size_label
from storage.sql import documents
from storage.sql.documents import NewDocument

log = logging.getLogger("bot.web.documents")
EXTENSIONS = {"ZIP": ".zip", "PDF": ".pdf"}
CONTENT_TYPES = {"ZIP": "application/zip", "PDF": "application/pdf"}
CHUNK = 64 * 1024


def _page(template: str, status: int = 200, **values: Any) -> web.Response:
    html = html_environment().get_template(f"upload/{template}.html.j2").render(**values)
    return web.Response(status=status, text=html, content_type="text/html",
                        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})


def _claims(request: web.Request, purpose: str) -> dict[str, Any] | web.Response:
    try:
        return request.app[keys.SERVICES].sealer.open(purpose, request.match_info["token"], request.app[keys.CLOCK]())
    except TokenExpired:
        return _page("result", 410, reason="expired")
    except TokenInvalid:
        return _page("result", 404, reason="invalid")


async def get_document(request: web.Request) -> web.StreamResponse:
    claims = _claims(request, "doc")
    if isinstance(claims, web.Response):
        return claims
    try:
        data = request.app[keys.SERVICES].files.get(str(claims["d"]))
    except (KeyError, ValueError):
        return _page("result", 404, reason="invalid")
    name = str(claims.get("n", "document.pdf")).replace('"', "")
    headers = {"Content-Disposition": f'inline; filename="{name}"', "Cache-Control": "private, no-store"}
    return web.Response(body=data, content_type=str(claims.get("t", "application/pdf")), headers=headers)


async def get_upload(request: web.Request) -> web.StreamResponse:
    claims = _claims(request, "upload")
    if isinstance(claims, web.Response):
        return claims
    formats = list(claims.get("f", ["ZIP"]))
    return _page("page", title=claims.get("t", ""), formats=formats, limit=size_label(int(claims.get("m", 1024))),
                 accept=",".join(EXTENSIONS.get(f, "") for f in formats))


async def post_upload(request: web.Request) -> web.StreamResponse:
    claims = _claims(request, "upload")
    if isinstance(claims, web.Response):
        return claims
    data = await _read_file(request, int(claims.get("m", 1024)) * 1024)
    if isinstance(data, web.Response):
        return data
    fmt = _format_of(data, list(claims.get("f", ["ZIP"])))
    if not fmt:
        return _page("result", 415, reason="wrong_type")
    doc_id = await _store(request, claims, data, fmt)
    await _tell_dialog(request, claims, doc_id)
    return _page("result", reason="uploaded")


async def _read_file(request: web.Request, limit: int) -> bytes | web.Response:
    """The ``file`` field, read in chunks so a huge body is refused without being held in memory."""
    try:
        reader = await request.multipart()
        part = await reader.next()
        while part is not None and not (isinstance(part, BodyPartReader) and part.name == "file"):
            part = await reader.next()
        if part is None:
            return _page("result", 400, reason="empty")
        buf = bytearray()
        while chunk := await part.read_chunk(CHUNK):
            buf += chunk
            if len(buf) > limit:
                return _page("result", 413, reason="too_large")
    except (ValueError, AssertionError, KeyError):  # not multipart, or a broken body
        return _page("result", 400, reason="empty")
    return bytes(buf) if buf else _page("result", 400, reason="empty")


def _format_of(data: bytes, formats: list[str]) -> str:
    if "ZIP" in formats and zipfile.is_zipfile(io.BytesIO(data)):
        return "ZIP"
    if "PDF" in formats and data.startswith(b"%PDF-"):
        return "PDF"
    return ""


async def _store(request: web.Request, claims: dict[str, Any], data: bytes, fmt: str) -> int:
    services = request.app[keys.SERVICES]
    digest = services.files.put(data)
    new = NewDocument(str(claims["p"]), str(claims["s"]), str(claims.get("t", "")), digest, CONTENT_TYPES[fmt],
                      len(data), "link")
    async with services.db.begin() as conn:
        return await documents.add(conn, str(claims["o"]), new)


async def _tell_dialog(request: web.Request, claims: dict[str, Any], doc_id: int) -> None:
    """Step the dialog waiting for this file; the student hears it by customer-service message."""
    openid = str(claims["o"])
    payload = json.dumps({"procedure": claims["p"], "state": claims["s"], "document_id": doc_id,
                          "title": claims.get("t", "")}, ensure_ascii=False)
    try:
        result = await request.app[keys.PIPELINE].external(openid, "uploaded", f"upload:{doc_id}", payload)
        if result.messages:
            await request.app[keys.JOBS].enqueue_cs(openid, result.messages, f"upload:{doc_id}")
    except Exception:  # the file is stored; the student can also say 「已上传」 in the chat
        log.exception("upload %d stored but not told to the dialog of %s", doc_id, mask_openid(openid))


def add_document_routes(app: web.Application) -> None:
    app.router.add_get("/docs/{token}", get_document)
    app.router.add_get("/upload/{token}", get_upload)
    app.router.add_post("/upload/{token}", post_upload)
