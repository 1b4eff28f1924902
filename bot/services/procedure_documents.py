"""Documents of a procedure: images sent in the chat (one per slot), files uploaded by a sealed link
(a zip of scans: WeChat users cannot send files to an official account), and the list a review item
carries so staff see what was sent.

Images are checked (decodable, within the item's size) and normalised (upright, in an accepted
format) off the event loop; the bytes go to the content-addressed file store, a row to ``documents``.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PIL import Image, ImageOps, UnidentifiedImageError

from bot.privacy import mask_openid
from bot.services.actions import refused
from bot.wechat import errors as wx
from dialogs.actions import Call
from dialogs.procedure import DocumentSlot, Procedure, document_slots
from dialogs.procedure_types import size_label
from dialogs.spec import Say
from storage.sql import documents
from storage.sql.documents import NewDocument

if TYPE_CHECKING:
    from bot.services.procedure_actions import ProcedureActions

log = logging.getLogger("bot.procedures")
UPLOAD_LINK_TTL = 24 * 3600.0
SKIP_WORDS = frozenset({"跳过", "没有", "无"})
KEEP_WORDS = frozenset({"沿用", "保留", "用上次的"})
MAX_PIXELS = 50_000_000
EXIF_ORIENTATION = 0x0112
CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "ZIP": "application/zip", "PDF": "application/pdf"}


@dataclass(frozen=True, slots=True)
class Normalised:
    data: bytes = b""
    content_type: str = ""
    problem: str = ""
    size: str = ""


class DocumentActions:
    def __init__(self, parent: ProcedureActions) -> None:
        self.p = parent
        self.prepares = {"document_text": self.document_text, "accept_document": self.accept_document,
                         "upload_link": self.upload_link}

    def slot(self, call: Call) -> DocumentSlot:
        step = self.p.step_of(call)
        return next(s for s in document_slots(step) if call.state in (s.state, s.entry))

    async def accept_document(self, call: Call) -> Mapping[str, Any]:
        slot = self.slot(call)
        try:
            media = await self.p.wechat.get_media(str(call.payload.get("media_id", "")))
        except wx.InvalidMedia:
            return refused(Say("photo/media_expired", {}))
        except (wx.WeChatError, TimeoutError) as exc:
            log.warning("document download failed for %s: %s", mask_openid(call.openid), exc)
            return _problem(slot, "download_failed")
        result = await asyncio.to_thread(normalise_image, media.data, slot.item)
        if result.problem:
            return _problem(slot, result.problem, result.size)
        kind = str(call.data.get(slot.kind_state, "")) if slot.kind_state else ""
        doc_id = await self.store(call, slot, result.data, result.content_type, "chat", kind)
        return {"ok": True, "keep": {slot.state: doc_id}, "received": kind or slot.title}

    async def store(self, call: Call, slot: DocumentSlot, data: bytes, content_type: str, source: str,
                    kind: str = "") -> int:
        digest = self.p.files.put(data)
        new = NewDocument(call.dialog, slot.state, slot.title, digest, content_type, len(data), source, kind or None)
        async with self.p.db.begin() as conn:
            return await documents.add(conn, call.openid, new, at=self.p.at(call))

    async def document_text(self, call: Call) -> Mapping[str, Any]:
        """Text in an upload slot: 「跳过」 an optional one, 「沿用」 the earlier file, or (for a link
        slot) "I uploaded it" checked against the store."""
        slot = self.slot(call)
        text = str(call.payload.get("text", "")).strip()
        if text in SKIP_WORDS:
            return {"ok": True, "keep": {slot.state: None}} if not slot.required else _problem(slot, "cannot_skip")
        if text in KEEP_WORDS:
            return {"ok": True} if call.data.get(slot.state) else _problem(slot, "no_previous")
        if slot.role == "link":
            async with self.p.db.read() as conn:
                doc = await documents.latest(conn, call.openid, call.dialog, slot.state)
            if doc is not None and doc.source == "link" and doc.id != call.data.get(slot.state):
                return {"ok": True, "keep": {slot.state: doc.id}, "received": slot.title}
            return _problem(slot, "not_uploaded")
        return _problem(slot, "expect_image")

    async def upload_link(self, call: Call) -> Mapping[str, Any]:
        slot = self.slot(call)
        claims = {"o": call.openid, "p": call.dialog, "s": slot.state, "t": slot.title,
                  "f": list(slot.item["formats"]), "m": int(slot.item["max_kb"])}
        token = self.p.sealer.seal("upload", claims, (call.now or self.p.clock()) + UPLOAD_LINK_TTL)
        return {"keep": {"upload_url": f"{self.p.public_url.rstrip('/')}/upload/{token}"}}


def _problem(slot: DocumentSlot, reason: str, size: str = "") -> dict[str, Any]:
    return refused(Say("procedure/document_problem", {
        "reason": reason, "title": slot.title, "required": slot.required, "size": size,
        "limit": size_label(int(slot.item["max_kb"]))}))


def normalise_image(data: bytes, item: Mapping[str, Any]) -> Normalised:
    """Decode, turn upright and re-encode when the format is not accepted; check the size limits."""
    if len(data) > 4 * int(item["max_kb"]) * 1024:  # refuse absurd sizes before decoding anything
        return Normalised(problem="too_large", size=size_label(len(data) // 1024))
    formats = list(item["formats"])
    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.width * im.height > MAX_PIXELS:
                return Normalised(problem="not_image")
            fmt, turned = str(im.format or ""), im.getexif().get(EXIF_ORIENTATION, 1) != 1
            if fmt in formats and not turned:
                im.load()  # a truncated or corrupt file fails here, not in the reviewer's browser
            else:
                fmt = "JPEG" if "JPEG" in formats else formats[0]
                data = _encode(ImageOps.exif_transpose(im), fmt)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return Normalised(problem="not_image")
    size = size_label(max(1, len(data) // 1024))
    if len(data) > int(item["max_kb"]) * 1024:
        return Normalised(problem="too_large", size=size)
    if len(data) < int(item.get("min_kb", 0)) * 1024:
        return Normalised(problem="too_small", size=size)
    return Normalised(data, CONTENT_TYPES[fmt])


def _encode(image: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    if fmt == "JPEG":
        image.convert("RGB").save(buf, "JPEG", quality=90)
    else:
        image.save(buf, fmt)
    return buf.getvalue()


async def review_documents(conn: Any, proc: Procedure, openid: str, data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The documents a review item lists: the current file of every filled slot (labels for staff)."""
    slots = [s for step in proc.steps_of("documents") for s in document_slots(step) if s.role != "kind"]
    ids = {int(data[s.state]): s for s in slots if isinstance(data.get(s.state), int)}
    found = await documents.many(conn, openid, list(ids))
    return [{"name": ids[d.id].title, "kind": "document", "document_id": d.id, "sha256": d.sha256,
             "content_type": d.content_type,
             "value": f"{d.kind or d.title}（{d.content_type}，{size_label(d.size_bytes // 1024 or 1)}）"}
            for d in found]
