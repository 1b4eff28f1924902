"""The ``pdf`` step: a receipt, admission ticket or registration form made from the student's answers,
stored like any document and handed out by a sealed link that expires (a new one on every request).

Rows are ``["label", "{{ template }}"]`` pairs rendered in a sandbox with ``data`` (the answers),
``student`` (masked name and ID number: the clear ones are for the identity verifier only),
``school`` (the school link), ``procedure`` and ``today``. A row whose answer is missing stays empty.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from jinja2.sandbox import SandboxedEnvironment

from bot.services.actions import refused
from bot.services.pdf import PdfForm, render_pdf
from bot.services.procedure_documents import CONTENT_TYPES
from dialogs.actions import Call
from dialogs.procedure import document_slots, prompt_name
from dialogs.procedure_types import DocumentSlot
from dialogs.spec import Say
from storage.sql import identity, links

if TYPE_CHECKING:
    from bot.services.procedure_actions import ProcedureActions

log = logging.getLogger("bot.procedures")
DOC_LINK_TTL = 24 * 3600.0
EDIT_WORDS = frozenset({"修改", "修改信息", "修改报名", "修改报考信息"})
_ENV = SandboxedEnvironment(autoescape=False)


class PdfActions:
    def __init__(self, parent: ProcedureActions) -> None:
        self.p = parent
        self.prepares = {"make_pdf": self.make_pdf, "pdf_wait": self.pdf_wait}

    async def make_pdf(self, call: Call) -> Mapping[str, Any]:
        step, proc = self.p.step_of(call), self.p.procedures[call.dialog]
        opens = step.get("available_from")
        if opens is not None and self.p.today(call) < opens:
            return {"ok": False, "keep": {"pdf_from": opens.isoformat()}}
        context = await self.context(call)
        form = PdfForm(
            title=str(step["title"]), subtitle=_render(str(step.get("subtitle", "{{ school.school_name }}")), context),
            rows=[(str(label), _render(str(value), context)) for label, value in step["rows"]],
            notes=[_render(str(n), context) for n in step.get("notes", ())], copies=int(step.get("copies", 1)),
            footer=f"编号 {context['reference']} · 生成于 {context['today']} · gradbot")
        data = await asyncio.to_thread(render_pdf, form)
        slot = DocumentSlot(call.state, call.state, "generated", str(step["title"]), step)
        await self.p.documents.store(call, slot, data, CONTENT_TYPES["PDF"], "generated")
        filename = str(step.get("filename", f"{step['id']}.pdf"))
        return {"ok": True, "url": self.doc_url(self.p.files.put(data), filename, call.now),
                "template": prompt_name(proc.name, str(step["id"])), "hours": int(DOC_LINK_TTL // 3600)}

    def doc_url(self, digest: str, filename: str, now: float) -> str:
        claims = {"d": digest, "t": CONTENT_TYPES["PDF"], "n": filename}
        token = self.p.sealer.seal("doc", claims, (now or self.p.clock()) + DOC_LINK_TTL)
        return f"{self.p.public_url.rstrip('/')}/docs/{token}"

    async def context(self, call: Call) -> dict[str, Any]:
        proc = self.p.procedures[call.dialog]
        async with self.p.db.read() as conn:
            binding = await identity.get(conn, call.openid)
            link = await links.get(conn, call.openid)
        today = self.p.today(call)
        return {
            "data": dict(call.data), "procedure": proc.title,
            "student": {"name": binding.name_masked, "id": binding.id_masked} if binding else {},
            "school": {"school_name": link.school_name, "education_type": link.education_type,
                       "level": link.level, "cohort": link.cohort} if link else {"school_name": ""},
            "documents": _uploaded(proc.steps, call.data),
            "today": f"{today.year}年{today.month}月{today.day}日",
            "reference": hashlib.sha256(f"{call.openid}|{proc.name}".encode()).hexdigest()[:10].upper(),
        }

    async def pdf_wait(self, call: Call) -> Mapping[str, Any]:
        """Waiting for the release day: 「修改」 changes the answers while the window is open."""
        proc = self.p.procedures[call.dialog]
        if str(call.payload.get("text", "")).strip() in EDIT_WORDS:
            if proc.editable and await self.p.window_open(proc, call):
                return {"edit": True}
            return refused(Say("procedure/edit_closed", {}))
        return {}


def _render(template: str, context: Mapping[str, Any]) -> str:
    return _ENV.from_string(template).render(**context).strip()


def _uploaded(steps: Any, data: Mapping[str, Any]) -> list[str]:
    """Titles of the documents the student sent (for a receipt's list of materials)."""
    return [s.title for step in steps if step["type"] == "documents" for s in document_slots(step)
            if s.role != "kind" and data.get(s.state)]
