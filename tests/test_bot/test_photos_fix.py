"""The auto-fix: crop, scale and re-encode only; targets met, bytes in range, then re-checked."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from bot.services.photos import PhotoProfile, analyse
from bot.services.photos.decode import decode
from bot.services.photos.face import default_engine
from bot.services.photos.geometry import CropPlan, plan_crop
from bot.services.photos.measure import FaceGeometry, face_geometry
from bot.services.photos.profiles import KB, Geometry
from bot.services.photos.scene import build_scene
from tests.fixtures import photos as ph


@pytest.fixture(scope="module")
def phone() -> bytes:
    return ph.phone_photo()


def _open(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def test_phone_photo_is_fixed_to_the_standard(phone: bytes, chsi: PhotoProfile) -> None:
    """12 MP, stored sideways with EXIF orientation 6, 72 dpi, 1.7 MB: every failure is fixable."""
    report = analyse(phone, chsi, fix=True)
    assert not report.ok and report.fixable
    fixed = report.fixed
    assert fixed is not None and fixed.ok and fixed.problems == ()
    im = _open(fixed.data)
    assert (im.format, im.size, im.mode) == ("JPEG", (480, 640), "RGB")
    assert 20 * KB <= len(fixed.data) <= 40 * KB
    assert tuple(round(v) for v in im.info["dpi"]) == (300, 300)
    assert len(im.getexif()) == 0 and "exif" not in im.info and "icc_profile" not in im.info
    assert fixed.quality >= chsi.min_quality


def test_fixed_geometry_lands_inside_every_range(phone: bytes, chsi: PhotoProfile) -> None:
    fixed = analyse(phone, chsi, fix=True).fixed
    assert fixed is not None
    rgb = np.asarray(_open(fixed.data).convert("RGB"))
    engine = default_engine()
    geo = face_geometry(engine.faces(rgb)[0], engine.person_mask(rgb))
    assert 180 + 5 <= geo.width <= 300 - 5
    assert 200 + 5 <= geo.eye_mid[1] <= 300 - 5
    assert 50 <= geo.crown <= 110
    assert abs(geo.eye_mid[0] - 240) <= 6  # centred


def test_plan_hits_the_targets_when_the_head_allows() -> None:
    """Face width 240 and eye line 250 exactly, when nothing (crown, edges) is in the way."""
    geo = FaceGeometry((900.0, 1000.0), (1100.0, 1000.0), 400.0, 0.0, 717.0)
    plan = plan_crop(geo, (2000, 3000), (480, 640), Geometry())
    assert isinstance(plan, CropPlan)
    assert (plan.expected.face_width, plan.expected.eye_line) == (240, 250)
    assert plan.scale == pytest.approx(0.6)
    assert (plan.left + plan.right) / 2 == pytest.approx(1000)


def test_plan_says_why_no_crop_fits() -> None:
    too_close = FaceGeometry((100.0, 300.0), (300.0, 300.0), 380.0, 0.0, 60.0)
    assert plan_crop(too_close, (400, 600), (480, 640), Geometry()) in {"sides", "top"}


def test_fix_is_not_a_mirror_or_rotation(phone: bytes, chsi: PhotoProfile) -> None:
    """The output equals the planned crop of the upright source, and not its mirror image."""
    fixed = analyse(phone, chsi, fix=True).fixed
    assert fixed is not None
    decoded = decode(phone)
    scene = build_scene(decoded, chsi, default_engine())
    factor = 1 / (decoded.scale * scene.k)
    plan = scene.plan
    assert plan is not None
    box = tuple(v * factor for v in plan.box)
    source = Image.fromarray(ph.studio(size=(3000, 4000), face=900, eye=1500)).convert("L")
    ref = np.asarray(source.resize((480, 640), Image.Resampling.BILINEAR, box=box), dtype=np.float32)
    out = np.asarray(_open(fixed.data).convert("L"), dtype=np.float32)
    assert np.abs(out - ref).mean() < 4
    assert np.abs(out[:, ::-1] - ref).mean() > 3 * np.abs(out - ref).mean()


@pytest.mark.parametrize(("name", "size", "kb"), [
    ("chsi", (480, 640), (20, 40)),
    ("hunnu-degree", (480, 640), (100, 200)),
    ("hanjiang-2025", (720, 960), (50, 1024)),
])
def test_quality_search_hits_each_profiles_size(name: str, size: tuple[int, int], kb: tuple[int, int],
                                                phone: bytes, photo_profiles: dict[str, PhotoProfile]) -> None:
    fixed = analyse(phone, photo_profiles[name], fix=True).fixed
    assert fixed is not None and fixed.ok
    assert (fixed.width, fixed.height) == size
    assert kb[0] * KB <= len(fixed.data) <= kb[1] * KB


def test_unreachable_size_is_reported_not_padded(phone: bytes, chsi: PhotoProfile) -> None:
    """A 900 KB minimum cannot be met at 480×640 honestly: no zero bytes appended, re-check says so."""
    greedy = PhotoProfile(**{**{f: getattr(chsi, f) for f in chsi.__dataclass_fields__},
                             "name": "greedy", "kb": (900.0, 1000.0)})
    fixed = analyse(phone, greedy, fix=True).fixed
    assert fixed is not None and not fixed.ok and "file_size" in fixed.problems
    assert fixed.data.endswith(b"\xff\xd9") and len(fixed.data) < 900 * KB


def test_no_valid_crop_means_retake_not_padding(chsi: PhotoProfile) -> None:
    """Hopper's head top is 25 px from the edge: reaching 50 px would need a fill colour. Refused."""
    report = analyse(ph.hopper_bytes(), chsi, fix=True)
    assert report.fixed is None and report.fixable is False
    assert "framing" in report.retake


def test_fix_refused_when_a_retake_is_needed(chsi: PhotoProfile) -> None:
    """A dark photo could be cropped, but no crop makes it pass: no 'fixed' file is produced."""
    data = ph.jpeg(ph.darken(ph.studio(size=(960, 1280), face=300, eye=500), 0.35), quality=90)
    report = analyse(data, chsi, fix=True)
    assert report.fixed is None and "exposure" in report.retake


def test_already_compliant_photo_keeps_its_geometry(studio_jpeg: bytes, chsi: PhotoProfile) -> None:
    """Face 210 px at 480×640 already in range: the fix does not upscale it towards 240."""
    fixed = analyse(studio_jpeg, chsi, fix=True).fixed
    assert fixed is not None and fixed.ok
    rgb = np.asarray(_open(fixed.data).convert("RGB"))
    width = face_geometry(default_engine().faces(rgb)[0], None).width
    assert width == pytest.approx(211, abs=4)
