"""Procedures as configuration: a school's TOML file compiled into one dialog definition.

A procedure names its steps (bind, link_school, info, text, choice, photo, confirm, pay, review,
done), its window, its eligibility and its texts. Each step becomes a few states; steps that need
no answer (a requirement, opening a payment, submitting for review) are *auto* states whose prepare
action runs as soon as the dialog arrives there. Requirements met by durable facts are skipped, so
a student who already bound their identity goes straight on.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from dialogs.engine import DialogModel, DialogSpec, StateSpec, TransitionSpec
from dialogs.spec import Link, Picture

STEP_TYPES = ("bind", "link_school", "info", "text", "choice", "photo", "confirm", "pay", "review", "done")
REQUIREMENTS = {"bind": "bind", "link_school": "link_school"}


class ProcedureError(ValueError):
    """A procedure file that cannot run; the message names the file and line."""


@dataclass(frozen=True)
class Procedure:
    name: str
    title: str
    steps: tuple[Mapping[str, Any], ...]
    source: str = ""
    school: str = "*"
    opens: date | None = None
    closes: date | None = None
    start_words: tuple[str, ...] = ()
    menu_key: str = ""
    eligible: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    texts: Mapping[str, str] = field(default_factory=dict)

    def step(self, step_id: str) -> Mapping[str, Any]:
        for s in self.steps:
            if s["id"] == step_id:
                return s
        raise KeyError(step_id)

    def step_of_state(self, state: str) -> Mapping[str, Any] | None:
        base = state.split("__", 1)[0]
        return next((s for s in self.steps if s["id"] == base), None)


class ProcedureModel(DialogModel):
    """Generic conditions and callbacks shared by every compiled procedure."""

    def keep_result(self) -> None:
        self.data.update(self.payload.get("keep", {}))

    def push_child(self) -> None:
        self.quiet = True
        self.data["pushed"] = self.state
        self.effect("push_dialog", name=self.payload["push"])

    def pushed_before(self) -> bool:
        """The child dialog already ran and the requirement is still unmet (declined, refused)."""
        return self.data.get("pushed") == self.state

    def clear_pushed(self) -> None:
        self.data.pop("pushed", None)

    def refused_choice(self) -> bool:
        return bool(self.payload.get("refused"))

    def photo_ok(self) -> bool:
        return bool(self.payload.get("ok"))

    def photo_fixable(self) -> bool:
        return bool(self.payload.get("fixed_media_id"))

    def show_report(self) -> None:
        if self.payload.get("report"):
            self.say("photo/report_text", text=self.payload["report"])

    def show_fixed(self) -> None:
        self.show_report()
        self.replies.append(Picture(str(self.payload["fixed_media_id"])))
        self.data["fixed_photo_id"] = self.payload["photo_id"]
        self.data["fixed_url"] = self.payload.get("fixed_url", "")

    def accept_fixed(self) -> None:
        self.effect("accept_photo", photo_id=self.data.pop("fixed_photo_id"), fixed=True)
        self.data["photo_id"] = self.data.get("photo_id")

    def accept_photo(self) -> None:
        self.effect("accept_photo", photo_id=self.payload["photo_id"], fixed=False)

    def paid_already(self) -> bool:
        return bool(self.payload.get("paid"))

    def show_pay_link(self) -> None:
        self.data["pay_url"] = self.payload["pay_url"]
        self.data["pay_item"] = self.payload["item"]
        self.data["pay_amount_yuan"] = self.payload["amount_yuan"]
        self.data["pay_description"] = self.payload["description"]
        self.replies.append(Link("pay/link_title", "pay/link_description", str(self.payload["pay_url"]),
                                 variables=dict(self.data)))

    def forget_pay_link(self) -> None:
        for key in ("pay_url", "pay_item", "pay_amount_yuan", "pay_description"):
            self.data.pop(key, None)

    def can_reapply(self) -> bool:
        return int(self.data.get("rejections", 0)) < int(self.payload.get("reapply_limit", 99))

    def note_rejection(self) -> None:
        self.data["rejections"] = int(self.data.get("rejections", 0)) + 1
        self.say("procedure/rejected", reasons=self.payload.get("reasons", []), note=self.payload.get("note", ""))
        self.data.pop("photo_id", None)

    def lock(self) -> None:
        self.data["locked"] = True
        self.effect("lock_procedure")


Builder = Callable[["_Ctx", Mapping[str, Any], str], None]


@dataclass
class _Ctx:
    procedure: Procedure
    states: list[StateSpec] = field(default_factory=list)
    transitions: list[TransitionSpec] = field(default_factory=list)
    templates: dict[str, str] = field(default_factory=dict)
    locked: bool = False  # past a confirm step: no back, no cancel

    def prompt(self, state: str, text: str | None) -> str:
        name = f"proc/{self.procedure.name}/{state}.txt.j2"
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
        self.states.append(StateSpec(name, **kw))

    def edge(self, trigger: str, source: str | tuple[str, ...], dest: str, **kw: Any) -> None:
        self.transitions.append(TransitionSpec(trigger, source, dest, **kw))


def _requirement(ctx: _Ctx, step: Mapping[str, Any], nxt: str) -> None:
    sid = step["id"]
    ctx.state(sid, step, expects="auto", prepare="require_" + step["type"])
    ctx.state(sid + "__unmet", step, expects="none", final=True, prompt_text=step.get(
        "unmet_text", "办理「{{ data.title }}」需要先完成这一步。准备好了随时再来。"))
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
    ctx.state(sid, step, expects="choice", options=tuple(step["options"]), prepare="procedure_choice",
              collects=(sid,))
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
    sid = step["id"]
    ctx.state(sid, step, expects="confirm")
    ctx.edge("yes", sid, nxt, after=("lock",))
    ctx.edge("no", sid, step.get("edit_from") or ctx.procedure.steps[0]["id"])
    ctx.locked = True


def _pay(ctx: _Ctx, step: Mapping[str, Any], nxt: str) -> None:
    sid, wait = step["id"], step["id"] + "__wait"
    ctx.state(sid, step, expects="auto", prepare="pay_link")
    ctx.state(wait, step, expects="none", hint="procedure/waiting_payment", sample={"pay_url": "https://x/pay/t",
              "pay_amount_yuan": "13.50", "pay_description": "图像采集费"},
              prompt_text=step.get("prompt", "请点上面的链接支付 {{ data.pay_amount_yuan }} 元"
                                             "（{{ data.pay_description }}）。支付成功后我会马上告诉你。"))
    ctx.edge("auto", sid, nxt, conditions=("paid_already",))
    ctx.edge("auto", sid, wait, conditions=("ok",), after=("show_pay_link",))
    ctx.edge("auto", sid, wait, after=("explain",))
    ctx.edge("paid", wait, nxt, after=("forget_pay_link",))


def _review(ctx: _Ctx, step: Mapping[str, Any], nxt: str) -> None:
    sid, wait, closed = step["id"], step["id"] + "__wait", step["id"] + "__closed"
    ctx.state(sid, step, expects="auto", prepare="submit_review")
    ctx.state(wait, step, expects="none", hint="procedure/waiting_review", back=False, prompt_text=step.get(
        "prompt", "材料已提交，老师审核一般需要 7–10 天，结果会通过公众号通知你。"))
    ctx.state(closed, step, expects="none", final=True, prompt_text=step.get(
        "closed_text", "这次审核没有通过，且已用完重新申请的机会。请联系学校老师咨询后续安排。"))
    ctx.edge("auto", sid, wait)
    ctx.edge("review_approved", wait, nxt)
    back_to = step.get("on_reject") or sid
    ctx.edge("review_rejected", wait, back_to, conditions=("can_reapply",), after=("note_rejection",))
    ctx.edge("review_rejected", wait, closed)


def _done(ctx: _Ctx, step: Mapping[str, Any], nxt: str) -> None:
    ctx.state(step["id"], step, expects="none", final=True)


BUILDERS: dict[str, Builder] = {
    "bind": _requirement, "link_school": _requirement, "info": _info, "text": _text, "choice": _choice,
    "photo": _photo, "confirm": _confirm, "pay": _pay, "review": _review, "done": _done,
}


def compile_procedure(procedure: Procedure) -> DialogSpec:
    """The dialog definition of a procedure (its inline prompts ride along as ``templates``)."""
    ctx = _Ctx(procedure)
    steps = procedure.steps
    for i, step in enumerate(steps):
        nxt = steps[i + 1]["id"] if i + 1 < len(steps) else step["id"]
        BUILDERS[step["type"]](ctx, step, nxt)
    ctx.state("closed", {}, expects="none", final=True, prompt_text=procedure.texts.get(
        "closed", "「{{ data.title }}」的办理时间是 {{ data.opens }} 至 {{ data.closes }}，现在不在办理时间内。"))
    ctx.state("ineligible", {}, expects="none", final=True, prompt_text=procedure.texts.get(
        "ineligible", "「{{ data.title }}」只面向{{ data.eligible }}的同学。如有疑问请联系学校老师。"))
    spec = DialogSpec(
        name=procedure.name, title=procedure.title, version=1, initial=steps[0]["id"],
        states=tuple(ctx.states), transitions=tuple(ctx.transitions), model=ProcedureModel,
        start="procedure_start", entries=("closed", "ineligible", *_resumable(ctx)),
        idle_timeout=24 * 3600, start_words=procedure.start_words,
        menu_keys=(procedure.menu_key,) if procedure.menu_key else (), track=True, templates=ctx.templates,
    )
    return spec


def _resumable(ctx: _Ctx) -> list[str]:
    """States a student may be put back into from durable facts (waiting for payment or review)."""
    return [s.name for s in ctx.states if s.name.endswith("__wait")]


# --- loading ------------------------------------------------------------------------------------

_ID = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


def load_procedure(path: Path) -> Procedure:
    text = path.read_text(encoding="utf-8")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProcedureError(f"{path}: {exc}") from None
    return parse_procedure(raw, text, str(path))


def parse_procedure(raw: Mapping[str, Any], text: str = "", source: str = "") -> Procedure:
    name = str(raw.get("name", ""))
    if not _ID.match(name):
        raise ProcedureError(f"{source}:{_line(text, 'name')}: name must be lower-case letters, digits, _")
    steps = [_step(s, i, text, source) for i, s in enumerate(raw.get("steps", []))]
    if not steps:
        raise ProcedureError(f"{source}: a procedure needs [[steps]]")
    _check_order(steps, text, source)
    window = raw.get("window", {})
    return Procedure(
        name=name, title=str(raw.get("title", name)), steps=tuple(steps), source=source,
        school=str(raw.get("school", "*")), opens=_date(window.get("opens")), closes=_date(window.get("closes")),
        start_words=tuple(raw.get("start_words", ())), menu_key=str(raw.get("menu_key", "")),
        eligible={k: tuple(v) for k, v in raw.get("eligible", {}).items()}, texts=dict(raw.get("texts", {})),
    )


def _date(value: Any) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


def _step(raw: Mapping[str, Any], index: int, text: str, source: str) -> dict[str, Any]:
    step = dict(raw)
    kind = step.get("type")
    where = f"{source}:{_line(text, '[[steps]]', index)}"
    if kind not in STEP_TYPES:
        raise ProcedureError(f"{where}: unknown step type {kind!r} (one of {', '.join(STEP_TYPES)})")
    step.setdefault("id", f"{kind}" if kind in REQUIREMENTS or kind == "done" else f"{kind}{index + 1}")
    if not _ID.match(str(step["id"])) or "__" in str(step["id"]):
        raise ProcedureError(f"{where}: step id {step['id']!r} must be lower-case letters, digits, _")
    needs = {"text": ("prompt",), "choice": ("prompt", "options"), "info": ("prompt",), "photo": ("prompt",),
             "confirm": ("prompt",), "pay": ("item",), "done": ("prompt",)}.get(str(kind), ())
    missing = [k for k in needs if k not in step]
    if missing:
        raise ProcedureError(f"{where}: step {step['id']!r} ({kind}) needs {', '.join(missing)}")
    return step


def _check_order(steps: Sequence[Mapping[str, Any]], text: str, source: str) -> None:
    ids = [s["id"] for s in steps]
    for i, step in enumerate(steps):
        where = f"{source}:{_line(text, '[[steps]]', i)}"
        if ids.count(step["id"]) > 1:
            raise ProcedureError(f"{where}: step id {step['id']!r} is used twice")
        for key in ("on_reject", "edit_from"):
            if key in step and step[key] not in ids[:i]:
                raise ProcedureError(f"{where}: {key} must name an earlier step, not {step[key]!r}")
        if step["type"] == "review" and not any(s["type"] in ("photo", "text", "choice") for s in steps[:i]):
            raise ProcedureError(f"{where}: a review needs something to review before it")
    if steps[-1]["type"] != "done":
        raise ProcedureError(f"{source}:{_line(text, '[[steps]]', len(steps) - 1)}: the last step must be done")


def _line(text: str, needle: str, occurrence: int = 0) -> int:
    """1-based line of the n-th line starting with ``needle`` (for error messages)."""
    seen = -1
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip().startswith(needle):
            seen += 1
            if seen == occurrence:
                return number
    return 1
