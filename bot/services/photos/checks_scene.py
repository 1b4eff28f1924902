"""Checks around the face: background colour and evenness, clothing contrast, head covering, hair."""

from __future__ import annotations

import numpy as np

from bot.services.photos import thresholds as t
from bot.services.photos.measure import (
    CHEEK_A,
    CHEEK_B,
    CHIN,
    FOREHEAD,
    NOSE_TIP,
    Arr,
    box,
    delta_e,
    srgb_to_lab,
    window,
)
from bot.services.photos.report import CheckResult
from bot.services.photos.scene import Check, Scene, result, warning

SAMPLE_SIDE = 160  # background statistics run on a subsample this size (~19k pixels at 3:4)


def _region(s: Scene) -> tuple[Arr, Arr]:
    """RGB and person mask of the area that will be the final photo, subsampled."""
    rows, cols = s.final_region()
    rgb, mask = s.rgb[rows, cols], s.mask[rows, cols] if s.mask is not None else None
    step = max(1, max(rgb.shape[:2]) // SAMPLE_SIDE)
    rgb = rgb[::step, ::step]
    mask = mask[::step, ::step] if mask is not None else np.zeros(rgb.shape[:2], np.float32)
    return rgb, mask


def _background(s: Scene) -> tuple[Arr, Arr] | None:
    """Lab image of the region and its eroded background mask, or None with too little background."""
    if "background" not in s.memo:
        s.memo["background"] = _measure_background(s)
    found: tuple[Arr, Arr] | None = s.memo["background"]
    return found


def _measure_background(s: Scene) -> tuple[Arr, Arr] | None:
    rgb, mask = _region(s)
    bg = mask < 0.1
    for _ in range(2):  # erode: hair fringes carry the person's colours into the mask's soft edge
        bg[1:-1, 1:-1] &= bg[:-2, 1:-1] & bg[2:, 1:-1] & bg[1:-1, :-2] & bg[1:-1, 2:]
    if bg.mean() < t.BACKGROUND_MIN_SHARE:
        return None
    return srgb_to_lab(rgb), bg


def check_background_colour(s: Scene) -> CheckResult | None:
    found = _background(s) if s.face is not None else None
    if found is None:
        return None
    lab, bg = found
    median = np.median(lab[bg], axis=0)
    colours = s.profile.background_colours()
    distances = {name: float(delta_e(median, srgb_to_lab(rgb))) for name, rgb in colours.items()}
    nearest = min(distances, key=lambda k: distances[k])
    rgb_median = [round(float(v)) for v in np.median(_region(s)[0][bg], axis=0)]
    return result("background_colour", distances[nearest] <= t.BACKGROUND_DELTA_E,
                  {"rgb": rgb_median, "nearest": nearest, "delta_e": round(distances[nearest], 1)},
                  {"colours": list(colours), "delta_e": t.BACKGROUND_DELTA_E})


def check_background_uniform(s: Scene) -> CheckResult | None:
    found = _background(s) if s.face is not None else None
    if found is None:
        return None
    lab, bg = found
    median = np.median(lab[bg], axis=0)
    share = float(np.mean(delta_e(lab[bg], median) <= t.UNIFORM_DELTA_E))
    sides = _side_spread(lab, bg)
    hint = "clutter" if share < t.UNIFORM_SHARE_MIN else "shadow" if sides > t.SIDE_DELTA_E_MAX else ""
    return result("background_uniform", not hint, {"share": round(share, 3), "sides": round(sides, 1)},
                  {"share": t.UNIFORM_SHARE_MIN, "sides": t.SIDE_DELTA_E_MAX}, hint=hint)


def _side_spread(lab: Arr, bg: Arr) -> float:
    h, w = bg.shape
    parts = [(slice(None), slice(0, w // 4)), (slice(None), slice(w - w // 4, w)), (slice(0, h // 6), slice(None))]
    medians = [np.median(lab[r, c][bg[r, c]], axis=0) for r, c in parts if bg[r, c].sum() >= 20]
    if len(medians) < 2:
        return 0.0
    return max(float(delta_e(a, b)) for i, a in enumerate(medians) for b in medians[i + 1:])


def check_clothing(s: Scene) -> CheckResult | None:
    """#12: the shirt must stand out from the background (segmentation finds both)."""
    found = _background(s) if s.face is not None else None
    if found is None or s.face is None:
        return None
    lab, bg = found
    rgb, mask = _region(s)
    shirt = _shirt_box(s, rgb.shape) & (mask > 0.8)
    if shirt.sum() < 30:
        return None
    d = float(delta_e(np.median(lab[shirt], axis=0), np.median(lab[bg], axis=0)))
    return result("clothing", d >= t.CLOTHING_DELTA_E_MIN, round(d, 1), t.CLOTHING_DELTA_E_MIN)


def _shirt_box(s: Scene, shape: tuple[int, ...]) -> Arr:
    """Below the chin by a quarter face, across the face's width, in region-subsample coordinates."""
    assert s.face is not None
    rows, cols = s.final_region()
    y0, x0 = rows.start or 0, cols.start or 0
    step = max(1, max(s.rgb[rows, cols].shape[:2]) // SAMPLE_SIDE)
    top, chin = s.face.p(FOREHEAD)[1], s.face.p(CHIN)[1]
    xa, xb = sorted((s.face.p(CHEEK_A)[0], s.face.p(CHEEK_B)[0]))
    y = chin + 0.35 * (chin - top)
    return box(shape, (xa - x0) / step, (y - y0) / step, (xb - x0) / step, shape[0])


def check_head_covering(s: Scene) -> CheckResult | None:
    """#23 (heuristic, warning): something tall or differently coloured sits on the head."""
    face, geo = s.face, s.geo
    if face is None or geo is None or s.mask is None:
        return None
    top, chin = face.p(FOREHEAD)[1], face.p(CHIN)[1]
    ratio = (top - geo.crown) / max(chin - top, 1e-6)
    jump = _crown_colour_jump(s, top, chin)
    ok = ratio <= t.HEAD_COVER_RATIO and jump <= t.HEAD_COVER_DELTA_E
    return warning("head_covering", ok, {"height": round(ratio, 3), "delta_e": round(jump, 1)},
                   {"height": t.HEAD_COVER_RATIO, "delta_e": t.HEAD_COVER_DELTA_E})


def _crown_colour_jump(s: Scene, top: float, chin: float) -> float:
    assert s.face is not None and s.geo is not None and s.mask is not None
    fh = chin - top
    xa, xb = sorted((s.face.p(CHEEK_A)[0], s.face.p(CHEEK_B)[0]))
    q = (xb - xa) / 4
    boxes = ((xa + q, s.geo.crown, xb - q, s.geo.crown + 0.12 * fh), (xa + q, top - 0.12 * fh, xb - q, top - 0.02 * fh))
    parts = [window(s.rgb, *b)[window(s.mask, *b) > 0.5] for b in boxes]
    if min(len(p) for p in parts) < 10:
        return 0.0
    lab = [srgb_to_lab(np.median(p, axis=0)) for p in parts]
    return float(delta_e(lab[0], lab[1]))


def check_hair_cover(s: Scene) -> CheckResult | None:
    """#24 (heuristic, warning): skin must show above the brows and where the ears are."""
    face, geo = s.face, s.geo
    if face is None or geo is None:
        return None
    skin = srgb_to_lab(np.median(window(s.rgb, *_cheek_box(s)).reshape(-1, 3), axis=0))
    shares = {name: _skin_share(s, b, skin) for name, b in _hair_boxes(s).items()}
    low = [name for name, v in shares.items() if v < t.HAIR_SKIN_SHARE_MIN]
    return warning("hair_cover", not low, {k: round(v, 2) for k, v in shares.items()},
                   t.HAIR_SKIN_SHARE_MIN, hint=",".join(low))


def _cheek_box(s: Scene) -> tuple[float, float, float, float]:
    assert s.face is not None
    x, y = s.face.p(205)
    r = 0.06 * s.geo.width if s.geo else 4
    return x - r, y - r, x + r, y + r


def _hair_boxes(s: Scene) -> dict[str, tuple[float, float, float, float]]:
    assert s.face is not None and s.geo is not None
    w = s.geo.width
    brow_y = min(s.face.p(105)[1], s.face.p(334)[1])
    bx = sorted((s.face.p(105)[0], s.face.p(334)[0]))
    eye_y, nose_y = s.geo.eye_mid[1], s.face.p(NOSE_TIP)[1]
    xa, xb = sorted((s.face.p(CHEEK_A)[0], s.face.p(CHEEK_B)[0]))
    return {"brows": (bx[0], brow_y - 0.1 * w, bx[1], brow_y - 0.03 * w),
            "ear_left": (xa - 0.14 * w, eye_y, xa - 0.02 * w, nose_y),
            "ear_right": (xb + 0.02 * w, eye_y, xb + 0.14 * w, nose_y)}


def _skin_share(s: Scene, b: tuple[float, float, float, float], skin: Arr) -> float:
    px = window(s.rgb, *b).reshape(-1, 3)
    if len(px) < 6:
        return 1.0  # outside the photo: the framing check speaks for that
    return float(np.mean(delta_e(srgb_to_lab(px), skin) < 20))


CHECKS: tuple[Check, ...] = (
    check_background_colour, check_background_uniform, check_clothing, check_head_covering, check_hair_cover,
)
