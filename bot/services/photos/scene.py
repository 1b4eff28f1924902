"""Everything the checks read about one photo: the decoded image, the analysis copy, faces, mask, crop."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
from PIL import Image

from bot.services.photos.decode import Decoded
from bot.services.photos.face import Face, FaceEngine, FloatArray, ImageArray
from bot.services.photos.geometry import CropPlan, Placement, placement, plan_crop
from bot.services.photos.measure import FaceGeometry, FaceView, face_geometry, face_view
from bot.services.photos.profiles import REF_W, PhotoProfile
from bot.services.photos.report import CheckResult, Measured, Severity

# Landmarks and masks are computed on a copy whose long side is at most this.
ANALYSIS_SIDE = 1024


@dataclass(eq=False)
class Scene:
    decoded: Decoded
    profile: PhotoProfile
    rgb: ImageArray
    k: float  # analysis pixels per working pixel
    faces: list[Face]
    mask: FloatArray | None
    # Intermediate results several checks share (background statistics, thumbnails), by name.
    memo: dict[str, Any] = field(default_factory=dict)

    @property
    def face(self) -> Face | None:
        return self.faces[0] if len(self.faces) == 1 else None

    @property
    def size(self) -> tuple[int, int]:
        return self.rgb.shape[1], self.rgb.shape[0]

    @property
    def source_per_px(self) -> float:
        """Source (full-resolution) pixels per analysis pixel."""
        return 1.0 / (self.decoded.scale * self.k)

    @cached_property
    def geo(self) -> FaceGeometry | None:
        return face_geometry(self.face, self.mask) if self.face is not None else None

    @cached_property
    def view(self) -> FaceView | None:
        return face_view(self.rgb, self.face) if self.face is not None else None

    @cached_property
    def placement(self) -> Placement | None:
        return placement(self.geo, *self.size) if self.geo is not None else None

    @cached_property
    def plan_or_reason(self) -> CropPlan | str:
        if self.geo is None:
            return "no_face"
        out = self.profile.fix_size
        max_face = self.geo.width * self.source_per_px * REF_W / out[0]
        return plan_crop(self.geo, self.size, out, self.profile.geometry, max_face)

    @property
    def plan(self) -> CropPlan | None:
        plan = self.plan_or_reason
        return plan if isinstance(plan, CropPlan) else None

    def final_region(self) -> tuple[slice, slice]:
        """Rows and columns that end up in the photo: the planned crop, else the whole image."""
        if self.plan is None:
            return slice(None), slice(None)
        x0, y0, x1, y1 = (round(v) for v in self.plan.box)
        return slice(max(0, y0), y1), slice(max(0, x0), x1)

    @property
    def camera_exif(self) -> bool:
        return bool(self.decoded.exif.get("make") or self.decoded.exif.get("model"))


def build_scene(decoded: Decoded, profile: PhotoProfile, engine: FaceEngine) -> Scene:
    image = decoded.image
    factor = -(-max(image.size) // ANALYSIS_SIDE)
    small = image.reduce(factor) if factor > 1 else image
    rgb = np.asarray(small, dtype=np.uint8)
    faces = engine.faces(rgb)
    mask = engine.person_mask(rgb) if faces else None
    return Scene(decoded, profile, rgb, small.size[0] / image.size[0], faces, mask)


def result(check_id: str, ok: bool, measured: Measured = None, expected: Measured = None, *,
           hint: str = "", severity: Severity = Severity.ERROR) -> CheckResult:
    return CheckResult(check_id, bool(ok), severity, measured, expected, hint)


def warning(check_id: str, ok: bool, measured: Measured = None, expected: Measured = None, *,
            hint: str = "") -> CheckResult:
    return result(check_id, ok, measured, expected, hint=hint, severity=Severity.WARNING)


def thumbnail(scene: Scene, side: int = 256) -> ImageArray:
    key = f"thumbnail{side}"
    if key not in scene.memo:
        im = Image.fromarray(scene.rgb)
        factor = max(1, max(im.size) // side)
        scene.memo[key] = np.asarray(im.reduce(factor) if factor > 1 else im)
    out: ImageArray = scene.memo[key]
    return out


Check = Callable[[Scene], CheckResult | None]
