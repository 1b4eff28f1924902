"""The value types of configured procedures, shared by the parser, the compiler and the actions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

STEP_TYPES = ("bind", "link_school", "info", "text", "choice", "documents", "credits", "check", "photo",
              "confirm", "pay", "review", "pdf", "done")
REQUIREMENTS = {"bind": "bind", "link_school": "link_school"}
STATE_MAX = 32  # procedures.state and documents.slot are VARCHAR(32)


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
    editable: bool = False  # answers may be changed inside the window after the procedure finished
    edit_from: str = ""  # where a change starts (default: the first step that asks something)

    def step(self, step_id: str) -> Mapping[str, Any]:
        for s in self.steps:
            if s["id"] == step_id:
                return s
        raise KeyError(step_id)

    def step_of_state(self, state: str) -> Mapping[str, Any] | None:
        base = state.split("__", 1)[0]
        return next((s for s in self.steps if s["id"] == base), None)

    def entry(self, step_id: str) -> str:
        """The state a dialog enters a step by (its condition gate, when it has one)."""
        return f"{step_id}__when" if "when" in self.step(step_id) else step_id

    def steps_of(self, kind: str) -> list[Mapping[str, Any]]:
        return [s for s in self.steps if s["type"] == kind]

    def edit_step(self) -> str:
        asks = ("text", "choice", "documents", "credits", "photo", "check")
        return self.edit_from or next((s["id"] for s in self.steps if s["type"] in asks), self.steps[0]["id"])

    def answers(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """What the student entered: data keys owned by a step (``<step>`` or ``<step>__<part>``)."""
        ids = {s["id"] for s in self.steps}
        kept = {k: v for k, v in data.items() if k.split("__", 1)[0] in ids and _plain(v)}
        if data.get("locked"):
            kept["locked"] = True
        return kept

    def answer_fields(self) -> list[tuple[str, str]]:
        """(data key, label) of every answer a student gives, in step order: what a reviewer sees.

        The label is the step's ``status`` (else its id). Window, title, links (pay, download,
        upload), photo and document ids and other bookkeeping in the dialog's data are not answers;
        the files themselves are listed apart (``review_documents``).
        """
        fields: list[tuple[str, str]] = []
        for step in self.steps:
            sid, kind = str(step["id"]), step["type"]
            label = str(step.get("status") or sid)
            if kind in ("text", "choice"):
                fields.append((sid, label))
            elif kind == "credits":
                fields += [(sid, label), (f"{sid}__total", f"{label}（学分合计）")]
            elif kind == "check":
                fields += [(sid, label), (f"{sid}__what", f"{label}（问题类别）")]
            elif kind == "documents":  # which paper of a "one of" group the student chose
                fields += [(s.state, f"{s.title}（类型）") for s in document_slots(step) if s.role == "kind"]
        return fields

    def review_answers(self, data: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The answers in ``data`` as a review item lists them: ``kind`` "answer", the data key as
        ``name``, the step's ``label`` and the ``value`` as text (a list joined with 、)."""
        return [{"kind": "answer", "name": key, "label": label, "value": _as_text(data[key])}
                for key, label in self.answer_fields() if key in data and _plain(data[key])]


def _plain(value: Any) -> bool:
    if isinstance(value, str | int | float | bool) or value is None:
        return True
    if isinstance(value, list):
        return all(isinstance(v, str | int | float) for v in value)
    return False


def _as_text(value: Any) -> str:
    if isinstance(value, list):
        return "、".join(str(v) for v in value)
    return "" if value is None else str(value)


def prompt_name(procedure: str, state: str) -> str:
    """Template name of an inline prompt (procedure files carry their own texts)."""
    return f"proc/{procedure}/{state}.txt.j2"


@dataclass(frozen=True)
class DocumentSlot:
    """One state of a documents step: choosing which paper of a "one of" group, or one upload."""

    state: str  # the state asking for it (also the documents.slot of the upload)
    entry: str  # the state the dialog enters it by (an auto state opening an upload link)
    role: str  # "kind" (which one of), "chat" (an image in the chat) or "link" (a file by upload page)
    title: str  # what it is, with the page ("身份证 人像面")
    item: Mapping[str, Any]
    kind_state: str = ""  # the state holding the "one of" choice for this item

    @property
    def required(self) -> bool:
        return bool(self.item.get("required", True))


def document_slots(step: Mapping[str, Any]) -> list[DocumentSlot]:
    """The states of a documents step, in order (one per page of every item)."""
    slots: list[DocumentSlot] = []
    for item in step.get("items", ()):
        base = f"{step['id']}__{item['key']}"
        kind_state = f"{base}_kind" if item.get("one_of") else ""
        if kind_state:
            slots.append(DocumentSlot(kind_state, kind_state, "kind", str(item["title"]), item))
        pages = list(item.get("pages") or [""])
        for n, page in enumerate(pages, 1):
            state = base if len(pages) == 1 else f"{base}{n}"
            role = "link" if item.get("via") == "link" else "chat"
            entry = f"{state}_l" if role == "link" else state
            title = f"{item['title']} {page}".strip()
            slots.append(DocumentSlot(state, entry, role, title, item, kind_state))
    return slots


def size_label(kb: int) -> str:
    return f"{kb // 1024}MB" if kb >= 1024 and kb % 1024 == 0 else (f"{kb / 1024:.1f}MB" if kb >= 1024 else f"{kb}KB")
