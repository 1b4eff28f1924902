"""Value types of a photo check: one result per check, the report, and the fixed file."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

Measured = float | int | str | bool | list[Any] | dict[str, Any] | None


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class CheckResult:
    id: str
    ok: bool
    severity: Severity
    measured: Measured = None
    expected: Measured = None
    # Which variant of the advice applies (e.g. "dark" / "bright"); picks the template branch.
    hint: str = ""
    message: str = ""

    @property
    def failed(self) -> bool:
        return not self.ok and self.severity is Severity.ERROR

    @property
    def warned(self) -> bool:
        return not self.ok and self.severity is Severity.WARNING

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "ok": self.ok, "severity": str(self.severity),
                "measured": self.measured, "expected": self.expected, "message": self.message}


@dataclass(frozen=True, slots=True)
class FixedPhoto:
    data: bytes = field(repr=False)
    width: int
    height: int
    ok: bool
    quality: int
    path: str | None = None
    # Ids of the checks the fixed file still fails on re-check (empty when ok).
    problems: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "width": self.width, "height": self.height,
                "bytes": len(self.data), "ok": self.ok}


@dataclass(frozen=True, slots=True)
class PhotoReport:
    profile: str
    checks: tuple[CheckResult, ...]
    fixable: bool
    fixed: FixedPhoto | None = None
    ms: float = 0.0
    file: str | None = None
    # Set when a fix was asked for but no valid crop exists: what to retake instead.
    retake: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not any(c.failed for c in self.checks)

    @property
    def failed(self) -> list[CheckResult]:
        return [c for c in self.checks if c.failed]

    @property
    def warnings(self) -> list[CheckResult]:
        return [c for c in self.checks if c.warned]

    @property
    def passed(self) -> list[CheckResult]:
        return [c for c in self.checks if c.ok]

    def check(self, check_id: str) -> CheckResult | None:
        return next((c for c in self.checks if c.id == check_id), None)

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "profile": self.profile, "ok": self.ok, "fixable": self.fixable,
                "checks": [c.to_json() for c in self.checks],
                "fixed": self.fixed.to_json() if self.fixed else None, "ms": round(self.ms, 1)}


def as_plain(value: Any) -> Any:
    """Dataclass-friendly conversion for JSON (used for profiles in `gradbot profiles list`)."""
    return asdict(value) if hasattr(value, "__dataclass_fields__") else value
