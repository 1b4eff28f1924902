"""Spec geometry: measure a photo in the profile's frame, and plan the crop that the auto-fix makes.

All spec numbers are in the 480×640 reference frame (profiles.Geometry) and are scaled to the
profile's output size. The crop is axis-aligned and never leaves the source: the spec forbids
rotation, and padding with a fill colour would be a repaint.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from bot.services.photos.measure import FaceGeometry
from bot.services.photos.profiles import REF_H, REF_W, Geometry

# The crown must land this far inside its range, so the re-check is not decided by a pixel.
CROWN_MARGIN = 5.0
FACE_STEPS = (0, -10, 10, -20, 20, -30, 30, -40, 40, -50, 50)
EYE_STEPS = (0, -10, 10, -20, 20, -30, 30, -40, 40)


@dataclass(frozen=True, slots=True)
class Placement:
    """Where the head sits, in reference-frame pixels (480×640)."""

    head_top: float
    eye_line: float
    face_width: float
    centre_offset: float

    def problems(self, g: Geometry) -> list[str]:
        out = []
        if not g.head_top[0] <= self.head_top <= g.head_top[1]:
            out.append("head_top")
        if not g.eye_line[0] <= self.eye_line <= g.eye_line[1]:
            out.append("eye_line")
        if not g.face_width[0] <= self.face_width <= g.face_width[1]:
            out.append("face_width")
        if abs(self.centre_offset) > g.centre_tolerance:
            out.append("centre")
        return out

    def as_dict(self) -> dict[str, float]:
        return {"head_top": round(self.head_top, 1), "eye_line": round(self.eye_line, 1),
                "face_width": round(self.face_width, 1), "centre_offset": round(self.centre_offset, 1)}


def placement(geo: FaceGeometry, width: float, height: float) -> Placement:
    """The head's placement in an image of ``width``×``height``, mapped onto the reference frame."""
    sx, sy = REF_W / width, REF_H / height
    ex, ey = geo.eye_mid
    return Placement(geo.crown * sy, ey * sy, geo.width * sx, (ex - width / 2) * sx)


@dataclass(frozen=True, slots=True)
class CropPlan:
    left: float
    top: float
    right: float
    bottom: float
    scale: float  # output pixels per analysis pixel
    expected: Placement  # what the output should measure

    @property
    def box(self) -> tuple[float, float, float, float]:
        return self.left, self.top, self.right, self.bottom


def plan_crop(geo: FaceGeometry, size: tuple[int, int], out: tuple[int, int], g: Geometry,
              max_face: float = float("inf")) -> CropPlan | str:
    """The crop nearest the targets that meets every range, or why none exists.

    ``max_face`` is the source's face width in reference pixels: face sizes above it would upscale,
    so they are tried only after every size that does not.
    """
    reasons: set[str] = set()
    targets = [(g.face_target + df, g.eye_target + de) for df, de in itertools.product(FACE_STEPS, EYE_STEPS)]
    targets += _keep_scale(geo, size, out, max_face)
    for face_t, eye_t in sorted(targets, key=lambda p: _cost(p, g, max_face)):
        if not (g.face_width[0] <= face_t <= g.face_width[1] and g.eye_line[0] <= eye_t <= g.eye_line[1]):
            continue
        plan = _candidate(geo, size, out, face_t, eye_t, g)
        problem = _reject(plan, size, g)
        if not problem:
            return plan
        reasons.add(problem)
    return _main_reason(reasons, geo, size)


def _cost(target: tuple[float, float], g: Geometry, max_face: float) -> tuple[bool, float]:
    face_t, eye_t = target
    return face_t > max_face + 1, abs(face_t - g.face_target) / 60 + abs(eye_t - g.eye_target) / 50


def _keep_scale(geo: FaceGeometry, size: tuple[int, int], out: tuple[int, int],
                max_face: float) -> list[tuple[float, float]]:
    """The no-resampling candidate: a photo already at the output size keeps its face and eye line."""
    if not max_face < float("inf"):
        return []
    s = max_face * (out[0] / REF_W) / max(geo.width, 1e-6)
    return [(max_face, geo.eye_mid[1] * s * REF_H / out[1])]


def _candidate(geo: FaceGeometry, size: tuple[int, int], out: tuple[int, int],
               face_t: float, eye_t: float, g: Geometry) -> CropPlan:
    w_out, h_out = out
    s = face_t * (w_out / REF_W) / max(geo.width, 1e-6)
    ex, ey = geo.eye_mid
    left, top = ex - w_out / (2 * s), ey - eye_t * (h_out / REF_H) / s
    # A box that overhangs one side slightly may slide in, off-centre by at most half the tolerance.
    slack = g.centre_tolerance / 2 * (w_out / REF_W) / s
    shift = min(max(0.0, -left), slack) - min(max(0.0, left + w_out / s - size[0]), slack)
    left += shift
    right, bottom = left + w_out / s, top + h_out / s
    crown = (geo.crown - top) * s * REF_H / h_out
    offset = -shift * s * REF_W / w_out
    return CropPlan(left, top, right, bottom, s, Placement(crown, eye_t, face_t, offset))


def _reject(plan: CropPlan, size: tuple[int, int], g: Geometry) -> str:
    crown = plan.expected.head_top
    if crown < g.head_top[0] + CROWN_MARGIN:
        return "headroom"
    if crown > g.head_top[1] - CROWN_MARGIN:
        return "too_much_headroom"
    if plan.top < 0:
        return "top"
    if plan.left < -1e-6 or plan.right > size[0] + 1e-6:
        return "sides"
    if plan.bottom > size[1]:
        return "bottom"
    return ""


def _main_reason(reasons: set[str], geo: FaceGeometry, size: tuple[int, int]) -> str:
    if geo.crown <= 1:
        return "head_cut"
    for reason in ("sides", "bottom", "top", "headroom", "too_much_headroom"):
        if reason in reasons:
            return reason
    return "no_crop"
