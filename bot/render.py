"""Renderer: every text a student or staff member reads comes from a jinja2 template.

Templates live in ``dialogs/templates`` (package data). ``StrictUndefined`` turns a missing variable
into an error at test time instead of an empty hole in a student's message.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from bot.privacy import mask_id, mask_name
from bot.wechat.replies import OutMessage
from dialogs.spec import Intent, Link, Picture, Say


def build_environment() -> Environment:
    env = Environment(
        loader=PackageLoader("dialogs", "templates"),
        undefined=StrictUndefined,
        autoescape=False,  # noqa: S701 - chat text, not HTML; the console has its own escaping environment
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters["mask_id"] = mask_id
    env.filters["mask_name"] = mask_name
    return env


class Renderer:
    def __init__(self, env: Environment | None = None) -> None:
        self.env = env or build_environment()

    def render(self, template: str, **variables: Any) -> str:
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
        return [self.message(i) for i in intents]
