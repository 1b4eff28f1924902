"""Bytes to an upright sRGB working image, with every guard a hostile or odd upload needs.

JPEGs are decoded in draft mode (DCT scaling), so a 12 MP phone photo costs a 1/2 or 1/4 decode.
Pixel count and byte size are capped before any pixel is decoded.
"""

from __future__ import annotations

import functools
import io
import logging
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

log = logging.getLogger("gradbot.photos")

MAX_BYTES = 20 * 1024 * 1024
# 64 MP covers 50 MP phone sensors; the 30000×30000 bomb (900 MP) is refused from its header alone.
MAX_PIXELS = 64_000_000
# Draft-decode JPEGs down to the smallest DCT scale whose short side is still at least this.
WORK_SIDE = 1000
# Pillow's own bomb guard, aligned with ours so it never fires first with a warning.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
ANIMATED_FORMATS = {"GIF", "PNG", "WEBP"}
HEIF_BRANDS = (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftypmsf1", b"ftyphevc", b"ftypavif")
EXIF_SOFTWARE, EXIF_MAKE, EXIF_MODEL, EXIF_ORIENTATION = 0x0131, 0x010F, 0x0110, 0x0112
EXIF_IFD, EXIF_LENS_MODEL = 0x8769, 0xA434


def _register_heif() -> bool:
    try:
        import pillow_heif
    except ImportError:  # pragma: no cover - pillow-heif is a declared dependency
        return False
    pillow_heif.register_heif_opener()
    return True


HEIF_OK = _register_heif()


class PhotoInputError(Exception):
    """The upload cannot be analysed at all; ``code`` picks the student-facing explanation."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Decoded:
    image: Image.Image  # RGB, upright, sRGB, at working resolution
    scale: float  # working pixels per source pixel
    source_size: tuple[int, int]  # upright, full resolution
    format: str
    mode: str  # the file's own mode: RGB, L, CMYK, I;16, P …
    n_bytes: int
    dpi: tuple[float, float] | None
    quality: int | None
    orientation: int
    exif: dict[str, str] = field(default_factory=dict)


def decode(data: bytes, *, max_bytes: int = MAX_BYTES, work_side: int = WORK_SIDE) -> Decoded:
    if len(data) > max_bytes:
        raise PhotoInputError("too_large", f"{len(data)} bytes > {max_bytes}")
    if not data:
        raise PhotoInputError("not_image", "empty")
    im = _open(data)
    fmt, mode = str(im.format or "?"), im.mode
    meta = _metadata(im)
    size = im.size
    if fmt == "JPEG":
        im.draft("RGB" if mode == "RGB" else None, (work_side, work_side))
    _load(im)
    scale = im.size[0] / size[0]
    orientation = int(meta.pop("orientation", "1") or 1)
    upright = ImageOps.exif_transpose(im) if orientation in range(2, 9) else im
    source = (size[1], size[0]) if orientation in (5, 6, 7, 8) else size
    return Decoded(image=_to_srgb(upright), scale=scale, source_size=source, format=fmt, mode=mode,
                   n_bytes=len(data), dpi=_dpi(im), quality=estimate_quality(im),
                   orientation=orientation, exif=meta)


def _open(data: bytes) -> Image.Image:
    try:
        im = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise PhotoInputError("too_many_pixels", str(exc)) from exc
    except UnidentifiedImageError as exc:
        heif = data[4:12] in HEIF_BRANDS
        raise PhotoInputError("heic" if heif else "not_image", str(exc)) from exc
    except Exception as exc:  # Pillow raises many types on hostile headers; all mean "not an image"
        raise PhotoInputError("not_image", f"{type(exc).__name__}: {exc}") from exc
    w, h = im.size
    if w * h > MAX_PIXELS:
        raise PhotoInputError("too_many_pixels", f"{w}×{h}")
    if w < 8 or h < 8:
        raise PhotoInputError("too_small", f"{w}×{h}")
    if im.format in ANIMATED_FORMATS and getattr(im, "is_animated", False):
        raise PhotoInputError("animated", f"{im.format} with {getattr(im, 'n_frames', '?')} frames")
    return im


def _load(im: Image.Image) -> None:
    try:
        im.load()
    except OSError as exc:
        code = "truncated" if "truncated" in str(exc) or "broken data" in str(exc) else "not_image"
        raise PhotoInputError(code, str(exc)) from exc
    except Exception as exc:  # a corrupt stream can fail in any decoder with any type
        raise PhotoInputError("not_image", f"{type(exc).__name__}: {exc}") from exc


def _metadata(im: Image.Image) -> dict[str, str]:
    try:
        exif = im.getexif()
        sub = exif.get_ifd(EXIF_IFD)
    except Exception as exc:  # broken EXIF must not sink a good picture
        log.info("unreadable EXIF ignored: %s", type(exc).__name__)
        return {}
    tags = {"orientation": exif.get(EXIF_ORIENTATION), "software": exif.get(EXIF_SOFTWARE),
            "make": exif.get(EXIF_MAKE), "model": exif.get(EXIF_MODEL), "lens": sub.get(EXIF_LENS_MODEL)}
    return {k: _clip(v) for k, v in tags.items() if v is not None}


def _clip(value: object) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return text.strip("\x00 ")[:80]


def _dpi(im: Image.Image) -> tuple[float, float] | None:
    dpi = im.info.get("dpi")
    try:
        return (float(dpi[0]), float(dpi[1])) if dpi else None
    except (TypeError, ValueError, IndexError):
        return None


# IJG standard luminance table (ITU T.81 Annex K), row-major, the order Pillow reports tables in.
_STD_LUMA = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99], dtype=np.float64)


def estimate_quality(im: Image.Image) -> int | None:
    """IJG quality factor that would give the file's luminance table (exact for libjpeg encoders)."""
    tables = getattr(im, "quantization", None)
    if not tables or 0 not in tables or len(tables[0]) != 64:
        return None
    scale = float(np.mean(np.asarray(tables[0], dtype=np.float64) / _STD_LUMA) * 100)
    quality = 5000 / scale if scale > 100 else (200 - scale) / 2
    return max(1, min(100, round(quality)))


def _to_srgb(im: Image.Image) -> Image.Image:
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(im, dtype=np.float64)
        im = Image.fromarray(np.clip(arr / max(arr.max(), 1) * 255, 0, 255).astype(np.uint8))
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, rgba)
    icc = im.info.get("icc_profile")
    if icc and im.mode in ("RGB", "CMYK"):
        converted = _icc_to_srgb(im, bytes(icc))
        if converted is not None:
            return converted
    return im.convert("RGB") if im.mode != "RGB" else im


def _icc_to_srgb(im: Image.Image, icc: bytes) -> Image.Image | None:
    try:
        transform = _transform(icc, im.mode)
        return ImageCms.applyTransform(im, transform) if transform is not None else None
    except (ImageCms.PyCMSError, OSError, ValueError) as exc:
        log.info("ICC profile ignored: %s", exc)
        return None


@functools.lru_cache(maxsize=8)
def _transform(icc: bytes, mode: str) -> ImageCms.ImageCmsTransform | None:
    """Building a transform costs ~14 ms; phones reuse a handful of profiles, so cache them."""
    source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    desc = (ImageCms.getProfileDescription(source) or "").lower()
    if mode == "RGB" and "srgb" in desc:
        return None
    return ImageCms.buildTransform(source, ImageCms.createProfile("sRGB"), mode, "RGB")
