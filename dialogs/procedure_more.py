"""Step types beyond questions and payment: documents, credits, a check on another site, PDFs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from dialogs.procedure_types import DocumentSlot, document_slots, prompt_name, size_label

if TYPE_CHECKING:
    from dialogs.procedure_steps import _Ctx


def _include(template: str, **values: Any) -> str:
    from dialogs.procedure_steps import include

    return include(template, **values)


def documents(ctx: _Ctx, step: Mapping[str, Any], nxt: str) -> None:
    """A named list of uploads, one state per page; optional ones take 「跳过」, earlier ones 「沿用」."""
    sid, slots = step["id"], document_slots(step)
    listed = [{"title": str(i["title"]), "required": bool(i.get("required", True)),
               "one_of": list(i.get("one_of", ()))} for i in step["items"]]
    ctx.state(sid, step, expects="confirm", hint="procedure/expect_ready", prompt_text=step.get("prompt") or
              _include("procedure/documents_intro.txt.j2", items=listed))
    ctx.state(sid + "__later", step, expects="none", final=True, prompt="procedure/documents_later")
    ctx.edge("yes", sid, slots[0].entry)
    ctx.edge("no", sid, sid + "__later")
    for i, slot in enumerate(slots):
        _slot(ctx, step, slot, slots[i + 1].entry if i + 1 < len(slots) else nxt)


def _slot(ctx: _Ctx, step: Mapping[str, Any], slot: DocumentSlot, nxt: str) -> None:
    item, s = slot.item, slot.state
    if slot.role == "kind":
        ctx.state(s, step, expects="choice", options=tuple(item["one_of"]), prepare="procedure_choice",
                  collects=(s,), prompt_text=_include("procedure/document_kind.txt.j2", title=slot.title))
        ctx.edge("choose", s, nxt, after=("keep_result",))
        return
    doc = {"state": s, "title": slot.title, "kind_state": slot.kind_state, "required": slot.required,
           "formats": list(item["formats"]), "limit": size_label(int(item["max_kb"]))}
    template = "procedure/document_link.txt.j2" if slot.role == "link" else "procedure/document_upload.txt.j2"
    text = item.get("prompt") or _include(template, doc=doc)
    sample = {"upload_url": "https://x/upload/t"} if slot.role == "link" else {}
    if slot.role == "link":
        ctx.state(slot.entry, step, expects="auto", prepare="upload_link")
        ctx.edge("auto", slot.entry, s, after=("keep_result",))
        ctx.edge("uploaded", s, nxt, conditions=("upload_matches",), after=("keep_upload",))
    on_image = "accept_document" if slot.role == "chat" else ""
    ctx.state(s, step, expects="text", prepare="document_text", on_image=on_image, collects=(s,),
              prompt_text=text, sample=sample, hint="procedure/expect_upload_link" if slot.role == "link" else "")
    for trigger in ("image", "text") if on_image else ("text",):
        ctx.edge(trigger, s, nxt, conditions=("ok",), after=("keep_document",))
        ctx.edge(trigger, s, s, after=("explain",))


def credits(ctx: _Ctx, step: Mapping[str, Any], nxt: str) -> None:
    """Pick courses by number; the credits must add up to ``min_total`` (e.g. substitutes for 英语(二))."""
    sid = step["id"]
    options = tuple(f"{c['name']}（{c['credits']}学分）" for c in step["courses"])
    text = str(step["prompt"]) + _include("procedure/credits_list.txt.j2", minimum=step["min_total"])
    ctx.state(sid, step, expects="text", options=options, prepare="procedure_credits",
              collects=(sid, sid + "__total"), prompt_text=text)
    ctx.edge("text", sid, nxt, conditions=("ok",), after=("keep_result",))
    ctx.edge("text", sid, sid, after=("explain",))


def check(ctx: _Ctx, step: Mapping[str, Any], nxt: str) -> None:
    """The student checks a record elsewhere (学信网) and says right or wrong; wrong goes to staff
    with a category, and the check repeats once staff say it was fixed, until it is right."""
    sid = step["id"]
    ok, what, report, wait = (sid + s for s in ("__ok", "__what", "__report", "__wait"))
    answers = tuple(step.get("answers", ("正确", "有误")))
    ctx.state(sid, step, expects="choice", options=answers, prepare="procedure_choice", collects=(sid,),
              prompt_text=str(step["prompt"]) + "\n{% for option in options %}{{ loop.index }}. {{ option }}\n"
                                                "{% endfor %}")
    ctx.state(ok, step, expects="confirm", prompt_text=step["correct_text"])
    ctx.state(what, step, expects="choice", options=tuple(step["categories"]), prepare="procedure_choice",
              collects=(what,), prompt_text=step.get("category_prompt") or
              _include("procedure/check_category.txt.j2"))
    ctx.state(report, step, expects="auto", prepare="submit_review")
    ctx.state(wait, step, expects="choice", options=(str(step.get("recheck", "重新核对")),), back=False,
              prompt_text=step["wrong_text"], sample={what: step["categories"][0]})
    ctx.edge("choose", sid, ok, conditions=("first_option",), after=("keep_result",))
    ctx.edge("choose", sid, what, after=("keep_result",))
    ctx.edge("yes", ok, nxt)
    ctx.edge("no", ok, sid)
    ctx.edge("choose", what, report, after=("keep_result",))
    ctx.edge("auto", report, wait, after=("keep_result",))
    ctx.edge("choose", wait, sid)
    ctx.edge("review_approved", wait, sid, after=("say_fixed",))
    ctx.edge("review_rejected", wait, wait, after=("tell_review_note",))


def pdf(ctx: _Ctx, step: Mapping[str, Any], nxt: str) -> None:
    """A PDF made from the answers (receipt, admission ticket, registration form), served by a sealed
    short-lived link; with ``available_from`` it waits for that day."""
    sid, wait = step["id"], step["id"] + "__wait"
    copies = int(step.get("copies", 1))
    ctx.templates[prompt_name(ctx.procedure.name, sid)] = str(step.get("prompt") or _include(
        "procedure/pdf_ready.txt.j2", title=step["title"], copies=copies))
    ctx.state(sid, step, expects="auto", prepare="make_pdf")
    ctx.state(wait, step, expects="text", prepare="pdf_wait", sample={"pdf_from": "2024-10-20"},
              prompt_text=step.get("wait_text") or _include("procedure/pdf_wait.txt.j2", title=step["title"],
                                                            editable=ctx.procedure.editable))
    ctx.edge("auto", sid, nxt, conditions=("ok",), after=("show_pdf",))
    ctx.edge("auto", sid, wait, after=("keep_result",))
    if ctx.procedure.editable:
        ctx.edge("text", wait, ctx.entry(ctx.procedure.edit_step()), conditions=("wants_edit",))
    ctx.edge("text", wait, sid, after=("explain",))
