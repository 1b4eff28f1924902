"""Checks that need one face's landmarks: presence, resolution, pose, framing, geometry, eyes, mouth."""

from __future__ import annotations

import numpy as np

from bot.services.photos import thresholds as t
from bot.services.photos.measure import CHEEK_A, CHEEK_B, CHIN, NOSE_TIP, Arr, dist, luma
from bot.services.photos.profiles import REF_W
from bot.services.photos.report import CheckResult, Severity
from bot.services.photos.scene import Check, Scene, result


def check_one_face(s: Scene) -> CheckResult:
    n = len(s.faces)
    return result("one_face", n == 1, n, 1, hint="none" if n == 0 else "many" if n > 1 else "")


def check_resolution(s: Scene) -> CheckResult | None:
    """#2: cheek width in source pixels. Below the spec's minimum face width the output would be
    upscaled into the range; below the fix's target it is upscaled a little (warning) unless the
    photo already has the profile's size and geometry and needs no rescale."""
    if s.geo is None or s.placement is None:
        return None
    g, unit = s.profile.geometry, s.profile.fix_size[0] / REF_W
    width = s.geo.width * s.source_per_px
    ok_at, min_at = g.face_target * unit, g.face_width[0] * unit
    measured = {"face_px": round(width), "image": list(s.decoded.source_size)}
    if width >= ok_at or (_at_profile_size(s) and not s.placement.problems(g)):
        return result("resolution", True, measured, round(ok_at))
    severity = Severity.ERROR if width < min_at else Severity.WARNING
    return result("resolution", False, measured, round(ok_at), severity=severity,
                  hint="low" if severity is Severity.ERROR else "upscale")


def _at_profile_size(s: Scene) -> bool:
    w, h = s.decoded.source_size
    p = s.profile
    return p.width[0] <= w <= p.width[1] and p.height[0] <= h <= p.height[1]


def check_roll(s: Scene) -> CheckResult | None:
    if s.geo is None:
        return None
    roll = s.geo.roll
    hint = "sideways" if abs(roll) > 45 else "tilt"
    return result("roll", abs(roll) <= t.ROLL_MAX, round(roll, 1), t.ROLL_MAX, hint=hint)


def check_pose(s: Scene) -> CheckResult | None:
    """#7: nose tip against the cheek midpoint, measured along and across the eye line."""
    face, geo = s.face, s.geo
    if face is None or geo is None:
        return None
    axis = np.subtract(geo.eye_b, geo.eye_a)
    axis = axis / max(float(np.hypot(*axis)), 1e-6)
    normal = np.array([-axis[1], axis[0]])
    mid = (np.add(face.p(CHEEK_A), face.p(CHEEK_B))) / 2
    nose, eyes, chin = np.array(face.p(NOSE_TIP)), np.array(geo.eye_mid), np.array(face.p(CHIN))
    yaw = float(np.dot(nose - mid, axis)) / max(geo.width, 1e-6)
    pitch = float(np.dot(nose - eyes, normal)) / max(float(np.dot(chin - eyes, normal)), 1e-6)
    low, high = t.PITCH_RANGE
    hint = "yaw" if abs(yaw) > t.YAW_MAX else "down" if pitch > high else "up" if pitch < low else ""
    return result("pose", not hint, {"yaw": round(yaw, 3), "pitch": round(pitch, 3)},
                  {"yaw": t.YAW_MAX, "pitch": list(t.PITCH_RANGE)}, hint=hint)


def check_framing(s: Scene) -> CheckResult | None:
    """#8: a crop meeting every geometry range must fit inside the photo (no padding allowed)."""
    if s.geo is None:
        return None
    reason = "" if s.plan is not None else str(s.plan_or_reason)
    return result("framing", not reason, reason or "crop fits", "crop fits", hint=reason)


def check_geometry(s: Scene) -> CheckResult | None:
    """#9: head top, eye line, face width and centring of the photo as sent, in the 480×640 frame."""
    if s.placement is None:
        return None
    g = s.profile.geometry
    problems = s.placement.problems(g)
    expected = {"head_top": list(g.head_top), "eye_line": list(g.eye_line),
                "face_width": list(g.face_width), "centre_offset": g.centre_tolerance}
    return result("geometry", not problems, s.placement.as_dict(), expected, hint=",".join(problems))


def check_eyes_open(s: Scene) -> CheckResult | None:
    face = s.face
    if face is None:
        return None
    ratios = (dist(face, 159, 145) / max(dist(face, 33, 133), 1e-6),
              dist(face, 386, 374) / max(dist(face, 362, 263), 1e-6))
    low = min(ratios)
    return result("eyes_open", low >= t.EYES_OPEN_MIN, round(low, 3), t.EYES_OPEN_MIN)


def check_mouth_closed(s: Scene) -> CheckResult | None:
    face, view = s.face, s.view
    if face is None or view is None:
        return None
    gap = dist(face, 13, 14) / max(dist(face, 61, 291), 1e-6)
    teeth = teeth_share(view.rgb, view.mouth_inner, view.skin)
    ok = gap <= t.MOUTH_GAP_MAX and teeth <= t.TEETH_MAX
    return result("mouth_closed", ok, {"gap": round(gap, 3), "teeth": round(teeth, 3)},
                  {"gap": t.MOUTH_GAP_MAX, "teeth": t.TEETH_MAX}, hint="teeth" if teeth > t.TEETH_MAX else "")


def teeth_share(rgb: Arr, inner: Arr, skin: Arr) -> float:
    """Share of the inner-lip area that is bright and unsaturated (teeth), relative to the skin."""
    if inner.sum() < 4 or not skin.any():
        return 0.0
    px = rgb[inner].astype(np.float32)
    hi, lo = px.max(axis=1), px.min(axis=1)
    sat = (hi - lo) / np.maximum(hi, 1)
    bright = luma(px) >= 0.85 * float(np.median(luma(rgb[skin][::4].astype(np.float32))))
    return float(np.mean(bright & (sat < 0.35)))


CHECKS: tuple[Check, ...] = (
    check_one_face, check_resolution, check_roll, check_pose, check_framing, check_geometry,
    check_eyes_open, check_mouth_closed,
)
