"""Actions of configured procedures: requirements, answers, the photo check, payment, review.

The step's own configuration (prompt, pattern, profile, fee item …) is looked up from the state the
dialog is in, so one set of actions serves every procedure file.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from bot.privacy import mask_openid
from bot.render import Renderer
from bot.services.actions import refused
from bot.services.identity.documents import CHINA_TZ
from bot.services.payments.fees import FeeTable, yuan
from bot.services.payments.links import LinkClaims, Sealer
from bot.services.photos import PhotoProfile, check_photo, render_reply
from bot.wechat import errors as wx
from bot.wechat.api import WeChatAPI
from dialogs.actions import Call, ProcedureStatus
from dialogs.engine import Effect
from dialogs.procedure import Procedure
from dialogs.spec import Say
from storage.files import FileStore
from storage.sql import audit, identity, links, orders, photos, procedures
from storage.sql.db import Database

log = logging.getLogger("bot.procedures")
FILE_LINK_TTL = 24 * 3600.0
Prepare = Callable[[Call], Awaitable[Mapping[str, Any]]]


@dataclass
class ProcedureActions:
    db: Database
    procedures: Mapping[str, Procedure]
    profiles: Mapping[str, PhotoProfile]
    files: FileStore
    wechat: WeChatAPI
    sealer: Sealer
    fees: FeeTable
    public_url: str
    renderer: Renderer
    clock: Callable[[], float] = time.time
    photo_executor: Any = None
    prepares: dict[str, Prepare] = field(init=False)

    def __post_init__(self) -> None:
        self.prepares = {
            "require_bind": self.require_bind, "require_link_school": self.require_link_school,
            "procedure_text": self.procedure_text, "procedure_choice": self.procedure_choice,
            "check_photo": self.check_photo, "pay_link": self.pay_link, "submit_review": self.submit_review,
        }
        self.effects: dict[str, Callable[[Effect, Call], Awaitable[None]]] = {
            "accept_photo": self.accept_photo, "lock_procedure": self.lock_procedure,
            "track_progress": self.track_progress,
        }
        self.starts = {"procedure_start": self.procedure_start}

    def _step(self, call: Call) -> Mapping[str, Any]:
        step = self.procedures[call.dialog].step_of_state(call.state)
        assert step is not None, (call.dialog, call.state)
        return step

    def _at(self, call: Call) -> datetime:
        return datetime.fromtimestamp(call.now or self.clock(), UTC)

    # --- start and requirements --------------------------------------------------------------

    async def procedure_start(self, call: Call) -> tuple[str, dict[str, Any]] | None:
        proc = self.procedures[call.dialog]
        today = datetime.fromtimestamp(call.now or self.clock(), CHINA_TZ).date()
        base = {"title": proc.title, "opens": _day(proc.opens), "closes": _day(proc.closes)}
        if (proc.opens and today < proc.opens) or (proc.closes and today > proc.closes):
            return "closed", base
        async with self.db.read() as conn:
            link = await links.get(conn, call.openid)
            saved = {p.name: p.state for p in await procedures.for_student(conn, call.openid)}
        if link is not None and not _eligible(proc, link):
            return "ineligible", {**base, "eligible": "、".join(v for vs in proc.eligible.values() for v in vs)}
        resume = saved.get(proc.name, "")
        if resume.endswith("__wait") or resume == "done":
            return (resume, base) if resume != "done" else ("done", base)
        return proc.steps[0]["id"], base

    async def require_bind(self, call: Call) -> Mapping[str, Any]:
        async with self.db.read() as conn:
            bound = await identity.get(conn, call.openid) is not None
        return {"ok": True} if bound else {"ok": False, "push": "bind"}

    async def require_link_school(self, call: Call) -> Mapping[str, Any]:
        async with self.db.read() as conn:
            link = await links.get(conn, call.openid)
        return {"ok": True} if link is not None else {"ok": False, "push": "link_school"}

    # --- answers --------------------------------------------------------------------------------

    async def procedure_text(self, call: Call) -> Mapping[str, Any]:
        step = self._step(call)
        value = str(call.payload.get("text", "")).strip()
        if step.get("upper"):
            value = value.upper().replace(" ", "")
        pattern = step.get("pattern")
        if not value or (pattern and not re.fullmatch(str(pattern), value)):
            return refused(Say("procedure/text_refused", {"error": step.get("error", "格式不对，请核对后重新发送。")}))
        return {"ok": True, "keep": {step["id"]: value}}

    async def procedure_choice(self, call: Call) -> Mapping[str, Any]:
        step = self._step(call)
        choice = str(call.payload.get("choice", ""))
        if choice in step.get("refuse", ()):
            return {"refused": True}
        return {"keep": {step["id"]: choice}}

    # --- the photo ---------------------------------------------------------------------------

    async def check_photo(self, call: Call) -> Mapping[str, Any]:
        step = self._step(call)
        profile = self.profiles[str(step.get("profile", "chsi"))]
        media_id = str(call.payload.get("media_id", ""))
        try:
            media = await self.wechat.get_media(media_id)
        except wx.InvalidMedia:
            return refused(Say("photo/media_expired", {}))
        except (wx.WeChatError, TimeoutError) as exc:
            log.warning("photo download failed for %s: %s", mask_openid(call.openid), exc)
            return refused(Say("photo/download_failed", {}))
        report = await check_photo(media.data, profile, fix=True, executor=self.photo_executor)
        text = render_reply(report, profile)
        fixed = report.fixed if report.fixed is not None and report.fixed.ok else None
        original = self.files.put(media.data)
        fixed_digest = self.files.put(fixed.data) if fixed else None
        async with self.db.begin() as conn:
            photo_id = await photos.add(
                conn, call.openid, procedure=call.dialog, original_sha256=original, fixed_sha256=fixed_digest,
                profile=profile.name, ok=report.ok, fixable=report.fixable, checks=report.to_json(),
                at=self._at(call))
        if report.ok:
            return {"ok": True, "photo_id": photo_id, "report": text}
        if fixed is None:
            return {"ok": False, "report": text}
        media_out = await self.wechat.upload_media("image", fixed.data, "photo.jpg", "image/jpeg")
        return {"ok": False, "photo_id": photo_id, "report": text, "fixed_media_id": media_out,
                "fixed_url": self.file_url(fixed_digest or "", call.now)}

    def file_url(self, digest: str, now: float) -> str:
        token = self.sealer.seal("file", {"d": digest}, (now or self.clock()) + FILE_LINK_TTL)
        return f"{self.public_url.rstrip('/')}/files/{token}"

    async def accept_photo(self, effect: Effect, call: Call) -> None:
        async with self.db.begin() as conn:
            await photos.set_status(conn, int(effect.args["photo_id"]), call.openid, "accepted")
            await audit.record(conn, actor=call.openid, action="photo.accept", openid=call.openid,
                               details={"photo_id": effect.args["photo_id"], "fixed": effect.args["fixed"]},
                               at=self._at(call))

    # --- payment and review ---------------------------------------------------------------------

    async def pay_link(self, call: Call) -> Mapping[str, Any]:
        step = self._step(call)
        proc = self.procedures[call.dialog]
        item = str(step["item"])
        if step.get("per_attempt") and call.data.get("rejections"):
            item = f"{item}_{int(call.data['rejections']) + 1}"
        async with self.db.read() as conn:
            order = await orders.latest(conn, call.openid, item)
        if order is not None and order.state == "paid":
            return {"paid": True}
        fee = self.fees.find(str(step.get("fee_procedure", proc.name)), str(step["item"]), proc.school)
        claims = LinkClaims(call.openid, fee.procedure, item, proc.school)
        url = f"{self.public_url.rstrip('/')}/pay/{self.sealer.link(claims, call.now or self.clock())}"
        return {"ok": True, "pay_url": url, "item": item, "amount_yuan": yuan(fee.amount_fen),
                "description": fee.description}

    async def submit_review(self, call: Call) -> Mapping[str, Any]:
        from storage.sql import reviews

        async with self.db.begin() as conn:
            accepted = await photos.latest_accepted(conn, call.openid, call.dialog)
            answers = [{"name": k, "value": v} for k, v in call.data.items() if isinstance(v, str | int)]
            review_id = await reviews.submit(conn, openid=call.openid, procedure=call.dialog,
                                             photo_id=accepted.id if accepted else None, documents=answers,
                                             at=self._at(call))
        reapply = self._step(call).get("reapply_limit", 99)
        return {"ok": True, "review_id": review_id, "reapply_limit": reapply}

    async def lock_procedure(self, effect: Effect, call: Call) -> None:
        async with self.db.begin() as conn:
            await audit.record(conn, actor=call.openid, action="procedure.lock", openid=call.openid,
                               details={"procedure": call.dialog}, at=self._at(call))

    async def track_progress(self, effect: Effect, call: Call) -> None:
        proc = self.procedures.get(call.dialog)
        if proc is None:
            return
        async with self.db.begin() as conn:
            await procedures.set_state(conn, call.openid, proc.name, call.state, at=self._at(call))

    async def status(self, openid: str) -> list[ProcedureStatus]:
        async with self.db.read() as conn:
            saved = {p.name: p.state for p in await procedures.for_student(conn, openid)}
        return [_status(proc, saved[name]) for name, proc in self.procedures.items() if name in saved]


def _day(value: date | None) -> str:
    return value.isoformat() if value else ""


def _eligible(proc: Procedure, link: links.SchoolLink) -> bool:
    facts = {"education_type": link.education_type, "level": link.level}
    return all(facts.get(key, "") in allowed for key, allowed in proc.eligible.items())


def _status(proc: Procedure, state: str) -> ProcedureStatus:
    done = state == "done"
    step = proc.step_of_state(state)
    label = str(step.get("status", step.get("type", ""))) if step else state
    return ProcedureStatus(proc.name, proc.title, done, "已完成" if done else f"进行到：{label}",
                           "" if done else f"回复「{proc.start_words[0] if proc.start_words else proc.title}」继续")
