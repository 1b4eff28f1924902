"""Graduation-photo checks and auto-fix (issue 4). See docs/photos.md.

Entry points: ``check_photo`` (async, off the event loop), ``analyse`` (sync, for workers and the
CLI), ``load_profiles`` / ``profiles_from_env``, ``render_reply``.
"""

from bot.services.photos.pipeline import FIXABLE, analyse, check_photo, process_pool
from bot.services.photos.profiles import DEFAULT_PROFILE, PhotoProfile, ProfileError, load_profiles, profiles_from_env
from bot.services.photos.reply import PhotoTexts, render_reply
from bot.services.photos.report import CheckResult, FixedPhoto, PhotoReport, Severity

__all__ = [
    "DEFAULT_PROFILE", "FIXABLE", "CheckResult", "FixedPhoto", "PhotoProfile", "PhotoReport", "PhotoTexts",
    "ProfileError", "Severity", "analyse", "check_photo", "load_profiles", "process_pool",
    "profiles_from_env", "render_reply",
]
