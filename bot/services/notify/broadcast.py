"""Composing broadcasts (deadline reminders): audience, exact count, preview, and automatic reminders.

Everything a message says is fixed when the broadcast is created: the admin's variables plus the
procedure title, the window's closing date and the school name are stored with it, so the preview is
exactly what is sent. The audience is re-evaluated when sending starts, so a student who finished in
the meantime is not reminded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from bot.services.notify.limiter import CHINA
from bot.services.notify.templates import TemplateConfig, TemplateSpec
from storage.sql import audit, broadcasts, schools, stages, windows
from storage.sql.broadcasts import Broadcast
from storage.sql.stages import Audience

MAX_RATE = 5000
REMIND_AT = time(9, 0)  # automatic reminders go out at 09:00 China time
STAGE_TITLES = {
    "all": "全部学生", "not_started": "尚未开始办理", "not_bound": "未实名认证", "not_linked": "未关联学校",
    "photo_not_passed": "照片未通过检查", "not_paid": "未缴费", "not_submitted": "未提交审核",
    "pending_review": "等待审核", "rejected": "审核未通过且未重新提交", "approved": "审核已通过",
    "not_finished": "尚未办完（未通过审核）",
}


class BroadcastError(ValueError):
    """A broadcast that cannot be created; the message is shown to the admin as is (Chinese)."""


def client_msg_id(broadcast_id: int, openid: str) -> str:
    """Stable per (broadcast, student): a re-send after a crash is deduplicated by WeChat."""
    return f"bc{broadcast_id}-{hashlib.sha256(openid.encode()).hexdigest()[:16]}"


@dataclass(frozen=True, slots=True)
class Draft:
    title: str
    template: str
    audience: Audience
    variables: Mapping[str, str] = field(default_factory=dict)
    send_at: datetime | None = None  # None: now
    rate: int = 20


@dataclass(frozen=True, slots=True)
class Preview:
    count: int
    spec: TemplateSpec
    values: dict[str, str]
    fields: list[tuple[str, str, str]]  # (field, type, value as sent)
    url: str | None


def check_draft(draft: Draft, config: TemplateConfig) -> TemplateSpec:
    spec = config.templates.get(draft.template)
    if spec is None or spec.use != "broadcast":
        raise BroadcastError(f"没有名为 {draft.template} 的提醒模板")
    missing = [v for v in spec.admin_variables() if not str(draft.variables.get(v, "")).strip()]
    if missing:
        raise BroadcastError(f"请填写：{'、'.join(missing)}")
    if not 1 <= draft.rate <= MAX_RATE:
        raise BroadcastError(f"发送速率应在 1 到 {MAX_RATE} 条/秒之间")
    if not draft.title.strip():
        raise BroadcastError("请填写提醒的名称")
    return spec


async def resolve_values(conn: AsyncConnection, draft: Draft, titles: Mapping[str, str]) -> dict[str, str]:
    """The admin's variables plus what gradbot knows: procedure title, closing date, school name."""
    audience = draft.audience
    values = {k: str(v) for k, v in draft.variables.items()}
    if audience.procedure:
        values["procedure_title"] = titles.get(audience.procedure, audience.procedure)
        window = await windows.for_student(conn, audience.procedure, audience.school, audience.cohort)
        if window is not None:
            values["closes"] = window.closes.isoformat()
    if audience.school:
        school = await schools.get(conn, audience.school)
        values["school_name"] = school.name if school else audience.school
    for key in ("procedure_title", "closes", "school_name"):
        values.setdefault(key, "")
    return values


async def preview(conn: AsyncConnection, draft: Draft, config: TemplateConfig, titles: Mapping[str, str]) -> Preview:
    spec = check_draft(draft, config)
    values = await resolve_values(conn, draft, titles)
    data, url = spec.render(values)
    fields = [(f.name, f.type, data[f.name]) for f in spec.fields]
    return Preview(await stages.count(conn, draft.audience), spec, values, fields, url)


async def create(conn: AsyncConnection, draft: Draft, config: TemplateConfig, titles: Mapping[str, str], *,
                 actor: str, now: datetime, **extra: Any) -> Broadcast:
    check_draft(draft, config)
    values = await resolve_values(conn, draft, titles)
    send_at = draft.send_at or now
    return await broadcasts.create(conn, title=draft.title.strip(), template=draft.template, variables=values,
                                   audience=draft.audience.to_dict(), send_at=send_at, rate=draft.rate,
                                   created_by=actor, at=now, **extra)


def reminder_time(closes: date, days_before: int) -> datetime:
    return datetime.combine(closes - timedelta(days=days_before), REMIND_AT, tzinfo=CHINA)


async def sync_reminders(conn: AsyncConnection, window_id: int, config: TemplateConfig, titles: Mapping[str, str],
                         *, actor: str, now: datetime, rate: int) -> list[int]:
    """Make the window's automatic reminders match its settings; returns broadcasts to (re)start senders for."""
    window = await windows.get(conn, window_id)
    if window is None:
        return []
    wanted = {d: reminder_time(window.closes, d) for d in window.remind_days}
    touched: list[int] = []
    for existing in await broadcasts.for_window(conn, window_id):
        when = wanted.pop(existing.days_before or 0, None)
        if when is None or when <= now or not window.remind_template:
            await broadcasts.set_state(conn, existing.id, "cancelled", expected=("scheduled",), reason="window changed")
            continue
        if existing.state == "cancelled":  # a reminder day switched off and on again
            await broadcasts.set_state(conn, existing.id, "scheduled", expected=("cancelled",))
        draft = _reminder_draft(window, existing.days_before or 0, when, rate, titles)
        values = await resolve_values(conn, draft, titles)
        if await broadcasts.reschedule(conn, existing.id, when, template=draft.template, variables=values,
                                       audience=draft.audience.to_dict(), title=draft.title):
            touched.append(existing.id)
    if not window.remind_template:
        return touched
    for days, when in wanted.items():
        if when > now:
            created = await create(conn, _reminder_draft(window, days, when, rate, titles), config, titles,
                                   actor=actor, now=now, window_id=window.id, days_before=days)
            touched.append(created.id)
    return touched


def _reminder_draft(window: windows.Window, days: int, when: datetime, rate: int,
                    titles: Mapping[str, str]) -> Draft:
    audience = Audience(school=None if window.school_code == windows.ANY_SCHOOL else window.school_code,
                        cohort=window.cohort or None, procedure=window.procedure, stage="not_finished")
    title = f"自动提醒：{titles.get(window.procedure, window.procedure)} 截止前 {days} 天"
    message = f"距截止还有{days}天，请尽快办理" if days else "今天截止，请尽快办理"
    return Draft(title, window.remind_template or "", audience, {"message": message}, when, rate)


# What an admin may do to a broadcast, and from which states.
CONTROLS = {"cancel": ("cancelled", ("scheduled", "sending", "paused")),
            "pause": ("paused", ("scheduled", "sending")), "resume": ("sending", ("paused",))}


async def control(conn: AsyncConnection, broadcast_id: int, action: str, *, actor: str, now: datetime) -> str | None:
    """Pause, resume or cancel (audited); the new state, or None when the current state does not allow it.
    A resumed broadcast whose time has not come goes back to ``scheduled``; the caller starts senders."""
    state, expected = CONTROLS[action]
    found = await broadcasts.get(conn, broadcast_id)
    if found is None:
        return None
    if action == "resume" and found.send_at > now:
        state = "scheduled"
    if not await broadcasts.set_state(conn, broadcast_id, state, expected=expected,
                                      reason="manual" if action == "pause" else None):
        return None
    await audit.record(conn, actor=actor, action=f"broadcast.{action}", openid=None, at=now,
                       details={"broadcast_id": broadcast_id})
    return state
