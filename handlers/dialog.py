"""Text, images and menu clicks: global commands, starting dialogs, and dialog steps.

Order of precedence for an input: an answer to a question we asked last time (resume? switch?),
then a global command (取消, 返回, 帮助, 菜单, 进度) or a start word / menu key, then the current
dialog's own input. Slow work runs in the prepare action before a step; writes run after it.
Procedures nest the binding and school dialogs: a requirement pushes the child dialog, and when
the child finishes the parent carries on by itself (its *auto* states need no input).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from bot.wechat.inbound import Inbound
from dialogs.actions import Call, ProcedureStatus
from dialogs.engine import YES_WORDS, Effect, Input, StepResult
from dialogs.session import Frame
from dialogs.spec import Intent, Say, say
from handlers.base import Context, Outcome

COMMANDS = {
    "取消": "cancel", "退出": "cancel", "返回": "back", "上一步": "back", "帮助": "help", "?": "help",
    "？": "help", "菜单": "menu", "进度": "status", "状态": "status", "查询进度": "status",
}
STATUS_KEYS = frozenset({"STATUS"})
CONTINUE_WORDS = frozenset({"1", "继续"})
RESTART_WORDS = frozenset({"2", "重新开始", "重来"})
MAX_AUTO_STEPS = 12  # auto states chained in one turn; a definition that loops is a bug, not a hang
# The facts behind the status lines (binding, verification, school link, procedure progress) change
# in the student's own turn: by an effect, or by an outside event (payment, review, web upload) that
# runs inside it. Both drop the copy kept in the session record (erasure removes the record). The age
# cap bounds the damage should a writer outside the turn ever appear. A lookup was 2-4 ms CPU in SQL.
STATUS_KEPT = 600.0


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
    command = _command(inp, ctx)
    if command:
        return await _command_outcome(command, inbound.openid, ctx)
    frame = ctx.session.top
    if frame is None or not ctx.services.engine.is_current(frame):
        ctx.session.stack.clear()
        return await _no_dialog(inp, inbound.openid, ctx)
    if ctx.services.engine.is_idle(frame, ctx.now):
        ctx.session.flags["pending"] = {"kind": "resume"}
        return Outcome([say("common/resume", title=_title(ctx, _root(ctx).dialog))])
    replies = await _step(frame, inp, inbound.openid, ctx)
    return Outcome(replies + await _run_auto(inbound.openid, ctx))


def _command(inp: Input, ctx: Context) -> str:
    specs = ctx.services.engine.specs.values()
    if inp.kind == "click":
        if inp.text in STATUS_KEYS:
            return "status"
        return next((f"start:{s.name}" for s in specs if inp.text in s.menu_keys), "")
    if inp.kind != "text":
        return ""
    started = next((f"start:{s.name}" for s in specs if inp.text in s.start_words), "")
    return started or COMMANDS.get(inp.text.lower(), "")


async def _command_outcome(command: str, openid: str, ctx: Context) -> Outcome:
    if command.startswith("start:"):
        return await _start(command[6:], openid, ctx)
    frame = ctx.session.top
    if command == "status":
        return Outcome([say("common/status", items=await _status(openid, ctx))])
    if command == "menu" or frame is None:
        return Outcome([say("common/help" if command in ("help", "menu") else "common/nothing_open")])
    engine = ctx.services.engine
    if command == "cancel":
        return _cancel(ctx)
    if command == "back":
        moved = engine.back(frame, ctx.now)
        return Outcome(([] if moved else [say("common/cannot_back")]) + [engine.prompt(frame)])
    return Outcome([say("common/help_in_dialog", title=_title(ctx, _root(ctx).dialog)), engine.prompt(frame)])


def forget_status(ctx: Context) -> None:
    """The facts may change in this turn: the next status reads them again."""
    ctx.session.flags.pop("status", None)


async def _status(openid: str, ctx: Context) -> list[ProcedureStatus]:
    kept = ctx.session.flags.get("status")
    if isinstance(kept, dict) and 0 <= ctx.now - float(kept.get("at", -1e18)) < STATUS_KEPT:
        return [ProcedureStatus(**line) for line in kept["lines"]]
    lines: list[ProcedureStatus] = await ctx.services.actions.status(openid)
    ctx.session.flags["status"] = {"at": ctx.now, "lines": [asdict(line) for line in lines]}
    return lines


def _cancel(ctx: Context) -> Outcome:
    engine = ctx.services.engine
    if any(not engine.can_cancel(f) for f in ctx.session.stack):
        return Outcome([say("common/cannot_cancel"), engine.prompt(ctx.session.stack[-1])])
    title = _title(ctx, _root(ctx).dialog)
    ctx.session.stack.clear()  # a nested dialog is part of its procedure: both end together
    return Outcome([say("common/cancelled", title=title)])


async def _start(name: str, openid: str, ctx: Context) -> Outcome:
    root = ctx.session.stack[0] if ctx.session.stack else None
    if root is not None and name in {f.dialog for f in ctx.session.stack}:
        frame = ctx.session.stack[-1]
        return Outcome([say("common/already_open", title=_title(ctx, name)), ctx.services.engine.prompt(frame)])
    if root is not None:
        ctx.session.flags["pending"] = {"kind": "switch", "to": name}
        return Outcome([say("common/switch", current=_title(ctx, root.dialog), target=_title(ctx, name))])
    return Outcome(await _begin(name, openid, ctx) + await _run_auto(openid, ctx))


async def _begin(name: str, openid: str, ctx: Context, nested: bool = False) -> list[Intent]:
    """Open dialog ``name`` on top of the stack and return what it says first."""
    engine = ctx.services.engine
    spec = engine.specs[name]
    call = Call(openid, {}, {}, ctx.now, dialog=name)
    picked = await ctx.services.actions.start(spec.start, call) if spec.start else None
    state, data = picked if picked else (spec.initial, {})
    if nested:
        data = {**data, "nested": True}
    frame = engine.new_frame(name, ctx.now, state, data)
    if spec.state(state).final:
        return [engine.prompt(frame)]  # closed, not eligible: said, and nothing stays open
    ctx.session.stack.append(frame)
    return [] if engine.is_auto(frame) else [engine.prompt(frame)]


async def _answer_pending(pending: dict[str, Any], inp: Input, openid: str, ctx: Context) -> Outcome | None:
    word = inp.text.strip().lower() if inp.kind == "text" else ""
    if pending.get("kind") == "switch":
        if word in YES_WORDS:
            ctx.session.stack.clear()
            return Outcome(await _begin(str(pending["to"]), openid, ctx) + await _run_auto(openid, ctx))
        if ctx.session.top is not None and word in {"否", "不", "不要", "2", "no", "n"}:
            return Outcome([say("common/carry_on"), ctx.services.engine.prompt(ctx.session.top)])
        return None
    if pending.get("kind") == "resume" and ctx.session.top is not None:
        if word in CONTINUE_WORDS:
            for frame in ctx.session.stack:
                frame.updated_at = ctx.now
            return Outcome([ctx.services.engine.prompt(ctx.session.top)])
        if word in RESTART_WORDS:
            name = _root(ctx).dialog
            ctx.session.stack.clear()
            return Outcome(await _begin(name, openid, ctx) + await _run_auto(openid, ctx))
        ctx.session.flags["pending"] = pending
        return Outcome([say("common/resume", title=_title(ctx, _root(ctx).dialog))])
    return None


async def _no_dialog(inp: Input, openid: str, ctx: Context) -> Outcome:
    if inp.kind == "image":
        return Outcome([say("common/photo_without_dialog")])
    if inp.kind == "click":
        return Outcome([say("common/help")])
    # No status lookup here: free text outside any dialog is the commonest message and must stay
    # cheap (a SQL round per message was 55 % of a worker's CPU in bench/profile); 进度 asks for it.
    return Outcome([say("common/fallback")], changed=False)


async def _step(frame: Frame, inp: Input, openid: str, ctx: Context) -> list[Intent]:
    engine, actions = ctx.services.engine, ctx.services.actions
    decision = engine.interpret(frame, inp)
    if decision.hint:
        return _with_retry(frame, ctx, [Say(decision.hint, {"data": frame.data}), engine.prompt(frame)])
    payload = dict(decision.payload)
    if decision.prepare:
        call = Call(openid, frame.data, payload, ctx.now, dialog=frame.dialog, state=frame.state)
        payload.update(await actions.prepare(decision.prepare, call))
    result = engine.fire(frame, decision.trigger, payload, ctx.now)
    return await _after(frame, result, payload, openid, ctx)


async def fire_external(trigger: str, payload: dict[str, Any], openid: str, ctx: Context) -> list[Intent] | None:
    """An outside event (paid, review result) for the open dialog; None when nothing here awaits it."""
    frame = ctx.session.top
    if frame is None or not ctx.services.engine.accepts(frame, trigger):
        return None
    result = ctx.services.engine.fire(frame, trigger, payload, ctx.now)
    replies = await _after(frame, result, payload, openid, ctx)
    return replies + await _run_auto(openid, ctx)


async def _after(frame: Frame, result: StepResult, payload: dict[str, Any], openid: str,
                 ctx: Context) -> list[Intent]:
    """Apply a step's effects and close a finished dialog (its parent, if any, resumes by itself)."""
    replies = list(result.replies)
    replies += await _apply(frame, result.effects, payload, openid, ctx)
    if result.finished and frame in ctx.session.stack:
        ctx.session.stack.remove(frame)
    return replies


async def _apply(frame: Frame, effects: list[Effect], payload: dict[str, Any], openid: str,
                 ctx: Context) -> list[Intent]:
    replies: list[Intent] = []
    call = Call(openid, frame.data, payload, ctx.now, dialog=frame.dialog, state=frame.state)
    spec = ctx.services.engine.specs[frame.dialog]
    if effects or spec.track:
        forget_status(ctx)
    for effect in effects:
        if effect.name == "push_dialog":
            replies += await _begin(str(effect.args["name"]), openid, ctx, nested=True)
        else:
            await ctx.services.actions.apply(effect, call)
    if spec.track:
        await ctx.services.actions.apply(Effect("track_progress"), call)
    return replies


async def _run_auto(openid: str, ctx: Context) -> list[Intent]:
    """Run auto states (and resume parents whose child finished) until one waits for the student."""
    replies: list[Intent] = []
    engine = ctx.services.engine
    for _ in range(MAX_AUTO_STEPS):
        frame = ctx.session.top
        if frame is None or not engine.is_auto(frame):
            return replies
        replies += await _step(frame, Input("text"), openid, ctx)
    raise RuntimeError("auto states chained without end")  # the pipeline answers "busy" and keeps state


def _with_retry(frame: Frame, ctx: Context, replies: list[Intent]) -> list[Intent]:
    tries = frame.retries.get(frame.state, 0) + 1
    frame.retries[frame.state] = tries
    spec = ctx.services.engine.specs[frame.dialog]
    if tries >= spec.state(frame.state).max_retries:
        replies.insert(1, say("common/too_many_tries"))
    return replies


def _root(ctx: Context) -> Frame:
    return ctx.session.stack[0]


def _title(ctx: Context, name: str) -> str:
    return str(ctx.services.engine.specs[name].title)
