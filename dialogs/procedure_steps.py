"""Compiling a procedure: each step type becomes a few states and transitions of one dialog.

Steps that need no answer (a requirement, a condition, opening a payment, submitting for review,
making a PDF) are *auto* states whose prepare action runs as soon as the dialog arrives there.
Inline prompts (``prompt = "..."`` in the file) become templates named after their state; shared
texts live in dialogs/templates/procedure/. Past a locking confirm step nothing goes back.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dialogs.engine import DialogSpec, StateSpec, TransitionSpec
from dialogs.procedure_model import ProcedureModel
from dialogs.procedure_types import Procedure, prompt_name

Builder = Callable[["_Ctx", Mapping[str, Any], str], None]
OPTIONS_LIST = "\n{% for option in options %}{{ loop.index }}. {{ option }}\n{% endfor %}"


@dataclass
class _Ctx:
    procedure: Procedure
    states: list[StateSpec] = field(default_factory=list)
    transitions: list[TransitionSpec] = field(default_factory=list)
    templates: dict[str, str] = field(default_factory=dict)
    locked: bool = False  # past a locking confirm step: no back, no cancel
    after_wait: bool = False  # the next step's first state may not go back into a wait (payment, review)
    samples: dict[str, Any] = field(default_factory=dict)  # answers of earlier steps, for template checks

    def prompt(self, state: str, text: str | None) -> str:
        name = prompt_name(self.procedure.name, state)
        self.templates[name] = text if text is not None else ""
        return name

    def state(self, name: str, step: Mapping[str, Any], **kw: Any) -> None:
        text = step.get("prompt") if "prompt_text" not in kw else kw.pop("prompt_text")
        if kw.get("expects") == "auto":
            kw.setdefault("prompt", "common/empty")
        else:
            kw.setdefault("prompt", self.prompt(name, text))
        if self.locked:
            kw.update(back=False, cancel=False)
        if self.after_wait and kw.get("expects") != "auto":
            kw["back"], self.after_wait = False, False
        kw["sample"] = {**self.samples, **kw.get("sample", {})}
        self.states.append(StateSpec(name, **kw))

    def edge(self, trigger: str, source: str | tuple[str, ...], dest: str, **kw: Any) -> None:
        self.transitions.append(TransitionSpec(trigger, source, dest, **kw))

    def entry(self, step_id: str) -> str:
        return self.procedure.entry(step_id)


def include(template: str, **values: Any) -> str:
    """An inline prompt that fills a shared template with this step's configuration."""
    sets = "".join("{% set " + k + " = " + json.dumps(v, ensure_ascii=False) + " %}" for k, v in values.items())
    return sets + '{% include "' + template + '" %}'


def _gate(ctx: _Ctx, step: Mapping[str, Any], nxt: str) -> None:
    """``when = {...}``: the step runs only when its condition holds; otherwise the dialog skips it."""
    sid = step["id"]
    ctx.state(sid + "__when", step, expects="auto", prepare="procedure_when")
    ctx.edge("auto", sid + "__when", sid, conditions=("ok",))
    ctx.edge("auto", sid + "__when", nxt, after=("drop_step",))


def _requirement(ctx: _Ctx, step: Mapping[str, Any], nxt: str) -> None:
    sid = step["id"]
    ctx.state(sid, step, expects="auto", prepare="require_" + step["type"])
    text = {"prompt_text": step["unmet_text"]} if "unmet_text" in step else {"prompt": "procedure/requirement_unmet"}
    ctx.state(sid + "__unmet", step, expects="none", final=True, **text)
    if step["type"] == "link_school":  # a school linked just now may be one the procedure is not for
        ctx.edge("auto", sid, "ineligible", conditions=("not_eligible",), after=("keep_result",))
    ctx.edge("auto", sid, nxt, conditions=("ok",), after=("clear_pushed",))
    ctx.edge("auto", sid, sid + "__unmet", conditions=("pushed_before",))
    ctx.edge("auto", sid, sid, after=("push_child",))


def _info(ctx: _Ctx, step: Mapping[str, Any], nxt: str) -> None:
    sid = step["id"]
    ctx.state(sid, step, expects="confirm", hint="procedure/expect_agree")
    ctx.state(sid + "__declined", step, expects="none", final=True,
              prompt_text=step.get("declined", "好的，你可以随时回来继续办理。"))
    ctx.edge("yes", sid, nxt)
    ctx.edge("no", sid, sid + "__declined")


def _text(ctx: _Ctx, step: Mapping[str, Any], nxt: str) -> None:
    sid = step["id"]
    ctx.state(sid, step, prepare="procedure_text", collects=(sid,))
    ctx.edge("text", sid, nxt, conditions=("ok",), after=("keep_result",))
    ctx.edge("text", sid, sid, unless=("ok",), after=("explain",))


def _choice(ctx: _Ctx, step: Mapping[str, Any], nxt: str) -> None:
    sid = step["id"]
    prompt = str(step["prompt"])
    listed = prompt if "options" in prompt else prompt + OPTIONS_LIST
    ctx.state(sid, step, expects="choice", options=tuple(step["options"]), prepare="procedure_choice",
              collects=(sid,), prompt_text=listed)
    ctx.edge("choose", sid, sid + "__refused", conditions=("refused_choice",))
    ctx.edge("choose", sid, nxt, after=("keep_result",))
    ctx.state(sid + "__refused", step, expects="none", final=True,
              prompt_text=step.get("refused_text", "很抱歉，你不符合办理条件。如有疑问请联系学校老师。"))


def _photo(ctx: _Ctx, step: Mapping[str, Any], nxt: str) -> None:
    sid, fixed = step["id"], step["id"] + "__fixed"
    ctx.state(sid, step, expects="image", prepare="check_photo", max_retries=8)
    ctx.state(fixed, step, expects="confirm", on_image="check_photo", hint="procedure/expect_use_fixed",
              prompt_text="要使用这张调整好的照片吗？回复「确认」使用，回复「修改」重新上传。"
                          "{% if data.fixed_url %}\n原图文件下载：{{ data.fixed_url }}{% endif %}")
    for source in (sid, fixed):  # a new photo is welcome while the fixed one is on offer too
        ctx.edge("image", source, nxt, conditions=("photo_ok",), after=("show_report", "accept_photo"))
        ctx.edge("image", source, fixed, conditions=("photo_fixable",), after=("show_fixed",))
        ctx.edge("image", source, sid, after=("show_report", "explain"))
    ctx.edge("yes", fixed, nxt, after=("accept_fixed",))
    ctx.edge("no", fixed, sid)


def _confirm(ctx: _Ctx, step: Mapping[str, Any], nxt: str) -> None:
    sid, locks = step["id"], bool(step.get("lock", True))
    ctx.state(sid, step, expects="confirm")
    ctx.edge("yes", sid, nxt, after=("lock",) if locks else ())
    ctx.edge("no", sid, ctx.entry(step.get("edit_from") or ctx.procedure.edit_step()))
    ctx.locked = ctx.locked or locks


def _pay(ctx: _Ctx, step: Mapping[str, Any], nxt: str) -> None:
    sid, wait = step["id"], step["id"] + "__wait"
    ctx.state(sid, step, expects="auto", prepare="pay_link")
    ctx.state(wait, step, expects="none", hint="procedure/waiting_payment", sample={"pay_url": "https://x/pay/t",
              "pay_amount_yuan": "13.50", "pay_description": "图像采集费"},
              prompt_text=step.get("prompt", "请点上面的链接支付 {{ data.pay_amount_yuan }} 元"
                                             "（{{ data.pay_description }}）。支付成功后我会马上告诉你。"))
    ctx.edge("auto", sid, nxt, conditions=("paid_already",), after=("note_paid",))
    ctx.edge("auto", sid, wait, conditions=("ok",), after=("show_pay_link",))
    ctx.edge("auto", sid, wait, after=("explain",))
    ctx.edge("paid", wait, nxt, after=("forget_pay_link",))
    ctx.after_wait = True


def _review(ctx: _Ctx, step: Mapping[str, Any], nxt: str) -> None:
    sid, wait, closed = step["id"], step["id"] + "__wait", step["id"] + "__closed"
    ctx.state(sid, step, expects="auto", prepare="submit_review")
    ctx.state(wait, step, expects="none", hint="procedure/waiting_review", back=False, prompt_text=step.get(
        "prompt", "材料已提交，老师审核一般需要 7–10 天，结果会通过公众号通知你。"))
    ctx.state(closed, step, expects="none", final=True, prompt_text=step.get(
        "closed_text", "这次审核没有通过，且已用完重新申请的机会。请联系学校老师咨询后续安排。"))
    ctx.edge("auto", sid, wait, after=("keep_result",))
    ctx.edge("review_approved", wait, nxt)
    back_to = ctx.entry(step["on_reject"]) if step.get("on_reject") else sid
    ctx.edge("review_rejected", wait, back_to, conditions=("can_reapply",), after=("note_rejection",))
    ctx.edge("review_rejected", wait, closed)
    ctx.after_wait = True


def _done(ctx: _Ctx, step: Mapping[str, Any], nxt: str) -> None:
    ctx.state(step["id"], step, expects="none", final=True)


def _builders() -> dict[str, Builder]:
    from dialogs.procedure_more import check, credits, documents, pdf

    return {
        "bind": _requirement, "link_school": _requirement, "info": _info, "text": _text, "choice": _choice,
        "documents": documents, "credits": credits, "check": check, "photo": _photo, "confirm": _confirm,
        "pay": _pay, "review": _review, "pdf": pdf, "done": _done,
    }


def compile_procedure(procedure: Procedure) -> DialogSpec:
    """The dialog definition of a procedure (its inline prompts ride along as ``templates``)."""
    ctx, builders = _Ctx(procedure), _builders()
    steps = procedure.steps
    for i, step in enumerate(steps):
        nxt = ctx.entry(steps[i + 1]["id"]) if i + 1 < len(steps) else step["id"]
        if "when" in step:
            _gate(ctx, step, nxt)
        builders[step["type"]](ctx, step, nxt)
        ctx.samples.update(_sample_answer(step))
    ctx.locked = False
    ctx.state("closed", {}, expects="none", final=True, prompt_text=procedure.texts.get(
        "closed", "「{{ data.title }}」的办理时间是{{ data.opens | cn_date }}至{{ data.closes | cn_date }}，"
                  "现在不在办理时间内。"))
    ctx.state("ineligible", {}, expects="none", final=True, prompt_text=procedure.texts.get(
        "ineligible", "「{{ data.title }}」只面向{{ data.eligible }}的同学。如有疑问请联系学校老师。"))
    return DialogSpec(
        name=procedure.name, title=procedure.title, version=1, initial=ctx.entry(steps[0]["id"]),
        states=tuple(ctx.states), transitions=tuple(ctx.transitions), model=ProcedureModel,
        start="procedure_start", entries=("closed", "ineligible", *_resumable(ctx)),
        idle_timeout=24 * 3600, start_words=procedure.start_words,
        menu_keys=(procedure.menu_key,) if procedure.menu_key else (), track=True, templates=ctx.templates,
    )


def _sample_answer(step: Mapping[str, Any]) -> dict[str, Any]:
    """A plausible answer of a step, so later prompts that show it can be checked by rendering."""
    sid, kind = step["id"], step["type"]
    if kind in ("choice", "check"):
        return {sid: str((step.get("options") or step.get("answers") or ["正确"])[0])}
    if kind == "text":
        return {sid: "示例"}
    if kind == "credits":
        return {sid: [str(step["courses"][0]["name"])], f"{sid}__total": int(step["courses"][0]["credits"])}
    return {}


def _resumable(ctx: _Ctx) -> list[str]:
    """States a student may be put back into from durable facts (waiting for payment or review)."""
    return [s.name for s in ctx.states if s.name.endswith("__wait")]
