"""Every check of the photo table, each proved on a real photo or one named variant of it.

Positive: ``studio`` (Hopper cut out and placed on a flat light-blue wall at standard geometry).
Negatives: Hopper and the astronaut as shipped, and variants that change one thing.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from bot.services.photos import FIXABLE, PhotoProfile, PhotoReport, Severity, analyse
from tests.fixtures import photos as ph

WARNING_ONLY = {"head_covering", "hair_cover", "beautified", "rephotographed", "selfie"}  # table 23-27


def run(data: bytes, profile: PhotoProfile) -> PhotoReport:
    return analyse(data, profile, fix=False)


def failed_ids(report: PhotoReport) -> set[str]:
    return {c.id for c in report.failed}


def test_studio_positive_passes_every_error_check(studio_jpeg: bytes, chsi: PhotoProfile) -> None:
    """A face at standard geometry on a flat light-blue wall, 480×640, 300 dpi, 20–40 KB: passes."""
    report = run(studio_jpeg, chsi)
    assert report.ok, [(c.id, c.measured) for c in report.failed]
    ids = {c.id for c in report.checks}
    assert {"geometry", "background_colour", "eyes_open", "mouth_closed", "exposure", "sharpness"} <= ids
    assert report.check("geometry").ok and report.check("one_face").measured == 1


def test_all_27_table_checks_and_the_profile_rules_run(studio_jpeg: bytes, chsi: PhotoProfile) -> None:
    ids = {c.id for c in run(studio_jpeg, chsi).checks}
    table = {"compression", "exif_edit", "one_face", "resolution", "roll", "pose", "framing", "geometry",
             "background_colour", "background_uniform", "clothing", "eyes_open", "mouth_closed", "exposure",
             "highlights", "lighting", "glasses_glare", "tinted_glasses", "sharpness", "colour", "border",
             "head_covering", "hair_cover", "beautified", "rephotographed", "selfie"}  # + decode = 27
    assert table <= ids
    assert {"format", "pixel_size", "file_size", "dpi", "colour_mode", "jpeg_quality"} <= ids


def test_checks_23_to_27_are_warnings_never_errors(studio_jpeg: bytes, chsi: PhotoProfile) -> None:
    report = run(studio_jpeg, chsi)
    for check in report.checks:
        if check.id in WARNING_ONLY:
            assert check.severity is Severity.WARNING, check.id
    # Hopper's hat is flagged, yet the photo is still ok: a warning is not a rejection.
    assert report.check("head_covering").ok is False and report.ok


@pytest.mark.parametrize(("variant", "check_id"), [
    (lambda: ph.darken(ph.studio(), 0.35), "exposure"),
    (lambda: ph.blur(ph.studio(), 3), "sharpness"),
    (lambda: ph.grayscale(ph.studio()), "colour"),
    (lambda: ph.rotate(ph.studio(), 8), "roll"),
    (lambda: ph.half_shadow(ph.studio()), "lighting"),
    (lambda: ph.bordered(ph.studio()), "border"),
    (lambda: ph.studio(colour=(200, 40, 40)), "background_colour"),
    (lambda: ph.half_shadow(ph.studio(), 0.6, box=(0, 0, 90, 640)), "background_uniform"),
    (lambda: ph.paste_twice(), "one_face"),
], ids=["darkened", "blurred", "grayscale", "rotated", "side-lit", "bordered", "red-wall", "wall-shadow",
        "two-faces"])
def test_one_change_fails_its_check(variant, check_id: str, chsi: PhotoProfile) -> None:
    report = run(ph.jpeg(variant(), kb=chsi.kb), chsi)
    assert check_id in failed_ids(report), [(c.id, c.measured) for c in report.checks if not c.ok]
    assert not report.ok


def test_control_for_variants_is_clean(chsi: PhotoProfile) -> None:
    """The variants above fail for their change alone: the unchanged studio has none of those failures."""
    report = run(ph.jpeg(ph.studio(), kb=chsi.kb), chsi)
    assert not failed_ids(report) & {"exposure", "sharpness", "colour", "roll", "lighting", "border",
                                     "background_colour", "background_uniform", "one_face"}


def test_astronaut_smile_and_small_face(chsi: PhotoProfile) -> None:
    """The astronaut smiles with teeth, her face is 91 px wide, the background is busy."""
    report = run(ph.png(ph.astronaut_rgb()), chsi)
    bad = failed_ids(report)
    assert {"mouth_closed", "resolution", "background_colour", "background_uniform", "format"} <= bad
    assert report.check("mouth_closed").measured["teeth"] > 0.08
    assert report.fixable is False


def test_hopper_as_shipped(chsi: PhotoProfile) -> None:
    """Hopper: flag background, head top 25 px (no crop leaves 50 px without padding), hat flagged."""
    report = run(ph.hopper_bytes(), chsi)
    bad = failed_ids(report)
    assert {"background_colour", "background_uniform", "framing", "pixel_size", "dpi"} <= bad
    assert report.check("framing").measured == "top"
    assert report.check("eyes_open").ok and report.check("mouth_closed").ok and report.check("pose").ok
    assert {c.id for c in report.warnings} >= {"head_covering"}


def test_white_wall_depends_on_profile(photo_profiles: dict[str, PhotoProfile]) -> None:
    """White is allowed by the standard, not by the seed-000 school (light blue only)."""
    data = ph.jpeg(ph.studio(colour=(255, 255, 255)), quality=97)
    assert run(data, photo_profiles["chsi-100k"]).check("background_colour").ok
    report = run(data, photo_profiles["hunnu-degree"])
    assert not report.check("background_colour").ok
    assert report.check("background_colour").measured["nearest"] == "light_blue"


def test_screen_grid_is_a_warning(chsi: PhotoProfile) -> None:
    report = run(ph.jpeg(ph.screen_grid(ph.studio()), quality=95), chsi)
    check = report.check("rephotographed")
    assert check.ok is False and check.severity is Severity.WARNING
    assert run(ph.jpeg(ph.studio(), kb=chsi.kb), chsi).check("rephotographed").ok


def _exif(**tags: object) -> Image.Exif:
    exif = Image.Exif()
    for key, value in tags.items():
        if key == "software":
            exif[0x0131] = value
        if key == "lens":
            exif.get_ifd(0x8769)[0xA434] = value
    return exif


def test_exif_editing_app_and_front_camera_warn(chsi: PhotoProfile) -> None:
    edited = ph.jpeg(ph.studio(), kb=chsi.kb, exif=_exif(software="Meitu 美图秀秀 9.1"))
    selfie = ph.jpeg(ph.studio(), kb=chsi.kb, exif=_exif(lens="iPhone 15 front camera 2.69mm f/1.9"))
    a, b = run(edited, chsi), run(selfie, chsi)
    assert not a.check("exif_edit").ok and a.check("exif_edit").severity is Severity.WARNING
    assert not b.check("selfie").ok and b.ok
    assert run(ph.jpeg(ph.studio(), kb=chsi.kb), chsi).check("exif_edit").ok


def test_file_rules_from_the_profile(photo_profiles: dict[str, PhotoProfile]) -> None:
    """Size, DPI, format and pixel-size rules read the profile: the same PNG passes and fails."""
    data = ph.png(ph.studio())
    strict, shanxi = run(data, photo_profiles["chsi"]), run(data, photo_profiles["shanxi-zikao"])
    assert {"format", "file_size", "dpi"} <= failed_ids(strict)
    assert not {"format", "file_size", "dpi", "pixel_size"} & failed_ids(shanxi)
    assert strict.fixable, "format, size and DPI are repaired by re-encoding"
    low_q = run(ph.jpeg(ph.studio(), quality=40), photo_profiles["chsi"])
    assert "jpeg_quality" in failed_ids(low_q) and low_q.check("jpeg_quality").measured == 40


def test_geometry_measured_in_profile_frame(chsi: PhotoProfile) -> None:
    """A small face high in the frame fails geometry but can be cropped (fixable), unlike framing."""
    data = ph.jpeg(ph.studio(size=(960, 1280), face=300, eye=450), quality=92)
    report = run(data, chsi)
    geo = report.check("geometry")
    assert not geo.ok and "face_width" in geo.hint
    assert report.check("framing").ok and report.fixable
    assert failed_ids(report) <= FIXABLE


def test_pose_turned_head_fails(chsi: PhotoProfile) -> None:
    """Squeezing one half of the face sideways moves the nose off the cheek midpoint (a yaw proxy)."""
    rgb = ph.studio()
    left = Image.fromarray(rgb[:, :240]).resize((190, 640))
    right = Image.fromarray(rgb[:, 240:]).resize((290, 640))
    turned = np.concatenate([np.asarray(left), np.asarray(right)], axis=1)
    report = run(ph.jpeg(turned, kb=chsi.kb), chsi)
    assert report.check("pose").ok is False and report.check("pose").hint == "yaw"


def _landmarks(rgb: np.ndarray) -> np.ndarray:
    from bot.services.photos.face import default_engine

    return default_engine().faces(rgb)[0].points


def _disc(rgb: np.ndarray, centre: np.ndarray, radius: float, colour: tuple[int, int, int]) -> np.ndarray:
    out = rgb.copy()
    y, x = np.mgrid[0:rgb.shape[0], 0:rgb.shape[1]]
    out[np.hypot(x - centre[0], y - centre[1]) <= radius] = colour
    return out


def test_shine_on_the_cheek_fails_highlights(chsi: PhotoProfile) -> None:
    rgb = ph.studio()
    shiny = _disc(rgb, _landmarks(rgb)[205], 18, (255, 255, 255))
    report = run(ph.jpeg(shiny, quality=95), chsi)
    assert not report.check("highlights").ok


def test_lens_reflection_fails_glasses_glare(chsi: PhotoProfile) -> None:
    rgb = ph.studio()
    pts = _landmarks(rgb)
    glare = _disc(rgb, (pts[33] + pts[133]) / 2 + (0, -6), 9, (255, 255, 255))
    report = run(ph.jpeg(glare, quality=95), chsi)
    assert not report.check("glasses_glare").ok
    assert run(ph.jpeg(rgb, quality=95), chsi).check("glasses_glare").ok


def test_dark_lenses_warn(chsi: PhotoProfile) -> None:
    rgb = ph.studio().copy()
    pts = _landmarks(rgb)
    for idx in ((33, 133, 159, 145), (362, 263, 386, 374)):
        (x0, y0), (x1, y1) = pts[list(idx)].min(axis=0) - 12, pts[list(idx)].max(axis=0) + 12
        rgb[int(y0):int(y1), int(x0):int(x1)] = (rgb[int(y0):int(y1), int(x0):int(x1)] * 0.2).astype(np.uint8)
    check = run(ph.jpeg(rgb, quality=95), chsi).check("tinted_glasses")
    assert not check.ok and check.severity is Severity.WARNING


def test_shirt_like_the_wall_fails_clothing(chsi: PhotoProfile) -> None:
    """Recolour everything below the neck to the wall's own light blue."""
    rgb = ph.studio().copy()
    chin_y = int(_landmarks(rgb)[152][1])
    rgb[chin_y + 45:] = ph.LIGHT_BLUE
    noisy = np.clip(rgb.astype(np.int16) + np.random.default_rng(1).integers(-3, 4, rgb.shape), 0, 255)
    report = run(ph.jpeg(noisy.astype(np.uint8), quality=95), chsi)
    clothing = report.check("clothing")
    assert clothing is None or not clothing.ok  # no shirt left to find, or found too close to the wall
    assert run(ph.jpeg(ph.studio(), quality=95), chsi).check("clothing").ok


def test_fringe_over_the_brows_warns(chsi: PhotoProfile) -> None:
    rgb = ph.studio().copy()
    pts = _landmarks(rgb)
    top = int(min(pts[105][1], pts[334][1]))
    x0, x1 = int(pts[70][0]) - 10, int(pts[300][0]) + 10
    rgb[top - 45:top + 4, x0:x1] = (40, 30, 25)
    check = run(ph.jpeg(rgb, quality=95), chsi).check("hair_cover")
    assert not check.ok and "brows" in check.hint and check.severity is Severity.WARNING


def test_closed_eyes_fail_eyes_open(chsi: PhotoProfile) -> None:
    """Landmark-level: the same face with each lower lid moved onto its upper lid."""
    from bot.services.photos.checks_face import check_eyes_open
    from bot.services.photos.decode import decode
    from bot.services.photos.face import Face, default_engine
    from bot.services.photos.scene import build_scene

    scene = build_scene(decode(ph.jpeg(ph.studio(), kb=chsi.kb)), chsi, default_engine())
    assert check_eyes_open(scene).ok
    points = scene.faces[0].points.copy()
    points[145], points[374] = points[159], points[386]
    scene.faces = [Face(points)]
    closed = check_eyes_open(scene)
    assert not closed.ok and closed.measured == 0


def test_recompressed_small_copy_warns(chsi: PhotoProfile) -> None:
    """A 600 px copy at quality 50 (as sent without 原图): a warning, not a rejection by itself."""
    small = Image.fromarray(ph.studio(size=(960, 1280), face=420, eye=560)).resize((450, 600))
    check = run(ph.jpeg(np.asarray(small), quality=50), chsi).check("compression")
    assert not check.ok and check.severity is Severity.WARNING


def test_smoothed_skin_warns_beautified_but_blur_does_not(chsi: PhotoProfile) -> None:
    """A beauty filter smooths the skin and keeps eyes, brows and lips crisp; plain blur softens all."""
    from PIL import ImageFilter

    from bot.services.photos.measure import BROW_A, BROW_B, EYE_A, EYE_B, FACE_OVAL, LIPS_OUTER, polygon

    rgb = ph.studio()
    pts = _landmarks(rgb)
    skin = polygon(rgb.shape, pts[list(FACE_OVAL)])
    for idx in (EYE_A, EYE_B, BROW_A, BROW_B, LIPS_OUTER):
        (x0, y0), (x1, y1) = pts[list(idx)].min(axis=0) - 8, pts[list(idx)].max(axis=0) + 8
        skin[int(y0):int(y1), int(x0):int(x1)] = False
    smooth = np.asarray(Image.fromarray(rgb).filter(ImageFilter.GaussianBlur(3)))
    filtered = np.where(skin[..., None], smooth, rgb)
    check = run(ph.jpeg(filtered, quality=95), chsi).check("beautified")
    assert not check.ok and check.severity is Severity.WARNING
    assert run(ph.jpeg(ph.blur(rgb, 2), quality=95), chsi).check("beautified").ok
    assert run(ph.jpeg(rgb, quality=95), chsi).check("beautified").ok
