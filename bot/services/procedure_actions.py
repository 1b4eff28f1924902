"""Actions of configured procedures: start and resume, requirements, conditions, answers, the photo
check, payment, review, and progress. Documents and PDFs have their own modules
(``procedure_documents``, ``procedure_pdf``) that share this object's services.

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

from sqlalchemy.ext.asyncio import AsyncConnection

from bot.privacy import mask_openid
from bot.render import Renderer
from bot.services.actions import refused
from bot.services.identity.documents import CHINA_TZ
from bot.services.payments.fees import FeeTable, yuan
from bot.services.payments.links import LinkClaims, Sealer
from bot.services.photos import PhotoProfile, check_photo, render_reply
from bot.services.procedure_check import procedure_problems
from bot.services.procedure_documents import DocumentActions, review_documents
from bot.services.procedure_pdf import PdfActions
from bot.services.procedure_resume import eligible, resume_state
from bot.services.procedure_window import open_dates
from bot.wechat import errors as wx
from bot.wechat.api import WeChatAPI
from dialogs.actions import Call, ProcedureStatus
from dialogs.engine import Effect
from dialogs.procedure import Procedure, ProcedureError, when_tests
from dialogs.spec import Say
from storage.files import FileStore
from storage.sql import audit, identity, links, orders, photos, procedures, reviews, schools
from storage.sql.db import Database

log = logging.getLogger("bot.procedures")
FILE_LINK_TTL = 24 * 3600.0
SKIP_WORDS = frozenset({"跳过", "没有", "无"})
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
        problems = [p for proc in self.procedures.values() for p in procedure_problems(proc, self.profiles,
                                                                                         self.fees)]
        if problems:  # start-up refuses a procedure that names a missing profile or fee
            raise ProcedureError("; ".join(problems))
        self.documents = DocumentActions(self)
        self.pdf = PdfActions(self)
        self.prepares = {
            "require_bind": self.require_bind, "require_link_school": self.require_link_school,
            "procedure_when": self.procedure_when, "procedure_text": self.procedure_text,
            "procedure_choice": self.procedure_choice, "procedure_credits": self.procedure_credits,
            "check_photo": self.check_photo, "pay_link": self.pay_link, "submit_review": self.submit_review,
            **self.documents.prepares, **self.pdf.prepares,
        }
        self.effects: dict[str, Callable[[Effect, Call], Awaitable[None]]] = {
            "accept_photo": self.accept_photo, "lock_procedure": self.lock_procedure,
            "track_progress": self.track_progress,
        }
        self.starts = {"procedure_start": self.procedure_start}

    def step_of(self, call: Call) -> Mapping[str, Any]:
        step = self.procedures[call.dialog].step_of_state(call.state)
        assert step is not None, (call.dialog, call.state)
        return step

    def at(self, call: Call) -> datetime:
        return datetime.fromtimestamp(call.now or self.clock(), UTC)

    def today(self, call: Call) -> date:
        return datetime.fromtimestamp(call.now or self.clock(), CHINA_TZ).date()

    async def window_open(self, proc: Procedure, call: Call) -> bool:
        """Today is inside the student's window: the console's dates if staff set them, else the file's."""
        async with self.db.read() as conn:
            dates = await open_dates(conn, proc, await links.get(conn, call.openid))
        return dates.contains(self.today(call))

    # --- start and requirements --------------------------------------------------------------

    async def procedure_start(self, call: Call) -> tuple[str, dict[str, Any]] | None:
        """Resume work already under way (even outside the window); otherwise check window and school."""
        proc = self.procedures[call.dialog]
        async with self.db.read() as conn:
            link = await links.get(conn, call.openid)
            saved = await procedures.get(conn, call.openid, proc.name)
            allowed = "" if link is None or eligible(proc, link) else await self.eligible_text(conn, proc)
            dates = await open_dates(conn, proc, link)
        base = {"title": proc.title, **dates.data()}  # the texts show the dates in force
        data = {**(saved.answers if saved else {}), **base}
        resumed = resume_state(proc, saved.state, data) if saved else None
        if resumed:
            return resumed, data
        if not dates.contains(self.today(call)):
            return "closed", base
        if allowed:
            return "ineligible", {**base, "eligible": allowed}
        return proc.entry(proc.steps[0]["id"]), data

    async def eligible_text(self, conn: Any, proc: Procedure) -> str:
        school = await schools.get(conn, proc.school) if proc.school != "*" else None
        parts = [school.name if school else ""] + ["、".join(v) for v in proc.eligible.values()]
        return " ".join(p for p in parts if p)

    async def require_bind(self, call: Call) -> Mapping[str, Any]:
        async with self.db.read() as conn:
            bound = await identity.get(conn, call.openid) is not None
        return {"ok": True} if bound else {"ok": False, "push": "bind"}

    async def require_link_school(self, call: Call) -> Mapping[str, Any]:
        proc = self.procedures[call.dialog]
        async with self.db.read() as conn:
            link = await links.get(conn, call.openid)
            if link is not None and not eligible(proc, link):
                return {"not_eligible": True, "keep": {"eligible": await self.eligible_text(conn, proc)}}
        return {"ok": True} if link is not None else {"ok": False, "push": "link_school"}

    async def procedure_when(self, call: Call) -> Mapping[str, Any]:
        """A step's ``when``: every test holds on the answers so far (or the student's school link)."""
        step = self.step_of(call)
        facts: dict[str, Any] = dict(call.data)
        if any(str(t["field"]).startswith("link.") for t in when_tests(step)):
            async with self.db.read() as conn:
                link = await links.get(conn, call.openid)
            facts.update({f"link.{k}": v for k, v in _link_facts(link).items()})
        return {"ok": all(_holds(t, facts) for t in when_tests(step)), "step": step["id"]}

    # --- answers --------------------------------------------------------------------------------

    async def procedure_text(self, call: Call) -> Mapping[str, Any]:
        step = self.step_of(call)
        value = str(call.payload.get("text", "")).strip()
        if step.get("optional") and value in SKIP_WORDS:
            return {"ok": True, "keep": {step["id"]: ""}}
        if step.get("upper"):
            value = value.upper().replace(" ", "")
        pattern = step.get("pattern")
        if not value or (pattern and not re.fullmatch(str(pattern), value)):
            return refused(Say("procedure/text_refused", {"error": step.get("error", "格式不对，请核对后重新发送。")}))
        return {"ok": True, "keep": {step["id"]: value}}

    async def procedure_choice(self, call: Call) -> Mapping[str, Any]:
        step = self.step_of(call)
        choice = str(call.payload.get("choice", ""))
        if call.state == step["id"] and choice in step.get("refuse", ()):
            return {"refused": True}
        return {"keep": {call.state: choice}}

    async def procedure_credits(self, call: Call) -> Mapping[str, Any]:
        step = self.step_of(call)
        courses = list(step["courses"])
        picked = [int(n) for n in re.findall(r"\d+", str(call.payload.get("text", "")))]
        if not picked or any(not 1 <= n <= len(courses) for n in picked):
            return refused(Say("procedure/credits_bad", {"count": len(courses)}))
        chosen = [courses[n - 1] for n in dict.fromkeys(picked)]
        total = sum(int(c["credits"]) for c in chosen)
        if total < int(step["min_total"]):
            return refused(Say("procedure/credits_short", {"total": total, "minimum": int(step["min_total"])}))
        return {"ok": True, "keep": {step["id"]: [str(c["name"]) for c in chosen], f"{step['id']}__total": total}}

    # --- the photo ---------------------------------------------------------------------------

    async def check_photo(self, call: Call) -> Mapping[str, Any]:
        step = self.step_of(call)
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
                at=self.at(call))
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
                               at=self.at(call))

    # --- payment and review ---------------------------------------------------------------------

    async def pay_link(self, call: Call) -> Mapping[str, Any]:
        """A pay link; none when this item (this attempt of it) is paid already: no double payment."""
        step = self.step_of(call)
        proc = self.procedures[call.dialog]
        item = str(step["item"])
        if step.get("per_attempt") and call.data.get("rejections"):
            item = f"{item}_{int(call.data['rejections']) + 1}"
        fee = self.fees.find(str(step.get("fee_procedure", proc.name)), str(step["item"]), proc.school)
        async with self.db.read() as conn:
            order = await orders.latest(conn, call.openid, item)
        if order is not None and order.state == "paid":
            return {"paid": True, "description": fee.description}
        claims = LinkClaims(call.openid, fee.procedure, item, proc.school)
        url = f"{self.public_url.rstrip('/')}/pay/{self.sealer.link(claims, call.now or self.clock())}"
        return {"ok": True, "pay_url": url, "item": item, "amount_yuan": yuan(fee.amount_fen),
                "description": fee.description}

    async def submit_review(self, call: Call) -> Mapping[str, Any]:
        """A review item with the student's answers (by the procedure's steps, labelled) and files:
        never the dialog's bookkeeping (title, window, signed links, ids)."""
        proc = self.procedures[call.dialog]
        answers = proc.review_answers(call.data)
        async with self.db.begin() as conn:
            accepted = await photos.latest_accepted(conn, call.openid, call.dialog)
            files = await review_documents(conn, proc, call.openid, call.data)
            review_id = await reviews.submit(conn, openid=call.openid, procedure=call.dialog,
                                             photo_id=accepted.id if accepted else None,
                                             documents=answers + files, at=self.at(call))
            earlier = [r for r in await reviews.for_student(conn, call.openid)
                       if r.procedure == call.dialog and r.state == "rejected"]
        limit = int(self.step_of(call).get("reapply_limit", 99))
        rejections = max(len(earlier), int(call.data.get("rejections", 0)))  # SQL outlives the session
        return {"ok": True, "review_id": review_id, "reapply_limit": limit,
                "keep": {"rejections": rejections, "reapply_limit": limit}}

    async def lock_procedure(self, effect: Effect, call: Call) -> None:
        async with self.db.begin() as conn:
            await audit.record(conn, actor=call.openid, action="procedure.lock", openid=call.openid,
                               details={"procedure": call.dialog}, at=self.at(call))

    async def track_progress(self, effect: Effect, call: Call) -> None:
        proc = self.procedures.get(call.dialog)
        if proc is None:
            return
        async with self.db.begin() as conn:
            await procedures.set_state(conn, call.openid, proc.name, call.state, at=self.at(call),
                                       answers=proc.answers(call.data))

    async def status(self, openid: str) -> list[ProcedureStatus]:
        async with self.db.read() as conn:
            return await self.status_in(conn, openid)

    async def status_in(self, conn: AsyncConnection, openid: str) -> list[ProcedureStatus]:
        """Status lines inside the caller's read (CompositeActions.status shares one for every part)."""
        saved = {p.name: p.state for p in await procedures.for_student(conn, openid)}
        return [_status(proc, saved[name]) for name, proc in self.procedures.items() if name in saved]


def _link_facts(link: links.SchoolLink | None) -> dict[str, Any]:
    if link is None:
        return {}
    return {"education_type": link.education_type, "level": link.level, "school_code": link.school_code or "",
            "school_name": link.school_name, "cohort": link.cohort}


def _holds(test: Mapping[str, Any], facts: Mapping[str, Any]) -> bool:
    value = facts.get(str(test["field"]))
    if "equals" in test:
        return bool(value == test["equals"])
    if "not_equals" in test:
        return bool(value != test["not_equals"])
    if "in" in test:
        return value in test["in"]
    return value not in test["not_in"]


def _status(proc: Procedure, state: str) -> ProcedureStatus:
    done = state == "done"
    step = proc.step_of_state(state)
    label = str(step.get("status", step.get("type", ""))) if step else state
    return ProcedureStatus(proc.name, proc.title, done, "已完成" if done else f"进行到：{label}",
                           "" if done else f"回复「{proc.start_words[0] if proc.start_words else proc.title}」继续")
