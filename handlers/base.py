"""What every handler receives and returns."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from bot.wechat.inbound import Inbound
from dialogs.session import SessionRecord
from dialogs.spec import Intent


@dataclass(frozen=True, slots=True)
class Context:
    """One message's world: the clock reading, the session (mutable), and the services."""

    now: float
    session: SessionRecord
    services: Any = None  # bot.services.Services; Any keeps handlers testable with plain stand-ins


@dataclass(slots=True)
class Outcome:
    replies: list[Intent] = field(default_factory=list)
    # False when nothing about the student's position changed (skips nothing today; kept for clarity).
    changed: bool = True


Handler = Callable[[Inbound, Context], Awaitable[Outcome]]
