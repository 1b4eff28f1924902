"""Text, images and menu clicks: global commands, starting dialogs, and one dialog step.

Order of precedence for an input: an answer to a question we asked last time (resume? switch?),
then a global command (取消, 返回, 帮助, 菜单, 进度) or a start word / menu key, then the current
dialog's own input. Slow work runs in the prepare action before the step; writes run after it.
"""

from __future__ import annotations

from typing import Any

from bot.wechat.inbound import Inbound
from dialogs.actions import Call
from dialogs.engine import YES_WORDS, Input
from dialogs.session import Frame
from dialogs.spec import Intent, Say, say
from handlers.base import Context, Outcome

COMMANDS = {
    "取消": "cancel", "退出": "cancel", "返回": "back", "上一步": "back", "帮助": "help", "?": "help",
    "？": "help", "菜单": "menu", "进度": "status", "状态": "status", "查询进度": "status",
}
START_WORDS = {"实名认证": "bind", "实名": "bind", "绑定": "bind", "认证": "bind", "关联学校": "link_school"}
MENU_KEYS = {"BIND": "bind", "LINK_SCHOOL": "link_school", "STATUS": "status"}
CONTINUE_WORDS = frozenset({"1", "继续"})
RESTART_WORDS = frozenset({"2", "重新开始", "重来"})


def to_input(inbound: Inbound) -> Input:
    if inbound.kind == "image":
        return Input("image", media_id=inbound.media_id)
    if inbound.kind == "event":
        return Input("click", text=inbound.event_key)
    return Input("text", text=inbound.content.strip())


async def on_input(inbound: Inbound, ctx: Context) -> Outcome:
    inp = to_input(inbound)
    pending = ctx.session.flags.pop("pending", None)
    if pending is not None:
        answered = await _answer_pending(pending, inp, inbound.openid, ctx)
        if answered is not None:
            return answered
    command = _command(inp)
    if command:
        return await _command_outcome(command, inbound.openid, ctx)
    frame = ctx.session.top
    if frame is None or not ctx.services.engine.is_current(frame):
        ctx.session.stack.clear()
        return await _no_dialog(inp, inbound.openid, ctx)
    if ctx.services.engine.is_idle(frame, ctx.now):
        ctx.session.flags["pending"] = {"kind": "resume"}
        return Outcome([say("common/resume", title=_title(ctx, frame.dialog))])
    return await _step(frame, inp, inbound.openid, ctx)


def _command(inp: Input) -> str:
    if inp.kind == "click":
        target = MENU_KEYS.get(inp.text, "")
        return "status" if target == "status" else (f"start:{target}" if target else "")
    if inp.kind != "text":
        return ""
    if inp.text in START_WORDS:
        return f"start:{START_WORDS[inp.text]}"
    return COMMANDS.get(inp.text.lower(), "")


async def _command_outcome(command: str, openid: str, ctx: Context) -> Outcome:
    if command.startswith("start:"):
        return await _start(command[6:], openid, ctx)
    frame = ctx.session.top
    if command == "status":
        return Outcome([say("common/status", items=await ctx.services.actions.status(openid))])
    if command == "menu" or frame is None:
        return Outcome([say("common/help" if command in ("help", "menu") else "common/nothing_open")])
    if command == "cancel":
        return _cancel(frame, ctx)
    if command == "back":
        moved = ctx.services.engine.back(frame, ctx.now)
        return Outcome(([] if moved else [say("common/cannot_back")]) + [ctx.services.engine.prompt(frame)])
    return Outcome([say("common/help_in_dialog", title=_title(ctx, frame.dialog)), ctx.services.engine.prompt(frame)])


def _cancel(frame: Frame, ctx: Context) -> Outcome:
    if not ctx.services.engine.can_cancel(frame):
        return Outcome([say("common/cannot_cancel"), ctx.services.engine.prompt(frame)])
    ctx.session.stack.pop()
    replies: list[Intent] = [say("common/cancelled", title=_title(ctx, frame.dialog))]
    if ctx.session.top is not None:
        replies.append(ctx.services.engine.prompt(ctx.session.top))
    return Outcome(replies)


async def _start(name: str, openid: str, ctx: Context) -> Outcome:
    frame = ctx.session.top
    if frame is not None and frame.dialog == name:
        return Outcome([say("common/already_open", title=_title(ctx, name)), ctx.services.engine.prompt(frame)])
    if frame is not None:
        ctx.session.flags["pending"] = {"kind": "switch", "to": name}
        return Outcome([say("common/switch", current=_title(ctx, frame.dialog), target=_title(ctx, name))])
    return await _begin(name, openid, ctx)


async def _begin(name: str, openid: str, ctx: Context) -> Outcome:
    engine = ctx.services.engine
    spec = engine.specs[name]
    picked = await ctx.services.actions.start(spec.start, Call(openid, {}, {}, ctx.now)) if spec.start else None
    state, data = picked if picked else (spec.initial, {})
    frame = engine.new_frame(name, ctx.now, state, data)
    ctx.session.stack[:] = [frame]
    return Outcome([engine.prompt(frame)])


async def _answer_pending(pending: dict[str, Any], inp: Input, openid: str, ctx: Context) -> Outcome | None:
    frame = ctx.session.top
    word = inp.text.strip().lower() if inp.kind == "text" else ""
    if pending.get("kind") == "switch":
        if word in YES_WORDS:
            ctx.session.stack.clear()
            return await _begin(str(pending["to"]), openid, ctx)
        if frame is not None and word in {"否", "不", "不要", "2", "no", "n"}:
            return Outcome([say("common/carry_on"), ctx.services.engine.prompt(frame)])
        return None
    if pending.get("kind") == "resume" and frame is not None:
        if word in CONTINUE_WORDS:
            frame.updated_at = ctx.now
            return Outcome([ctx.services.engine.prompt(frame)])
        if word in RESTART_WORDS:
            ctx.session.stack.clear()
            return await _begin(frame.dialog, openid, ctx)
        ctx.session.flags["pending"] = pending
        return Outcome([say("common/resume", title=_title(ctx, frame.dialog))])
    return None


async def _no_dialog(inp: Input, openid: str, ctx: Context) -> Outcome:
    if inp.kind == "image":
        return Outcome([say("common/photo_without_dialog")])
    if inp.kind == "click":
        return Outcome([say("common/help")])
    items = await ctx.services.actions.status(openid)
    return Outcome([say("common/fallback", items=[i for i in items if not i.done][:1])])


async def _step(frame: Frame, inp: Input, openid: str, ctx: Context) -> Outcome:
    engine, actions = ctx.services.engine, ctx.services.actions
    decision = engine.interpret(frame, inp)
    if decision.hint:
        return Outcome(_with_retry(frame, ctx, [Say(decision.hint, {}), engine.prompt(frame)]))
    payload = dict(decision.payload)
    if decision.prepare:
        payload.update(await actions.prepare(decision.prepare, Call(openid, frame.data, payload, ctx.now)))
    result = engine.fire(frame, decision.trigger, payload, ctx.now)
    for effect in result.effects:
        await actions.apply(effect, Call(openid, frame.data, payload, ctx.now))
    if result.finished:
        ctx.session.stack.pop()
    return Outcome(result.replies)


def _with_retry(frame: Frame, ctx: Context, replies: list[Intent]) -> list[Intent]:
    tries = frame.retries.get(frame.state, 0) + 1
    frame.retries[frame.state] = tries
    spec = ctx.services.engine.specs[frame.dialog]
    if tries >= spec.state(frame.state).max_retries:
        replies.insert(1, say("common/too_many_tries"))
    return replies


def _title(ctx: Context, name: str) -> str:
    return str(ctx.services.engine.specs[name].title)
