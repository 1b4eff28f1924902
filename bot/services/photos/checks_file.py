"""Checks on the file and its pixels that need no face: the profile's rules, metadata, colour, borders."""

from __future__ import annotations

import numpy as np

from bot.services.photos import thresholds as t
from bot.services.photos.measure import Arr, delta_e, luma, srgb_to_lab
from bot.services.photos.report import CheckResult
from bot.services.photos.scene import Check, Scene, result, thumbnail, warning


def check_format(s: Scene) -> CheckResult:
    fmt = s.decoded.format
    return result("format", fmt in s.profile.formats, fmt, list(s.profile.formats))


def check_pixel_size(s: Scene) -> CheckResult:
    w, h = s.decoded.source_size
    p = s.profile
    ok = p.width[0] <= w <= p.width[1] and p.height[0] <= h <= p.height[1]
    ratio = p.aspect_ratio
    if ratio is not None and abs(w / h - ratio) > 0.01:
        ok = False
    expected = {"width": list(p.width), "height": list(p.height), "aspect": p.aspect or None}
    return result("pixel_size", ok, [w, h], expected)


def check_file_size(s: Scene) -> CheckResult:
    low, high = s.profile.byte_range
    n = s.decoded.n_bytes
    hint = "small" if n < low else "large" if n > high else ""
    return result("file_size", low <= n <= high, round(n / 1024, 1), list(s.profile.kb), hint=hint)


def check_dpi(s: Scene) -> CheckResult | None:
    want = s.profile.dpi
    if not want:
        return None
    dpi = s.decoded.dpi
    ok = dpi is not None and round(dpi[0]) == want and round(dpi[1]) == want
    return result("dpi", ok, round(dpi[0]) if dpi else None, want)


def check_colour_mode(s: Scene) -> CheckResult:
    return result("colour_mode", s.decoded.mode == "RGB", s.decoded.mode, "RGB")


def check_jpeg_quality(s: Scene) -> CheckResult | None:
    q = s.decoded.quality
    if s.decoded.format != "JPEG" or q is None:
        return None
    return result("jpeg_quality", q >= s.profile.min_quality, q, s.profile.min_quality)


def check_compression(s: Scene) -> CheckResult:
    """#3: a recompressed or shrunk copy (e.g. sent without 原图) loses detail the checks need."""
    w, h = s.decoded.source_size
    p = s.profile
    at_size = p.width[0] <= w <= p.width[1] and p.height[0] <= h <= p.height[1]
    q = s.decoded.quality
    low_q = q is not None and q < t.COMPRESSION_QUALITY_WARN
    small = max(w, h) < t.COMPRESSION_SIDE_WARN
    bad = not at_size and (low_q or small)
    return warning("compression", not bad, {"quality": q, "long_side": max(w, h)},
                   {"quality": t.COMPRESSION_QUALITY_WARN, "long_side": t.COMPRESSION_SIDE_WARN})


def check_exif_edit(s: Scene) -> CheckResult:
    """#4: the EXIF Software tag names a beauty or editing app (WeChat often strips EXIF)."""
    software = s.decoded.exif.get("software", "")
    hit = next((name for name in t.EDIT_SOFTWARE if name in software.lower()), "")
    return warning("exif_edit", not hit, software or None, "camera original")


def check_selfie(s: Scene) -> CheckResult:
    """#27: front camera in EXIF. Mirroring itself cannot be seen without a reference photo."""
    lens = s.decoded.exif.get("lens", "")
    front = "front" in lens.lower() or "前置" in lens
    return warning("selfie", not front, lens or None, "rear camera, taken by someone else")


def check_colour(s: Scene) -> CheckResult:
    rgb = thumbnail(s, 384).astype(np.float32)
    high, low = rgb.max(axis=-1), rgb.min(axis=-1)
    sat = float(np.mean((high - low) / np.maximum(high, 1)) * 255)  # HSV saturation on a 0-255 scale
    return result("colour", sat > t.SATURATION_MIN, round(sat, 1), t.SATURATION_MIN)


def check_border(s: Scene) -> CheckResult:
    rgb = thumbnail(s, 384).astype(np.float32)
    sides = [name for name, strip in _strips(rgb) if _is_border(*strip)]
    return result("border", not sides, sides or None, [])


def _strips(rgb: Arr) -> list[tuple[str, tuple[Arr, Arr]]]:
    h, w = rgb.shape[:2]
    out = []
    for frac in (0.01, t.BORDER_STRIP):
        a, b = max(2, round(h * frac)), max(2, round(w * frac))
        out += [("top", (rgb[:a], rgb[a:2 * a])), ("bottom", (rgb[h - a:], rgb[h - 2 * a:h - a])),
                ("left", (rgb[:, :b], rgb[:, b:2 * b])), ("right", (rgb[:, w - b:], rgb[:, w - 2 * b:w - b]))]
    return out


def _is_border(edge: Arr, inner: Arr) -> bool:
    if float(luma(edge).std()) >= t.BORDER_FLAT_STD:
        return False
    a = srgb_to_lab(edge.reshape(-1, 3).mean(axis=0))
    b = srgb_to_lab(inner.reshape(-1, 3).mean(axis=0))
    return float(delta_e(a, b)) > t.BORDER_DELTA_E


def check_rephotographed(s: Scene) -> CheckResult:
    """#26: a screen's pixel grid or a print's halftone puts its energy into a few spectral peaks."""
    share = peak_share(s.rgb)
    return warning("rephotographed", share < t.MOIRE_PEAK_SHARE, round(share, 4), t.MOIRE_PEAK_SHARE)


def peak_share(rgb: Arr, size: int = 256, peaks: int = 8) -> float:
    """Share of the high-frequency power held by the strongest few bins of a centre patch.

    Bins on the JPEG block lattice (multiples of 1/8 cycle per pixel) are left out: every JPEG has them.
    """
    h, w = rgb.shape[:2]
    y0, x0 = max(0, (h - size) // 2), max(0, (w - size) // 2)
    patch = luma(rgb[y0:y0 + size, x0:x0 + size])
    n, m = patch.shape
    if min(n, m) < 32:
        return 0.0
    window = np.outer(np.hanning(n), np.hanning(m)).astype(np.float32)
    power = np.abs(np.fft.rfft2((patch - patch.mean()) * window)) ** 2
    fy, fx = np.abs(np.fft.fftfreq(n))[:, None], np.fft.rfftfreq(m)[None, :]
    keep = (np.hypot(fy, fx) > 0.1) & ~_on_block_lattice(fy, n) & ~_on_block_lattice(fx, m)
    values = np.sort(power[keep])
    total = float(values.sum())
    return float(values[-peaks:].sum()) / total if total > 0 else 0.0


def _on_block_lattice(freq: Arr, n: int) -> Arr:
    nearest = np.round(freq * 8) / 8
    out: Arr = np.abs(freq - nearest) <= 1.5 / n
    return out


CHECKS: tuple[Check, ...] = (
    check_format, check_pixel_size, check_file_size, check_dpi, check_colour_mode, check_jpeg_quality,
    check_compression, check_exif_edit, check_colour, check_border, check_rephotographed, check_selfie,
)
