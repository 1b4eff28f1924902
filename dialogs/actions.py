"""The boundary between pure dialogs and the services that feed and record them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from dialogs.engine import Effect


@dataclass(frozen=True, slots=True)
class Call:
    """What an action sees: whose dialog, its data so far, the step's payload, and the time."""

    openid: str
    data: Mapping[str, Any]
    payload: Mapping[str, Any] = field(default_factory=dict)
    now: float = 0.0
    dialog: str = ""
    state: str = ""


@dataclass(frozen=True, slots=True)
class ProcedureStatus:
    name: str
    title: str
    done: bool
    state: str  # short Chinese description of where it stands
    next_step: str = ""


class Actions(Protocol):
    async def prepare(self, name: str, call: Call) -> Mapping[str, Any]:
        """Validate, look up or verify an input; the result is merged into the step's payload."""

    async def apply(self, effect: Effect, call: Call) -> None:
        """Record what a step decided (SQL writes, notifications)."""

    async def start(self, name: str, call: Call) -> tuple[str, dict[str, Any]] | None:
        """Where a dialog should begin given durable facts; None for its initial state."""

    async def status(self, openid: str) -> list[ProcedureStatus]:
        """Every procedure's progress for this student, from durable facts."""
