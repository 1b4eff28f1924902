"""Checks of light and detail on the face: exposure, highlights, balance, glasses, sharpness, smoothing."""

from __future__ import annotations

import numpy as np

from bot.services.photos import thresholds as t
from bot.services.photos.measure import Arr, FaceView, eye_boxes, laplacian_var
from bot.services.photos.report import CheckResult
from bot.services.photos.scene import Check, Scene, result, warning


def check_exposure(s: Scene) -> CheckResult | None:
    v = s.view
    if v is None or not v.skin.any():
        return None
    mean = float(v.lum[v.skin].mean()) / 255
    face = v.lum[v.oval]
    clipped = float(np.mean((face <= 25) | (face >= 247)))
    low, high = t.EXPOSURE_MEAN
    hint = "dark" if mean < low else "bright" if mean > high else "clipped" if clipped > t.CLIPPED_MAX else ""
    return result("exposure", not hint, {"mean": round(mean, 3), "clipped": round(clipped, 4)},
                  {"mean": list(t.EXPOSURE_MEAN), "clipped": t.CLIPPED_MAX}, hint=hint)


def check_highlights(s: Scene) -> CheckResult | None:
    v = s.view
    if v is None or not v.skin.any():
        return None
    share = float(np.mean(v.lum[v.skin] >= t.HIGHLIGHT_LUMA))
    return result("highlights", share <= t.HIGHLIGHT_MAX, round(share, 4), t.HIGHLIGHT_MAX)


def check_lighting(s: Scene) -> CheckResult | None:
    """#17 (阴阳脸): median luma of the left and right cheek."""
    v = s.view
    if v is None or not (v.cheeks[0].any() and v.cheeks[1].any()):
        return None
    left, right = (float(np.median(v.lum[c])) for c in v.cheeks)
    diff = abs(left - right)
    return result("lighting", diff <= t.LIGHTING_DIFF_MAX, round(diff, 1), t.LIGHTING_DIFF_MAX)


def check_glasses_glare(s: Scene) -> CheckResult | None:
    v = s.view
    if v is None:
        return None
    a, b = eye_boxes(v)
    share = max(float(np.mean(v.lum[m] >= t.HIGHLIGHT_LUMA)) if m.any() else 0.0 for m in (a, b))
    return result("glasses_glare", share <= t.GLARE_MAX, round(share, 4), t.GLARE_MAX)


def check_tinted_glasses(s: Scene) -> CheckResult | None:
    """#19 (heuristic, warning): lenses that darken the whole eye area relative to the cheeks."""
    v = s.view
    if v is None or not (v.cheeks[0].any() and v.cheeks[1].any()):
        return None
    cheek = float(np.median(v.lum[v.cheeks[0] | v.cheeks[1]]))
    a, b = eye_boxes(v)
    ratio = min(float(np.median(v.lum[m])) for m in (a, b) if m.any()) / max(cheek, 1.0)
    return warning("tinted_glasses", ratio >= t.TINT_RATIO_MIN, round(ratio, 3), t.TINT_RATIO_MIN)


def check_sharpness(s: Scene) -> CheckResult | None:
    v = s.view
    if v is None or not v.oval.any():
        return None
    # Normalised to a mid-grey face: a dark photo has less contrast, not less focus.
    gain = 128.0 / max(float(v.lum[v.oval].mean()), 1.0)
    score = laplacian_var(v.lum, v.oval & ~_outer_rim(v)) * gain**2
    return result("sharpness", score >= t.SHARPNESS_MIN, round(score, 1), t.SHARPNESS_MIN)


def _outer_rim(v: FaceView) -> Arr:
    """The oval's outline touches hair and background; leave it out of the face's own detail."""
    inner = np.zeros_like(v.oval)
    inner[3:-3, 3:-3] = v.oval[:-6, 3:-3] & v.oval[6:, 3:-3] & v.oval[3:-3, :-6] & v.oval[3:-3, 6:]
    return v.oval & ~inner


def check_beautified(s: Scene) -> CheckResult | None:
    """#25 (heuristic, warning): skin far smoother than the eyes beside it, and no camera EXIF.

    Beauty filters flatten skin texture but keep eyes and brows crisp; an out-of-focus photo
    softens both, so the ratio tells smoothing from blur.
    """
    v = s.view
    if v is None or not v.skin.any():
        return None
    a, b = eye_boxes(v)
    ratio = laplacian_var(v.lum, v.skin) / max(laplacian_var(v.lum, a | b), 1e-6)
    suspicious = ratio < t.BEAUTY_RATIO_MAX and not s.camera_exif
    return warning("beautified", not suspicious, round(ratio, 4), t.BEAUTY_RATIO_MAX)


CHECKS: tuple[Check, ...] = (
    check_exposure, check_highlights, check_lighting, check_glasses_glare, check_tinted_glasses,
    check_sharpness, check_beautified,
)
