"""A reviewer's decision, end to end: record it, tell the dialog, push the template message.

Order matters. In one transaction: the decision (compare-and-set, audited) and the notification
row, and the send job is queued *before* that transaction commits (the job waits for the row), so
no crash can leave a committed decision without a queued message. After the commit the student's
dialog hears ``review_approved`` / ``review_rejected`` once per review (``Pipeline.external`` keyed by
``review:<id>``); its replies go out as customer-service messages only when configured and the
student wrote within 48 hours. The template message always goes, with ``client_msg_id=rv<id>``.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from redis.exceptions import RedisError

from bot.config import Settings
from bot.pipeline import FollowUps, Pipeline
from bot.privacy import mask_openid
from bot.services.notify.catalog import ProcedureInfo
from bot.services.notify.limiter import CHINA
from bot.services.notify.templates import TemplateConfig, TemplateSpec
from dialogs.session import SessionRecord
from storage.base import SessionStore, StoreUnavailable
from storage.sql import notifications, reviews, schools
from storage.sql.db import Database
from storage.sql.notifications import Notification
from storage.sql.reviews import Review

log = logging.getLogger("bot.notify")

REASONS = {"photo_quality": "照片质量不符合要求", "identity_failed": "身份核验失败", "incomplete": "材料不全",
           "other": "其他"}
CS_WINDOW_S = 48 * 3600
NOTE_LIMIT = 200


class DecisionError(ValueError):
    """A decision the form cannot make (no reason given, unknown reason …); shown to the reviewer."""


@dataclass(frozen=True, slots=True)
class Decision:
    approve: bool
    reasons: tuple[dict[str, Any], ...] = ()
    note: str = ""

    def texts(self) -> list[str]:
        return [str(r["text"]) for r in self.reasons]


def decision(approve: bool, codes: Sequence[str] = (), items: Sequence[str] = (), other: str = "",
             note: str = "", known_items: Mapping[str, str] | None = None) -> Decision:
    """Validate a reviewer's form: a rejection names at least one reason; photo quality may list the
    failing spec items (ids of the photo's checks, shown by their message)."""
    note = note.strip()[:NOTE_LIMIT]
    if approve:
        return Decision(True, (), note)
    unknown = [c for c in codes if c not in REASONS]
    if unknown or not codes:
        raise DecisionError("请至少选择一个不通过的原因")
    entries = [_reason(code, items, other, known_items or {}) for code in dict.fromkeys(codes)]
    return Decision(False, tuple(entries), note)


def _reason(code: str, items: Sequence[str], other: str, known: Mapping[str, str]) -> dict[str, Any]:
    if code == "other":
        if not other.strip():
            raise DecisionError("选择“其他”时请写明原因")
        return {"code": code, "text": f"其他：{other.strip()[:NOTE_LIMIT]}"}
    if code == "photo_quality":
        chosen = [i for i in dict.fromkeys(items) if i in known]
        labels = "、".join(known[i] for i in chosen)
        return {"code": code, "text": REASONS[code] + (f"：{labels}" if labels else ""), "items": chosen}
    return {"code": code, "text": REASONS[code]}


def next_step(d: Decision, info: ProcedureInfo | None) -> str:
    if d.approve:
        return "无需操作，请留意后续通知"
    step = "请重新上传照片" if any(r["code"] == "photo_quality" for r in d.reasons) else "请按原因修改后重新提交"
    fee = info.reverify_fee_yuan if info else ""
    return step + (f"，重新核验费{fee}元" if fee else "")


def review_values(review: Review, d: Decision, info: ProcedureInfo | None, school_name: str, notice_url: str,
                  at: datetime) -> dict[str, str]:
    return {
        "procedure_title": info.title if info else review.procedure,
        "result": "通过" if d.approve else "未通过",
        "reasons": "；".join(d.texts()) if d.reasons else "符合要求",
        "next_step": next_step(d, info),
        "decided_at": at.astimezone(CHINA).strftime("%Y-%m-%d %H:%M"),
        "school_name": school_name,
        "notice_url": notice_url,
    }


@dataclass(frozen=True, slots=True)
class Decided:
    review: Review
    notification: Notification
    cs_queued: bool


@dataclass
class ReviewDesk:
    settings: Settings
    db: Database
    templates: TemplateConfig
    catalog: Mapping[str, ProcedureInfo]
    pipeline: Pipeline
    store: SessionStore
    jobs: FollowUps | None
    kick: Callable[[str], Awaitable[None]]  # queue the send job for a client_msg_id
    clock: Callable[[], float] = time.time

    def template(self) -> TemplateSpec:
        found = self.templates.for_use("review")
        if not found:
            raise DecisionError("没有配置审核结果的模板消息（notify templates: use = \"review\"）")
        return found[0]

    async def decide(self, review_id: int, reviewer: str, d: Decision) -> Decided:
        spec = self.template()
        at = datetime.fromtimestamp(self.clock(), UTC)
        async with self.db.begin() as conn:
            review = await reviews.decide(conn, review_id, reviewer=reviewer, approve=d.approve,
                                          reasons=d.reasons, note=d.note, at=at)
            school = await schools.get(conn, review.school_code) if review.school_code else None
            token = secrets.token_hex(16)
            info = self.catalog.get(review.procedure)
            values = review_values(review, d, info, school.name if school else "",
                                   f"{self.settings.public_url.rstrip('/')}/notice/{token}", at)
            data, url = spec.render(values)
            notice = await notifications.create(conn, openid=review.openid, kind="review_result",
                                                ref=f"review:{review.id}", template=spec.name,
                                                template_id=spec.template_id, data=data, url=url, token=token,
                                                client_msg_id=f"rv{review.id}", at=at)
            await self.kick(notice.client_msg_id)
        cs = await self._tell_dialog(review, d, info)
        return Decided(review, notice, cs)

    async def _tell_dialog(self, review: Review, d: Decision, info: ProcedureInfo | None) -> bool:
        recent = await self._wrote_recently(review.openid)
        payload = {"review_id": review.id, "procedure": review.procedure, "reasons": d.texts(), "note": d.note,
                   "procedure_title": info.title if info else review.procedure,
                   "fee_yuan": info.reverify_fee_yuan if info and not d.approve else ""}
        trigger = "review_approved" if d.approve else "review_rejected"
        result = await self.pipeline.external(review.openid, trigger, key=f"review:{review.id}",
                                              data=json.dumps(payload, ensure_ascii=False))
        if not (self.settings.notify_use_cs and recent and self.jobs is not None and result.messages):
            return False
        try:
            return bool(await self.jobs.enqueue_cs(review.openid, result.messages, f"review:{review.id}"))
        except (RedisError, OSError):  # the template message still goes; the CS copy is a courtesy
            log.exception("customer-service copy of review %d for %s not queued", review.id,
                          mask_openid(review.openid))
            return False

    async def _wrote_recently(self, openid: str) -> bool:
        """Within the 48-hour service window, judged by the session's last turn (WeChat has the last
        word: an expired window answers 45015 and only the CS copy is lost)."""
        try:
            record = SessionRecord.loads(await self.store.peek(openid))
        except StoreUnavailable:
            return False
        return record.last_seen > 0 and self.clock() - record.last_seen < CS_WINDOW_S
