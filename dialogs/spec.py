"""Reply intents: what a handler or dialog step wants said, before any text is rendered."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Say:
    """A text message rendered from ``dialogs/templates/<template>.txt.j2``."""

    template: str
    variables: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Picture:
    """An image already uploaded as (temporary) media."""

    media_id: str


@dataclass(frozen=True, slots=True)
class Link:
    """A one-article news message; ``title`` and ``description`` are template names."""

    title: str
    description: str
    url: str
    picurl: str = ""
    variables: Mapping[str, Any] = field(default_factory=dict)


Intent = Say | Picture | Link


def say(template: str, **variables: Any) -> Say:
    return Say(template, variables)
