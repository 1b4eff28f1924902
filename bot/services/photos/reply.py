"""Student-facing text for a photo report, from dialogs/templates/photo/ (no Chinese in Python)."""

from __future__ import annotations

import functools
from typing import Any

from jinja2 import Environment

from bot.render import build_environment
from bot.services.photos.profiles import PhotoProfile
from bot.services.photos.report import CheckResult, PhotoReport

CHECK_TEMPLATES = "photo/checks.j2"
REPLY_TEMPLATE = "photo/reply.txt.j2"


class PhotoTexts:
    """Renders one-line check messages and the whole reply; build once, reuse (templates are cached)."""

    def __init__(self, env: Environment | None = None) -> None:
        self.env = env or build_environment()
        self._macros: Any = self.env.get_template(CHECK_TEMPLATES).module

    def message(self, check: CheckResult, profile: PhotoProfile) -> str:
        if check.ok:
            return str(self._macros.label(check)).strip()
        macro = getattr(self._macros, check.id, None)
        if macro is None:
            raise KeyError(f"no template macro for photo check {check.id!r} in {CHECK_TEMPLATES}")
        return str(macro(check, profile)).strip()

    def reply(self, report: PhotoReport, profile: PhotoProfile) -> str:
        fixed = report.fixed
        variables = {
            "ok": report.ok,
            "failed": [c.message or self.message(c, profile) for c in report.failed],
            "warnings": [c.message or self.message(c, profile) for c in report.warnings],
            "passed": len(report.passed),
            "fixed": None if fixed is None else {"ok": fixed.ok, "width": fixed.width, "height": fixed.height,
                                                 "kb": round(len(fixed.data) / 1024)},
            "retake": bool(report.retake),
            "profile_title": profile.title,
        }
        return self.env.get_template(REPLY_TEMPLATE).render(**variables).strip()


@functools.cache
def shared_texts() -> PhotoTexts:
    """The process's one PhotoTexts: building one compiles the photo templates (it was done for every
    photo a student sent, 3 % of a web worker's CPU in the soak)."""
    return PhotoTexts()


def render_reply(report: PhotoReport, profile: PhotoProfile, texts: PhotoTexts | None = None) -> str:
    return (texts or shared_texts()).reply(report, profile)
