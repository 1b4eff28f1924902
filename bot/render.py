"""Renderer: every text a student or staff member reads comes from a jinja2 template.

Templates live in ``dialogs/templates`` (package data). ``StrictUndefined`` turns a missing variable
into an error at test time instead of an empty hole in a student's message.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from jinja2 import ChoiceLoader, DictLoader, Environment, PackageLoader, StrictUndefined

from bot.privacy import mask_id, mask_name
from bot.wechat.replies import OutMessage
from dialogs.spec import Intent, Link, Picture, Say


def build_environment(inline: dict[str, str] | None = None) -> Environment:
    """Templates from dialogs/templates, then ``inline`` ones (prompts written in procedure files)."""
    env = Environment(
        loader=ChoiceLoader([PackageLoader("dialogs", "templates"), DictLoader(inline if inline is not None else {})]),
        undefined=StrictUndefined,
        autoescape=False,  # noqa: S701 - chat text, not HTML; the console has its own escaping environment
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        # Templates are package data and start-up registrations: never re-stat them on every render
        # (two stat syscalls per message on the hot path; inline ones are registered before use).
        auto_reload=False,
    )
    env.filters["mask_id"] = mask_id
    env.filters["mask_name"] = mask_name
    env.filters["cn_date"] = cn_date
    return env


def cn_date(value: str | date, year: bool = True) -> str:
    """``2025-03-11`` → ``2025年3月11日`` (``year=False``: ``3月11日``); an empty date stays empty."""
    if not value:
        return ""
    day = value if isinstance(value, date) else date.fromisoformat(str(value))
    return (f"{day.year}年" if year else "") + f"{day.month}月{day.day}日"


class Renderer:
    def __init__(self, env: Environment | None = None) -> None:
        self._inline: dict[str, str] = {}
        self.env = env or build_environment(self._inline)
        # Texts of templates rendered without variables (the fallback, help, busy …: most chat
        # messages): the same every time, and a jinja2 render is about 20 us. Nothing personal is
        # kept: a render with variables is never stored.
        self._fixed: dict[str, str] = {}

    def add_templates(self, templates: dict[str, str]) -> None:
        """Register inline templates (procedure prompts); names never collide with shipped files."""
        self._inline.update(templates)
        self._fixed.clear()

    def render(self, template: str, **variables: Any) -> str:
        if not variables:
            text = self._fixed.get(template)
            if text is None:
                text = self._fixed[template] = self._render(template, variables)
            return text
        return self._render(template, variables)

    def _render(self, template: str, variables: dict[str, Any]) -> str:
        name = template if template.endswith(".j2") else f"{template}.txt.j2"
        return self.env.get_template(name).render(**variables).strip()

    def message(self, intent: Intent) -> OutMessage:
        if isinstance(intent, Say):
            return OutMessage.text(self.render(intent.template, **intent.variables))
        if isinstance(intent, Picture):
            return OutMessage.image(intent.media_id)
        assert isinstance(intent, Link)
        return OutMessage.news(self.render(intent.title, **intent.variables),
                               self.render(intent.description, **intent.variables),
                               intent.url, intent.picurl)

    def messages(self, intents: Iterable[Intent]) -> list[OutMessage]:
        """Rendered messages, adjacent texts joined into one: a passive reply carries one message,
        and every extra one spends the student's customer-service quota (5 per message)."""
        out: list[OutMessage] = []
        for message in map(self.message, intents):
            if out and message.kind == out[-1].kind == "text" and _fits(out[-1].content, message.content):
                out[-1] = OutMessage.text(out[-1].content + "\n" + message.content)
            else:
                out.append(message)
        return out


# WeChat truncates or refuses longer passive texts (about 2048 bytes, reference/wechat.md §1.4).
TEXT_BYTES = 2000


def _fits(first: str, second: str) -> bool:
    return len(first.encode()) + len(second.encode()) + 1 <= TEXT_BYTES
