"""One photo in, one report out: decode, analyse, run every check, optionally fix and re-check.

``analyse`` is synchronous CPU work; ``check_photo`` runs it off the event loop (a thread by default,
or the executor given, e.g. ``process_pool()``). Bad input never raises: it becomes a failed
``decode`` check with its own student-facing message.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import multiprocessing
import time
from concurrent.futures import Executor, ProcessPoolExecutor

from bot.services.photos import checks_face, checks_file, checks_light, checks_scene
from bot.services.photos.decode import MAX_BYTES, PhotoInputError, decode
from bot.services.photos.face import FaceEngine, default_engine
from bot.services.photos.fix import crop_and_scale, encode_jpeg
from bot.services.photos.profiles import PhotoProfile
from bot.services.photos.reply import shared_texts
from bot.services.photos.report import CheckResult, FixedPhoto, PhotoReport, Severity
from bot.services.photos.scene import Check, Scene, build_scene

log = logging.getLogger("gradbot.photos")

CHECKS: tuple[Check, ...] = (*checks_file.CHECKS, *checks_face.CHECKS, *checks_light.CHECKS,
                             *checks_scene.CHECKS)
# Failures that cropping, scaling and re-encoding can repair; any other failure needs a retake.
FIXABLE = frozenset({"format", "pixel_size", "file_size", "dpi", "colour_mode", "jpeg_quality", "geometry"})


def analyse(data: bytes, profile: PhotoProfile, *, fix: bool, engine: FaceEngine | None = None,
            max_bytes: int = MAX_BYTES) -> PhotoReport:
    started = time.perf_counter()
    try:
        decoded = decode(data, max_bytes=max_bytes)
    except PhotoInputError as exc:
        log.info("photo refused: %s", exc.code)
        return decode_failure_report(exc, profile, started)
    scene = build_scene(decoded, profile, engine or default_engine())
    checks = tuple(c for c in (check(scene) for check in CHECKS) if c is not None)
    fixable = scene.plan is not None and all(c.id in FIXABLE for c in checks if c.failed)
    report = PhotoReport(profile.name, checks, fixable)
    if fix:
        report = _with_fix(report, data, scene, engine)
    return _finish(report, profile, started)


def decode_failure_report(exc: PhotoInputError, profile: PhotoProfile, started: float | None = None) -> PhotoReport:
    """The report for input that cannot be analysed at all: one failed ``decode`` check."""
    check = CheckResult("decode", False, Severity.ERROR, exc.code, "a JPG/PNG photo", hint=exc.code)
    return _finish(PhotoReport(profile.name, (check,), False), profile, started or time.perf_counter())


def _with_fix(report: PhotoReport, data: bytes, scene: Scene, engine: FaceEngine | None) -> PhotoReport:
    plan = scene.plan
    if plan is None or not report.fixable:
        retake = tuple(c.id for c in report.failed if c.id not in FIXABLE) or ("framing",)
        return dataclasses.replace(report, retake=retake)
    image = crop_and_scale(data, scene.decoded, scene.k, plan, scene.profile.fix_size)
    encoded = encode_jpeg(image, scene.profile)
    recheck = analyse(encoded.data, scene.profile, fix=False, engine=engine)
    fixed = FixedPhoto(encoded.data, image.width, image.height, recheck.ok, encoded.quality,
                       problems=tuple(c.id for c in recheck.failed))
    return dataclasses.replace(report, fixed=fixed)


def _finish(report: PhotoReport, profile: PhotoProfile, started: float) -> PhotoReport:
    texts = shared_texts()
    checks = tuple(dataclasses.replace(c, message=texts.message(c, profile)) for c in report.checks)
    return dataclasses.replace(report, checks=checks, ms=(time.perf_counter() - started) * 1000)


async def check_photo(data: bytes, profile: PhotoProfile, *, fix: bool,
                      executor: Executor | None = None) -> PhotoReport:
    """Check (and optionally fix) one photo without blocking the event loop."""
    if executor is None:
        return await asyncio.to_thread(analyse, data, profile, fix=fix)
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(executor, functools.partial(analyse, data, profile, fix=fix))


def _warm() -> None:
    default_engine()
    shared_texts()


def process_pool(workers: int = 1) -> ProcessPoolExecutor:
    """Workers that load the engine once at start; ``spawn`` so no parent threads or locks are inherited."""
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_warm)
