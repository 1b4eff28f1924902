"""The auto-fix: crop, scale and re-encode only. No rotation, mirroring, retouching or fill padding.

The crop box comes from geometry.plan_crop (in analysis pixels); the pixels come from the largest
decode available, so a draft-decoded phone photo is re-decoded in full only when the draft is too
small for the output.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image

from bot.services.photos.decode import Decoded, decode
from bot.services.photos.geometry import CropPlan
from bot.services.photos.profiles import PhotoProfile

DEFAULT_DPI = 300
QUALITY_MAX = 100


@dataclass(frozen=True, slots=True)
class Encoded:
    data: bytes
    quality: int
    subsampling: str
    in_range: bool


def crop_and_scale(data: bytes, decoded: Decoded, k: float, plan: CropPlan, size: tuple[int, int]) -> Image.Image:
    """Resample the planned box to ``size`` from the best available pixels: an integer box
    reduction down to about twice the output, then one LANCZOS step (measured: 4× faster than
    LANCZOS from the draft, same output within JPEG noise)."""
    box = tuple(v / k for v in plan.box)  # working-image pixels
    image, factor = decoded.image, 1.0
    if (box[2] - box[0]) < size[0] and decoded.scale < 1.0:
        full = decode(data, work_side=1 << 30)
        image, factor = full.image, 1.0 / decoded.scale
    x0, y0, x1, y1 = (v * factor for v in box)
    left, top = max(0, int(x0)), max(0, int(y0))
    region = image.crop((left, top, min(image.width, int(x1) + 1), min(image.height, int(y1) + 1)))
    n = max(1, int((x1 - x0) / (2 * size[0])))
    if n > 1:
        region = region.reduce(n)
    rel = ((x0 - left) / n, (y0 - top) / n, (x1 - left) / n, (y1 - top) / n)
    return region.resize(size, Image.Resampling.LANCZOS, box=rel)


def encode_jpeg(image: Image.Image, profile: PhotoProfile) -> Encoded:
    """Baseline JPEG at the profile's DPI, no EXIF or ICC, quality searched into the byte range."""
    low, high = profile.byte_range
    floor = max(profile.min_quality, 1)
    best = _search(image, profile, floor, high, 2)
    if len(best.data) < low:
        # 4:4:4 stores chroma at full resolution: the only honest way to a larger file. Never pad bytes.
        fuller = _search(image, profile, floor, high, 0)
        if len(fuller.data) > len(best.data):
            best = fuller
    return Encoded(best.data, best.quality, best.subsampling, low <= len(best.data) <= high)


def _search(image: Image.Image, profile: PhotoProfile, floor: int, high: int, subsampling: int) -> Encoded:
    """Highest quality whose file fits under ``high`` (size grows with quality), by bisection."""
    lo, hi = floor, QUALITY_MAX
    best = _encode(image, profile, floor, subsampling)
    if len(best.data) > high:
        return best
    while lo < hi:
        mid = (lo + hi + 1) // 2
        trial = _encode(image, profile, mid, subsampling)
        if len(trial.data) <= high:
            lo, best = mid, trial
        else:
            hi = mid - 1
    return best


def _encode(image: Image.Image, profile: PhotoProfile, quality: int, subsampling: int) -> Encoded:
    buf = io.BytesIO()
    dpi = profile.dpi or DEFAULT_DPI
    image.save(buf, "JPEG", quality=quality, subsampling=subsampling, dpi=(dpi, dpi), optimize=False)
    return Encoded(buf.getvalue(), quality, "4:2:0" if subsampling == 2 else "4:4:4", False)
